"""A WorkflowRun deleted mid-way: compensated before its finalizer comes off, never waiting on a Tenant's."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from tenancy_operator.handlers import workflow_run_end as end
from tenancy_operator.workflows import engine, registry
from tenancy_operator.workflows.engine import Step
from test_workflow_run import FakeApi, _run
from test_workflow_run import api as api  # noqa: F401 - the fixture

ME = "tenant-acme/r1"


def _workflow(monkeypatch: pytest.MonkeyPatch, undone: list[str]) -> None:
    def undo(name: str):
        async def fn(ctx: engine.StepContext) -> None:
            undone.append(name)
        return fn

    async def act(ctx: engine.StepContext) -> None:
        return None

    monkeypatch.setitem(registry.WORKFLOWS, "rotate-credentials",
                        lambda params: [Step("one", act, undo("one")), Step("two", act, undo("two")), Step("three", act)])


def _started(api: FakeApi, lease: bool = True) -> dict[str, Any]:
    body = _run(api, "r1")
    body["status"] = {"phase": "Running", "currentStep": "two", "outputs": {}, "steps": [
        {"name": "one", "phase": "Succeeded", "attempts": 1}, {"name": "two", "phase": "Running", "attempts": 1},
        {"name": "three", "phase": "Pending", "attempts": 0}]}
    if lease:
        api.objects[("Tenant", None, "acme")]["metadata"]["annotations"] = {end.wfr.LEASE: ME}
    return body


def _undo(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(end.kube, "get", api.get)
    monkeypatch.setattr(end.events, "post", lambda *a, **kw: None)
    return asyncio.run(end.undo("r1", "tenant-acme", {}, logging.getLogger("test")))


def test_a_run_deleted_mid_step_is_compensated_last_first_and_lets_the_tenant_go(api, monkeypatch) -> None:
    undone: list[str] = []
    _workflow(monkeypatch, undone)
    _started(api)
    assert _undo(api, monkeypatch) == "compensated"
    assert undone == ["two", "one"], "the step caught running is undone too, then the one before"
    status = api.objects[("WorkflowRun", "tenant-acme", "r1")]["status"]
    assert status["phase"] == "Cancelled" and [s["phase"] for s in status["steps"]] == ["Compensated", "Compensated",
                                                                                       "Skipped"]
    assert end.wfr.LEASE not in api.objects[("Tenant", None, "acme")]["metadata"]["annotations"]


def test_a_tenant_being_deleted_is_not_compensated(api, monkeypatch) -> None:
    undone: list[str] = []
    _workflow(monkeypatch, undone)
    _started(api)
    api.objects[("Tenant", None, "acme")]["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    assert _undo(api, monkeypatch) == "tenant gone or being deleted" and undone == []


def test_a_run_that_never_started_has_nothing_to_undo(api, monkeypatch) -> None:
    undone: list[str] = []
    _workflow(monkeypatch, undone)
    _run(api, "r1")
    api.objects[("Tenant", None, "acme")]["metadata"]["annotations"] = {end.wfr.LEASE: ME}
    assert _undo(api, monkeypatch) == "nothing to undo" and undone == []
    assert end.wfr.LEASE not in api.objects[("Tenant", None, "acme")]["metadata"]["annotations"]
