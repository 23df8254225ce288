"""migrate-database: the step list, the refusals before any side effect,
the choice of client tools, and the statements it adds. Servers are exercised in e2e/test_migrate_database.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tenancy_operator.backends import postgres_move
from tenancy_operator.backends import postgres_sql as sql
from tenancy_operator.backends.base import Target
from tenancy_operator.workflows import migrate_database as mig
from tenancy_operator.workflows.engine import StepContext


def test_steps_in_order_with_compensation_except_verify_and_release():
    got = mig.steps({"targetBackend": "pg-b"})
    assert [s.name for s in got] == list(mig.STEP_NAMES)
    undo = {s.name: s.compensate is not None for s in got}
    assert undo == {"freeze": True, "copy": True, "verify": False, "switch": True, "unfreeze": True, "release": False}


class FakeKube:
    def __init__(self, tenant, backends=None):
        self.tenant, self.backends, self.patches = tenant, backends or {}, []

    async def get(self, kind, name, namespace=None):
        return self.tenant if kind == "Tenant" else self.backends.get(name) if kind == "Backend" else None

    async def merge_patch(self, kind, name, namespace, patch, subresource=None, field_manager=None):
        self.patches.append((kind, patch))
        return {}


class FakeServices:
    def __init__(self, tenant, backends=None):
        self.kube = FakeKube(tenant, backends)

    async def target(self, backend):
        return Target(name=backend, type="postgres", host="127.0.0.1", port=1)

    async def quiesce(self, tenant):
        return None


def _tenant(**postgres):
    return {"metadata": {"name": "acme", "uid": "u1"},
            "spec": {"postgres": {"enabled": True, **postgres}},
            "status": {"placement": {"postgres": "pg-a"}, "credentials": {"slot": "a"}}}


@pytest.mark.parametrize("tenant,target,says", [
    (_tenant(backend="pg-a"), "pg-b", "spec.postgres.backend pins"),
    (_tenant(), "pg-a", "another postgres Backend than pg-a"),
    (_tenant(), "", "another postgres Backend"),
    ({**_tenant(), "status": {}}, "pg-b", "not placed"),
    ({**_tenant(), "status": {"placement": {"postgres": "pg-a"}, "credentials": {"pending": {"version": 2}}}},
     "pg-b", "rotation"),
])
def test_freeze_refuses_before_any_write(tenant, target, says):
    services = FakeServices(tenant)
    ctx = StepContext(run="r1", tenant="acme", params={"targetBackend": target}, outputs={}, services=services)
    with pytest.raises(mig.MigrationRefused, match=says):
        asyncio.run(mig.freeze(ctx))
    assert services.kube.patches == []


@pytest.mark.parametrize("backend,says", [
    ({"spec": {"paused": True}}, "pg-b is paused"),
    ({"spec": {"capacity": 3}, "status": {"tenantsPlaced": 3}}, "holds 3 tenants, its capacity is 3"),
])
def test_freeze_refuses_a_target_that_takes_no_new_tenant(backend, says, monkeypatch):
    """Backend.spec.paused and capacity hold for a migration's target as for a Tenant that names a Backend."""
    async def nothing_there(target, tenant):
        return []

    monkeypatch.setattr(postgres_move, "objects_of", nothing_there)
    for spec, refused in ((backend, True), ({"spec": {"capacity": 4}, "status": {"tenantsPlaced": 3}}, False)):
        services = FakeServices(_tenant(), {"pg-b": spec})
        ctx = StepContext(run="r1", tenant="acme", params={"targetBackend": "pg-b"}, outputs={}, services=services)
        if refused:
            with pytest.raises(mig.MigrationImpossible, match=says):
                asyncio.run(mig.freeze(ctx))
            assert services.kube.patches == []
        else:  # room for one more: past the check, to the hold (then the source's freeze, not faked here)
            with pytest.raises(Exception) as raised:
                asyncio.run(mig.freeze(ctx))
            assert not isinstance(raised.value, mig.MigrationRefused)
            assert services.kube.patches and services.kube.patches[0][0] == "Tenant"


def test_tools_of_the_target_major_else_the_oldest_new_enough(tmp_path: Path):
    for version in ("13", "15", "17"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "pg_dump").touch()
    assert postgres_move.tools_for("13.4", "15.2", str(tmp_path)) == tmp_path / "15" / "bin"
    assert postgres_move.tools_for("15.1", "16.0", str(tmp_path)) == tmp_path / "17" / "bin"
    with pytest.raises(postgres_move.ToolsMissing, match="major version 18"):
        postgres_move.tools_for("18.0", "15.0", str(tmp_path))


def test_digest_is_order_free_and_sees_every_value():
    a = {"table public.t": "3:abc", "sequence public.s": "7:true"}
    assert postgres_move.digest(a) == postgres_move.digest(dict(reversed(a.items())))
    assert postgres_move.digest(a) != postgres_move.digest({**a, "table public.t": "3:abd"})


def test_statements_quote_and_change_only_the_limit():
    assert sql.connection_limit("t_acme_a", 0) == 'ALTER ROLE "t_acme_a" CONNECTION LIMIT 0'
    assert sql.grant_role_to_admin("t_acme_owner") == 'GRANT "t_acme_owner" TO CURRENT_USER'
    assert sql.revoke_role_from_admin("t_acme_owner") == 'REVOKE "t_acme_owner" FROM CURRENT_USER'
    with pytest.raises(ValueError):
        sql.connection_limit('x"; DROP', 0)


class NoTargetServices(FakeServices):
    def __init__(self, tenant, kinds):
        super().__init__(tenant)
        self.kinds = kinds

    async def target(self, backend):
        if backend not in self.kinds:
            raise LookupError(f"Backend {backend} does not exist")
        return Target(name=backend, type=self.kinds[backend], host="127.0.0.1", port=1)


@pytest.mark.parametrize("goal,says", [("no-such", "Backend no-such does not exist"),
                                       ("redis-main", "of type redis, not postgres"),
                                       ("pg-a", "another postgres Backend than pg-a")])
def test_a_refusal_no_retry_can_change_ends_the_step_at_once(monkeypatch, goal, says):
    """Found in review: a missing target Backend, or one of another engine, was retried 4 times (with
    backoff) before the run failed; it now fails at its first attempt, and the run is compensated."""
    from tenancy_operator.workflows import engine

    async def set_connection_limit(target, tenant, limit):
        return None

    monkeypatch.setattr(mig.postgres_move, "set_connection_limit", set_connection_limit)
    slept: list[float] = []

    async def sleep(seconds):
        slept.append(seconds)

    async def persist(status):
        return None

    services = NoTargetServices(_tenant(), {"pg-a": "postgres", "redis-main": "redis"})
    ctx = StepContext(run="r1", tenant="acme", params={"targetBackend": goal}, outputs={}, services=services)
    status = asyncio.run(engine.advance(mig.steps({"targetBackend": goal}), {}, persist, ctx, sleep=sleep))
    freeze = status["steps"][0]
    assert status["phase"] == "Failed" and says in status["message"], status
    assert freeze["attempts"] == 1 and slept == [], freeze
    assert [s["phase"] for s in status["steps"][1:]] == ["Skipped"] * 5


def test_a_refusal_waiting_can_change_is_still_retried():
    tenant = {**_tenant(), "status": {"placement": {"postgres": "pg-a"}, "credentials": {"pending": {"version": 2}}}}
    ctx = StepContext(run="r1", tenant="acme", params={"targetBackend": "pg-b"}, outputs={}, services=FakeServices(tenant))
    with pytest.raises(mig.MigrationRefused) as refused:
        asyncio.run(mig.freeze(ctx))
    assert not isinstance(refused.value, mig.MigrationImpossible)  # a rotation under way ends by itself


def test_a_hand_edited_password_is_refused_before_anything_is_written():
    import base64
    import hashlib

    from tenancy_operator.workflows import migrate_database as md

    tenant = _tenant()
    tenant["status"]["credentials"]["passwordSha256"] = {"postgres": hashlib.sha256(b"ours").hexdigest()}

    class WithSecret(FakeKube):
        async def get(self, kind, name, namespace=None):
            if kind == "Secret":
                return {"data": {"PGPASSWORD": base64.b64encode(b"chosen-by-hand").decode()}}
            return await super().get(kind, name, namespace)

    services = FakeServices(tenant)
    services.kube = WithSecret(tenant)
    ctx = StepContext(run="r", tenant="acme", params={"targetBackend": "pg-b"}, outputs={}, services=services)
    with pytest.raises(md.MigrationRefused, match="edited by hand"):
        asyncio.run(md.freeze(ctx))
    assert services.kube.patches == []  # no hold, no freeze
    assert md._edited(tenant, "ours") is False and md._edited(tenant, "chosen-by-hand") is True
    assert md._edited(_tenant(), "anything") is False  # nothing recorded yet: trusted until the next publish
