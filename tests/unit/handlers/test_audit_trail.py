"""The trail's seam: no change, no I/O; an unwritable trail holds what was done and lets nothing more happen."""

from __future__ import annotations

import types

import pytest
from tenancy_operator.backends import registry
from tenancy_operator.backends.base import Report, Target, TenantSlice
from tenancy_operator.handlers import audit_trail, services_part


class FakeAdapter:
    def __init__(self, repaired: list[str]):
        self.repaired, self.calls = repaired, 0

    async def ensure(self, target, want):
        self.calls += 1
        return Report(repaired=list(self.repaired), diffs={r: "missing" for r in self.repaired})


@pytest.fixture
def trail(monkeypatch):
    t = audit_trail.Trail()
    monkeypatch.setattr(audit_trail, "trail", t)
    return t


TARGET = Target("pg-x", "postgres", "127.0.0.1", 1)
WANT = TenantSlice("acme", "tenant-acme", uid="u1")


async def test_steady_state_touches_no_store(trail):
    async def connect():
        raise AssertionError("the store was reached for a pass that changed nothing")

    trail.connect = connect
    adapter = audit_trail.Audited("postgres", types.SimpleNamespace(ensure=FakeAdapter([]).ensure))
    await adapter.ensure(TARGET, WANT)
    assert trail.held == []


async def test_unwritable_trail_holds_changes_and_refuses_the_next_write(trail):
    async def connect():
        raise OSError("connection refused")

    trail.connect = connect
    fake = FakeAdapter(["role t_acme_a"])
    adapter = audit_trail.Audited("postgres", types.SimpleNamespace(ensure=fake.ensure))
    await adapter.ensure(TARGET, WANT)  # the change was made: it is held, not lost
    assert [(c["action"], c["target"]) for c in trail.held] == [("create", "postgres pg-x: role t_acme_a")]
    with pytest.raises(audit_trail.AuditUnavailable):
        await adapter.ensure(TARGET, WANT)
    assert fake.calls == 1  # no second change while the first is unrecorded


async def test_refusal_is_a_degraded_part_that_trips_no_backend_breaker(trail, monkeypatch):
    async def connect():
        raise OSError("connection refused")

    trail.connect = connect
    trail.held = [{"tenant": "acme", "action": "create", "target": "t", "details": {}}]
    monkeypatch.setattr(registry, "_wrap", audit_trail.Audited)
    part, _ = await services_part.run("postgres", TARGET, WANT, __import__("logging").getLogger("t"))
    assert not part.ok and "audit trail unavailable" in part.message
    assert services_part.circuit.breaker_for("pg-x").failures == 0


def test_registry_hands_out_audited_adapters_with_the_modules_own_attributes():
    pg, redis = registry.adapter("postgres"), registry.adapter("redis")
    assert isinstance(pg, audit_trail.Audited) and hasattr(pg, "ensure_server") and pg.SERVER_CONDITION
    assert not hasattr(redis, "ensure_server")  # handlers ask before calling it
