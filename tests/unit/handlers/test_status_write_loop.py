"""A Tenant pass whose status drops keys inside an object writes them away once, then nothing.

Found by the fuzz run: after spec.mongodb was turned off, status.endpoints kept its MONGODB_* keys
(a JSON merge patch keeps every key it does not name), so every verify pass found the stored status
differing from the wanted one and patched it again: `patch tenants fz-0` 4 times in 12 s of quiet,
with no Event. Driven with a fake API that applies RFC 7386 merge patches and a fixed converge outcome.
"""

import asyncio
import copy
import logging

import pytest
from tenancy_operator.handlers import tenant
from tenancy_operator.reconcile.status import PartResult

NAME = "fz-0"
META = {"name": NAME, "uid": "uid-1", "generation": 1}
PG = {"PGHOST": "pg.example", "PGPORT": "5432"}
MONGO = {"MONGODB_URI_HOST": "mongo.example", "MONGODB_URI": "mongodb://mongo.example/fz_0"}


@pytest.fixture
def world(tenant_pass):
    async def converge(name, uid, body, logger, kwargs):
        return tenant.Outcome(parts=[PartResult("NamespaceReady", True, "Succeeded", "namespace ready")],
                              status={"namespace": "tenant-fz-0", "endpoints": dict(PG),
                                      "suspension": None, "backends": "postgres=pg-a"})

    return tenant_pass(converge)


def _pass(fake):
    status = copy.deepcopy(fake.status(NAME))  # the body as the watch delivers it: the stored status
    body = {"metadata": dict(META), "spec": {}, "status": status}
    asyncio.run(tenant._reconcile(body=body, meta=dict(META), status=status, logger=logging.getLogger("t")))


def test_endpoints_of_a_turned_off_service_go_in_one_write_and_quiet_passes_write_nothing(world):
    fake, events = world
    _pass(fake)  # the tenant as it was with MongoDB on: Ready, endpoints of both services
    fake.status(NAME)["endpoints"] = {**PG, **MONGO}
    fake.status(NAME)["suspension"] = {"by": "spec", "since": "2026-01-01T00:00:00Z"}
    fake.patches.clear()
    posted = len(events)

    _pass(fake)  # spec.mongodb turned off: this pass wants the PostgreSQL endpoints only
    for _ in range(4):  # quiet verify passes
        _pass(fake)
    assert len(fake.patches) == 1, f"{len(fake.patches)} status writes in 5 passes (one expected)"
    assert fake.status(NAME)["endpoints"] == PG, "MONGODB_* kept: a merge patch keeps what it does not name"
    assert "suspension" not in fake.status(NAME)
    assert len(events) == posted


def test_a_body_still_showing_the_dropped_keys_is_read_again_not_written(world):
    """The stale-body check (`_written`) uses the same rule: a body from before the write is stale."""
    fake, _ = world
    _pass(fake)
    fake.status(NAME)["endpoints"] = {**PG, **MONGO}
    _pass(fake)
    stale = copy.deepcopy(fake.status(NAME))
    stale["endpoints"] = {**PG, **MONGO}
    written = len(fake.patches)
    body = {"metadata": dict(META), "spec": {}, "status": stale}
    asyncio.run(tenant._reconcile(body=body, meta=dict(META), status=stale, logger=logging.getLogger("t")))
    assert len(fake.patches) == written
    assert fake.status(NAME)["endpoints"] == PG
