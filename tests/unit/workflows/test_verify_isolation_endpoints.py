"""verify-isolation connects where the Tenant's placement says, never where its (owner-editable) Secret says.

A Secret edited to PGHOST=evil.example would otherwise aim the operator's probes (with the tenant's
password) at any host: a server that lets everyone in is a false breach, one that refuses everyone hides
a real one. Servers are exercised in e2e/test_workflows.py."""

from __future__ import annotations

import asyncio
import base64

import asyncpg
import pytest
from tenancy_operator.backends.base import Target
from tenancy_operator.workflows import verify_isolation as vi
from tenancy_operator.workflows.engine import StepContext

PG = Target(name="pg-main", type="postgres", host="10.0.0.5", port=5432, public_host="pg.tenancy.svc")
EVIL = {"PGHOST": "evil.example", "PGPORT": "6666", "PGUSER": "t_acme_a", "PGPASSWORD": "pw", "PGDATABASE": "t_acme"}
GOOD = {**EVIL, "PGHOST": "pg.tenancy.svc", "PGPORT": "5432"}


class FakeKube:
    def __init__(self, secret):
        self.secret = secret

    async def get(self, kind, name, namespace=None):
        if kind == "Secret":
            return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in self.secret.items()}}
        if kind == "Tenant":
            return {"metadata": {"name": name}, "status": {"placement": {"postgres": "pg-main"}}}
        return None


class FakeServices:
    def __init__(self, secret):
        self.kube = FakeKube(secret)

    async def target(self, backend):
        assert backend == "pg-main"
        return PG


def _run_postgres(monkeypatch, secret, own_fails=False):
    calls = []

    async def connect(host, port, user, password, database, timeout, ssl):
        calls.append((host, port, database))
        if database == "t_acme" and not own_fails:
            class Conn:
                async def close(self):
                    return None
            return Conn()
        raise asyncpg.InvalidAuthorizationSpecificationError("no pg_hba entry")

    monkeypatch.setattr(asyncpg, "connect", connect)
    ctx = StepContext(run="r1", tenant="acme", params={}, outputs={"peers": "globex"}, services=FakeServices(secret))
    return calls, asyncio.run(vi._postgres(ctx))


def test_an_edited_pghost_is_not_contacted_the_placed_backend_is(monkeypatch):
    calls, out = _run_postgres(monkeypatch, EVIL)
    assert calls and {(h, p) for h, p, _ in calls} == {("10.0.0.5", 5432)}
    assert out["probe postgres connect to database t_globex"].startswith("refused: ")
    assert out["secret postgres"] == ("Secret tenant-credentials differs from Backend pg-main in PGHOST, PGPORT; "
                                      "not used: the probes went to Backend pg-main")


def test_a_secret_that_matches_the_placement_adds_no_note(monkeypatch):
    calls, out = _run_postgres(monkeypatch, GOOD)
    assert {(h, p) for h, p, _ in calls} == {("10.0.0.5", 5432)}
    assert "secret postgres" not in out


def test_a_tenant_whose_own_login_fails_is_not_reported_refused(monkeypatch):
    # A password edited to a wrong one makes every probe look refused: the step fails instead.
    with pytest.raises(RuntimeError, match="own login to database t_acme on Backend pg-main fails"):
        _run_postgres(monkeypatch, EVIL, own_fails=True)


@pytest.mark.parametrize(("service", "creds", "url"), [
    ("vault", {"VAULT_ADDR": "http://evil.example:1"}, "http://10.0.0.5:5432"),
    ("search", {"SEARCH_URL": "https://pg.tenancy.svc:5432"}, "https://10.0.0.5:5432"),
])
def test_urls_come_from_the_backend(service, creds, url):
    tls = service == "search"
    target = Target(name="b", type=service, host="10.0.0.5", port=5432, public_host="pg.tenancy.svc", tls=tls,
                    extra={"ca.crt": "CA"})
    got = vi.where(service, target, creds)
    assert got.url == url
    assert (got.host, got.port, got.tls, got.ca) == ("10.0.0.5", 5432, tls, "CA" if tls else "")
    assert bool(got.note) == (service == "vault")


def test_published_matches_the_adapters_endpoints():
    from tenancy_operator.backends import postgres
    found = postgres.endpoints(PG, "acme", "a", "pw")
    assert vi.published("postgres", PG) == {k: found[k] for k in ("PGHOST", "PGPORT")}
    assert vi.secret_differs("postgres", PG, found) == ""
