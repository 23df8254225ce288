"""What a Tenant's creation writes and posts, against what a spec change does.

A creation's Reconciling=True mark rides on the pass's first status write instead of a patch and a
SpecChanged Event of its own, and its summary starts with no Reconciling condition, so no
Reconciling=False Event either: a creation posts Ready=True (and Provisioned, from the services).
A spec change still marks Reconciling=True at once, with SpecChanged, and posts Reconciling=False when done.
Driven with a fake API (the Tenant's status and its merge patches) and a fixed converge outcome.
"""

from __future__ import annotations

import asyncio
import copy
import logging

import pytest
from tenancy_operator.handlers import tenant, tenant_services
from tenancy_operator.reconcile.status import PartResult

NAME = "creation-writes"


@pytest.fixture
def world(tenant_pass):
    behaviour = {"raise": None, "first_write": False}

    async def converge(name, uid, body, logger, kwargs):
        if behaviour["first_write"]:
            # What tenant_services.converge does with a new placement: the carried fields go with it.
            await tenant_services.record(name, {**tenant_services.carried.pop(name, {}), "placement": {"postgres": "pg-main"}})
        if behaviour["raise"]:
            raise behaviour["raise"]
        return tenant.Outcome(parts=[PartResult("NamespaceReady", True, "Succeeded", "namespace ready")])

    api, events = tenant_pass(converge)
    return api, events, behaviour


def _pass(status, generation=1):
    meta = {"name": NAME, "uid": "uid-1", "generation": generation}
    body = {"metadata": meta, "spec": {}, "status": status}
    return asyncio.run(tenant._reconcile(body=body, meta=dict(meta), status=status, logger=logging.getLogger("t")))


def _reconciling(patch: dict) -> str | None:
    found = [c for c in patch.get("status", {}).get("conditions", []) if c["type"] == "Reconciling"]
    return found[0]["status"] if found else None


def test_a_creation_marks_reconciling_on_its_first_write_and_posts_only_ready(world):
    fake, events, behaviour = world
    behaviour["first_write"] = True
    _pass({})
    assert len(fake.patches) == 2, fake.patches  # placement + mark, then the final status
    assert _reconciling(fake.patches[0]) == "True" and "placement" in fake.patches[0]["status"]
    assert _reconciling(fake.patches[1]) == "False"
    assert [e["reason"] for e in events] == ["Succeeded"], events  # Ready=True only
    assert events[0]["message"].startswith("Ready=True")


def test_a_spec_change_marks_at_once_and_posts_spec_changed_and_reconciling_false(world):
    fake, events, _ = world
    _pass({})
    before = len(fake.patches)
    events.clear()
    _pass(copy.deepcopy(fake.status(NAME)), generation=2)
    assert _reconciling(fake.patches[before]) == "True" and len(fake.patches) == before + 2
    reasons = [e["message"].split(":")[0] for e in events]
    assert reasons == ["Reconciling=True", "Reconciling=False"], events


def test_a_creation_whose_pass_fails_still_writes_its_mark(world):
    fake, events, behaviour = world
    behaviour["raise"] = RuntimeError("the API server went away")
    with pytest.raises(RuntimeError):
        _pass({})
    assert len(fake.patches) == 1 and _reconciling(fake.patches[0]) == "True", fake.patches
    assert NAME not in tenant_services.carried
