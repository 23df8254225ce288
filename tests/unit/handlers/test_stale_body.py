"""A pass whose body predates the status the last pass wrote reads the Tenant again: no second write.

bench/scale/RESULTS.md found it at N >= 100: a creation slower than the verify interval, and the
verify timer that fired meanwhile then ran with the body from before the creation's status patch,
so it marked Reconciling=True again, patched the status and posted every condition's Event again.
Driven here directly with a fake API (a dict and its merge patches) and a fixed converge outcome.
"""

import asyncio
import copy
import logging

import pytest
from tenancy_operator.handlers import tenant
from tenancy_operator.reconcile.status import PartResult

NAME = "stale-body"
META = {"name": NAME, "uid": "uid-1", "generation": 1}


@pytest.fixture
def world(tenant_pass):
    async def converge(name, uid, body, logger, kwargs):
        return tenant.Outcome(parts=[PartResult("NamespaceReady", True, "Succeeded", "namespace ready")])

    return tenant_pass(converge)


def _pass(status):
    body = {"metadata": dict(META), "spec": {}, "status": status}
    return asyncio.run(tenant._reconcile(body=body, meta=dict(META), status=status, logger=logging.getLogger("t")))


def test_a_pass_with_a_stale_body_reads_the_tenant_again_and_writes_nothing(world):
    fake, events = world
    _pass({})  # the creation: its status (the Reconciling mark rides on its first write), Ready's Event
    written, posted = len(fake.patches), len(events)
    assert written == 1 and posted > 0 and fake.gets == 0

    _pass({})  # the verify timer's body, from before the creation's status patch
    assert fake.gets == 1, "the stale body was not noticed"
    assert len(fake.patches) == written, f"wrote again: {fake.patches[written:]}"
    assert len(events) == posted, f"posted again: {[e['reason'] for e in events[posted:]]}"

    _pass(copy.deepcopy(fake.status(NAME)))  # a current body: no read, no write
    assert fake.gets == 1 and len(fake.patches) == written
