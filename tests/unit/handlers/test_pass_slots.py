"""At most settings.reconcileConcurrency Tenant passes converge at once, first come first served.

The real `tenant._reconcile` of 20 tenants at once, with a fake API (a dict per tenant and its merge
patches) and a converge that counts how many run together.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from tenancy_operator.handlers import tenant
from tenancy_operator.handlers.loop_slots import LoopSemaphore
from tenancy_operator.reconcile.status import PartResult

TENANTS = 20


@pytest.fixture
def world(tenant_pass):
    seen = {"now": 0, "peak": 0, "order": []}

    async def converge(name, uid, body, logger, kwargs):
        seen["order"].append(name)
        seen["now"] += 1
        seen["peak"] = max(seen["peak"], seen["now"])
        await asyncio.sleep(0.01)
        seen["now"] -= 1
        return tenant.Outcome(parts=[PartResult("NamespaceReady", True, "Succeeded", "namespace ready")])

    tenant_pass(converge)
    return seen, [f"slots-{i:02d}" for i in range(TENANTS)]


async def _all_at_once(names):
    async def one(name):
        meta = {"name": name, "uid": f"uid-{name}", "generation": 1}
        await tenant._reconcile(body={"metadata": meta, "spec": {}, "status": {}}, meta=dict(meta), status={},
                                logger=logging.getLogger("t"))
    await asyncio.gather(*(one(n) for n in names))


@pytest.mark.parametrize(("limit", "peak"), [(1, 1), (3, 3), (8, 8), (0, TENANTS)])
def test_at_most_the_limit_converge_at_once(world, monkeypatch, limit, peak):
    seen, names = world
    monkeypatch.setattr(tenant, "_pass_slots", LoopSemaphore(limit))
    asyncio.run(_all_at_once(names))
    assert seen["peak"] == peak
    assert sorted(seen["order"]) == names, "a tenant's pass did not run"


def test_slots_are_taken_first_come_first_served(world, monkeypatch):
    seen, names = world
    monkeypatch.setattr(tenant, "_pass_slots", LoopSemaphore(2))
    asyncio.run(_all_at_once(names))
    assert seen["order"] == names


def test_each_event_loop_has_its_own_slots():
    slots = LoopSemaphore(1)

    async def contended():
        async def hold():
            async with slots.hold():
                await asyncio.sleep(0.01)
        await asyncio.gather(hold(), hold())  # the second waits: the semaphore binds to this loop
        return True

    # One semaphore for both loops would refuse the second ("bound to a different event loop").
    assert asyncio.run(contended()) and asyncio.run(contended())
    shared = asyncio.Semaphore(1)

    async def contended_shared():
        async def hold():
            async with shared:
                await asyncio.sleep(0.01)
        await asyncio.gather(hold(), hold())

    asyncio.run(contended_shared())
    with pytest.raises(RuntimeError, match="different event loop"):
        asyncio.run(contended_shared())


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError):
        LoopSemaphore(-1)


@pytest.mark.parametrize(("value", "expected"), [(None, 64), ("0", 0), ("16", 16)])
def test_the_bound_comes_from_the_environment(monkeypatch, value, expected):
    from tenancy_operator.handlers import config
    if value is None:
        monkeypatch.delenv("TENANCY_RECONCILE_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("TENANCY_RECONCILE_CONCURRENCY", value)
    assert config.load().reconcile_concurrency == expected


@pytest.mark.parametrize("value", ["-1", "2.5"])
def test_a_bound_that_is_no_count_is_refused_at_start(monkeypatch, value):
    from tenancy_operator.handlers import config
    monkeypatch.setenv("TENANCY_RECONCILE_CONCURRENCY", value)
    with pytest.raises(ValueError, match="TENANCY_RECONCILE_CONCURRENCY"):
        config.load()


def test_full_only_while_every_slot_is_held():
    slots, unbounded = LoopSemaphore(2), LoopSemaphore(0)

    async def holding():
        seen = [slots.full()]
        async with slots.hold():
            seen.append(slots.full())
            async with slots.hold():
                seen.append(slots.full())
                async with unbounded.hold():
                    seen.append(unbounded.full())
        return seen + [slots.full()]

    assert asyncio.run(holding()) == [False, False, True, False, False]


def test_a_verify_firing_waits_while_creations_hold_every_slot(world, monkeypatch):
    """The verify timer's handler with every slot held: deferred twice, then it runs anyway."""
    seen, names = world
    slots = LoopSemaphore(1)
    monkeypatch.setattr(tenant, "_pass_slots", slots)
    name = names[0]
    meta = {"name": name, "uid": f"uid-{name}", "generation": 1}

    async def fire_while_held(times):
        ran = []
        async with slots.hold():  # a creation of another tenant holds the only slot
            for _ in range(times):
                before = len(seen["order"])
                task = asyncio.create_task(tenant.verify(meta=dict(meta), body={"metadata": meta, "spec": {},
                                                                                 "status": {}},
                                                         status={}, logger=logging.getLogger("t")))
                await asyncio.sleep(0.05)
                ran.append(not task.done() or len(seen["order"]) > before)
                if not task.done():
                    break
        await asyncio.sleep(0.05)
        return ran

    tenant._schedule.forget(name)
    assert asyncio.run(fire_while_held(3)) == [False, False, True]
    assert seen["order"] == [name], "the third firing ran its pass once the slot was free"
    tenant._schedule.forget(name)
