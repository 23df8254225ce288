"""services_part.run turns another tenant's mark into a Stalled part, and adopts only deleted tenants'
data, only when asked. The adapter here is a stand-in that applies the real Ownership verdict."""

import asyncio
import logging

from tenancy_operator.api.conditions import Reason
from tenancy_operator.backends.base import Ownership, Report, Target, TenantSlice
from tenancy_operator.handlers import services_part

TARGET = Target("pg-main", "postgres", "127.0.0.1", 5432)
ME, LIVE, DEAD = "uid-me", "uid-live", "uid-dead"


class MarkedBackend:
    def __init__(self, marks: dict[str, str | None]):
        self.marks, self.calls = marks, 0

    async def ensure(self, target, want):
        self.calls += 1
        o = Ownership("pg-main", want)
        for obj, uid in self.marks.items():
            o.see(obj, uid)
        o.check()
        for obj in o.to_mark:
            self.marks[obj] = want.uid
        return Report(repaired=[f"ownership mark on {o}" for o in o.to_mark], adopted=o.adopted)


def run(monkeypatch, marks, adopt):
    backend = MarkedBackend(marks)
    monkeypatch.setattr(services_part.registry, "adapter", lambda service: backend)
    part, report = asyncio.run(services_part.run(
        "postgres", TARGET, TenantSlice("acme", "tenant-acme", uid=ME), logging.getLogger("t"),
        adopt_retained=adopt, owner_of={LIVE: "other"}.get))
    return part, report, backend


def test_a_deleted_tenants_data_stalls_without_the_opt_in(monkeypatch):
    part, _, backend = run(monkeypatch, {"database t_acme": DEAD}, adopt=False)
    assert (part.ok, part.stalled, part.reason) == (False, True, Reason.OWNED_BY_ANOTHER_TENANT)
    assert f"retained from a deleted tenant (uid {DEAD}), a previous Tenant named acme" in part.message
    assert "spec.adoptRetainedData: true" in part.message
    assert backend.marks == {"database t_acme": DEAD}


def test_the_opt_in_adopts_every_deleted_tenants_mark(monkeypatch):
    part, report, backend = run(monkeypatch, {"database t_acme": DEAD, "role t_acme_a": "uid-older"}, adopt=True)
    assert part.ok and report.adopted == ["database t_acme", "role t_acme_a"]
    assert set(backend.marks.values()) == {ME} and backend.calls == 3


def test_a_live_tenants_data_is_never_adopted(monkeypatch):
    part, _, backend = run(monkeypatch, {"database t_acme": LIVE}, adopt=True)
    assert part.stalled and f"belong to Tenant other (uid {LIVE})" in part.message
    assert backend.marks == {"database t_acme": LIVE} and backend.calls == 1
