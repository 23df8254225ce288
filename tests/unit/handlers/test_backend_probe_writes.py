"""The Backend probe writes status only when something a person reads changed, never for the probe's time.

The fleet bench's first runs (bench/scale/RESULTS.md, N=1) counted one `patch backends` per Backend
in the idle window. It was `tenantsPlaced` going from 0 to 1: the probe timer (every verify interval / 2)
writes the count of tenants placed there at its next run after a placement, which then fell inside
a window that began earlier. Probes that find what the status already says write nothing, however
much time passed (`lastCheckedAt` goes only with a change); this test keeps it so.
"""

import asyncio
import copy
import logging
from types import SimpleNamespace

import pytest
from tenancy_operator.backends.base import BackendUnavailable, Target
from tenancy_operator.handlers import backend

NAME = "pg-probe"


class FakeAdapter:
    def __init__(self):
        self.down = False

    async def probe(self, target):
        if self.down:
            raise BackendUnavailable("postgres backend pg-probe: connection refused")
        return "15.18"


@pytest.fixture
def world(monkeypatch):
    patches, events, adapter = [], [], FakeAdapter()

    async def merge_patch(kind, name, namespace, patch, subresource=None):
        patches.append(copy.deepcopy(patch))

    async def target_for(body):
        return Target(name=NAME, type="postgres", host="127.0.0.1", port=5432)

    monkeypatch.setattr(backend.kube, "merge_patch", merge_patch)
    monkeypatch.setattr(backend, "target_for", target_for)
    monkeypatch.setattr(backend.registry, "adapter", lambda btype: adapter)
    monkeypatch.setattr(backend.events, "post", lambda body, **kw: events.append(kw["reason"]))
    return patches, events, adapter


def _probe(status, placed=0, now="2026-12-04T08:00:00Z", monkeypatch=None):
    body = SimpleNamespace(metadata={"name": NAME, "generation": 1}, spec={"type": "postgres"}, status=status)
    index = {("postgres", NAME): [f"t{i}" for i in range(placed)]} if placed else {}
    monkeypatch.setattr(backend.cond, "now_iso", lambda: now)
    asyncio.run(backend._probe(body=body, logger=logging.getLogger("t"), placements=index))


def _applied(status, patches):
    return {**status, **patches[-1]["status"]} if patches else status


def test_probes_that_find_the_same_write_nothing_whatever_the_time(world, monkeypatch):
    patches, events, _ = world
    _probe({}, monkeypatch=monkeypatch)
    assert len(patches) == 1 and events == ["Reachable"]
    status = _applied({}, patches)
    for minute in range(1, 6):  # later probes, the server the same, nothing placed or removed
        _probe(copy.deepcopy(status), now=f"2026-12-04T08:0{minute}:00Z", monkeypatch=monkeypatch)
    assert len(patches) == 1 and events == ["Reachable"]


def test_a_placed_tenant_is_one_write_of_the_count_and_no_event(world, monkeypatch):
    patches, events, _ = world
    _probe({}, monkeypatch=monkeypatch)
    status = _applied({}, patches)
    _probe(copy.deepcopy(status), placed=1, now="2026-12-04T08:01:00Z", monkeypatch=monkeypatch)
    assert len(patches) == 2
    changed = {k for k, v in patches[-1]["status"].items() if status.get(k) != v}
    assert changed == {"tenantsPlaced", "lastCheckedAt"}
    status = _applied(status, patches)
    _probe(copy.deepcopy(status), placed=1, now="2026-12-04T08:02:00Z", monkeypatch=monkeypatch)
    assert len(patches) == 2 and events == ["Reachable"]


def test_health_changes_write_and_say_so_each_way(world, monkeypatch):
    patches, events, adapter = world
    _probe({}, monkeypatch=monkeypatch)
    status = _applied({}, patches)
    adapter.down = True
    _probe(copy.deepcopy(status), now="2026-12-04T08:01:00Z", monkeypatch=monkeypatch)
    status = _applied(status, patches)
    assert status["phase"] == "Unavailable"
    _probe(copy.deepcopy(status), now="2026-12-04T08:01:30Z", monkeypatch=monkeypatch)  # still down: no write
    assert len(patches) == 2
    adapter.down = False
    _probe(copy.deepcopy(status), now="2026-12-04T08:02:00Z", monkeypatch=monkeypatch)
    assert len(patches) == 3 and events == ["Reachable", "BackendUnavailable", "Reachable"]
