"""The WorkflowRun daemon against an in-memory API server: the lease, waiting, TTL, refusals, unbuilt workflows."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from tenancy_operator.backends import kube
from tenancy_operator.handlers import workflow_run as wr
from tenancy_operator.workflows import engine, faults, registry
from tenancy_operator.workflows.engine import Step


class Stopped:
    def __init__(self) -> None:
        self.flag = False

    def __bool__(self) -> bool:
        return self.flag

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


class FakeApi:
    """Objects by (kind, namespace, name); resourceVersion-guarded merge patches like the API server."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.rv = 0

    def put(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj

    async def list_objects(self, kind: str, namespace: str | None = None, label_selector: str | None = None,
                           all_namespaces: bool = False) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                if k == kind and (all_namespaces or ns == namespace)]

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    async def merge_patch(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any],
                          subresource: str | None = None, field_manager: str | None = None) -> dict[str, Any]:
        obj = self.objects[(kind, namespace, name)]
        rv = (patch.get("metadata") or {}).get("resourceVersion")
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise kube.Conflict(409, "Conflict", "the object has been modified")

        def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
            for k, v in part.items():
                if v is None:
                    into.pop(k, None)
                elif isinstance(v, dict) and isinstance(into.get(k), dict):
                    merge(into[k], v)
                else:
                    into[k] = copy.deepcopy(v)

        merge(obj, {k: v for k, v in patch.items()})
        self.put(obj)
        return copy.deepcopy(obj)

    async def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        return self.objects.pop((kind, namespace, name), None) is not None


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    for fn in ("get", "merge_patch", "delete", "list_objects"):
        monkeypatch.setattr(wr.kube, fn, getattr(fake, fn))
    monkeypatch.setattr(wr.events, "post", lambda *a, **kw: None)
    monkeypatch.setattr(wr, "POLL", 0.01)
    fake.put({"kind": "Tenant", "metadata": {"name": "acme", "annotations": {}}})
    return fake


def _run(api: FakeApi, name: str, namespace: str = "tenant-acme", **spec: Any) -> dict[str, Any]:
    body = {"kind": "WorkflowRun", "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"tenant": "acme", "workflow": "rotate-credentials", "parameters": {}, "cancel": False, **spec}}
    api.put(body)
    return body


async def _drive(api: FakeApi, body: dict[str, Any]) -> dict[str, Any]:
    import logging

    await wr.drive(body, body["spec"], body["metadata"], Stopped(), logging.getLogger("test"))
    found = await api.get("WorkflowRun", body["metadata"]["name"], body["metadata"]["namespace"])
    return (found or {}).get("status") or {}


def _fake_workflow(monkeypatch: pytest.MonkeyPatch, log: list[str], gate: asyncio.Event | None = None) -> None:
    async def act(ctx: engine.StepContext) -> dict[str, str]:
        log.append(f"start {ctx.run}")
        if gate is not None:
            await gate.wait()
        log.append(f"end {ctx.run}")
        return {"done": ctx.run}

    monkeypatch.setitem(registry.WORKFLOWS, "rotate-credentials", lambda params: [Step("act", act)])


def test_a_run_succeeds_holds_then_releases_the_lease(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    _fake_workflow(monkeypatch, log)
    status = asyncio.run(_drive(api, _run(api, "r1")))
    assert status["phase"] == "Succeeded" and status["outputs"] == {"done": "r1"}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert wr.LEASE not in api.objects[("Tenant", None, "acme")]["metadata"]["annotations"]


def test_a_second_run_waits_naming_the_holder_then_runs(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []

    async def scenario() -> dict[str, Any]:
        gate = asyncio.Event()
        _fake_workflow(monkeypatch, log, gate)
        first = asyncio.ensure_future(_drive(api, _run(api, "r1")))
        while "start r1" not in log:
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(_drive(api, _run(api, "r2")))
        for _ in range(100):
            status = (await api.get("WorkflowRun", "r2", "tenant-acme"))["status"] if api.objects[
                ("WorkflowRun", "tenant-acme", "r2")].get("status") else {}
            if status.get("phase") == "Waiting":
                break
            await asyncio.sleep(0.01)
        assert status["holder"] == "tenant-acme/r1" and "r1" in status["message"]
        assert "start r2" not in log
        gate.set()
        await first
        return await second

    status = asyncio.run(scenario())
    assert status["phase"] == "Succeeded" and status.get("holder") is None
    assert log == ["start r1", "end r1", "start r2", "end r2"]


def test_a_platform_run_waiting_behind_goes_before_an_earlier_owner_run(api: FakeApi,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []

    async def phase(name: str, namespace: str) -> str:
        return ((await api.get("WorkflowRun", name, namespace)) or {}).get("status", {}).get("phase", "")

    async def scenario() -> None:
        gate = asyncio.Event()
        _fake_workflow(monkeypatch, log, gate)
        first = asyncio.ensure_future(_drive(api, _run(api, "r1")))
        while "start r1" not in log:
            await asyncio.sleep(0.01)
        owner = asyncio.ensure_future(_drive(api, _run(api, "r2")))
        while await phase("r2", "tenant-acme") != "Waiting":
            await asyncio.sleep(0.01)
        platform = asyncio.ensure_future(_drive(api, _run(api, "p", wr.CFG.operator_namespace)))
        while await phase("p", wr.CFG.operator_namespace) != "Waiting":
            await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, owner, platform)

    asyncio.run(scenario())
    assert log == ["start r1", "end r1", "start p", "end p", "start r2", "end r2"]


def test_a_stale_lease_of_a_deleted_run_is_taken_over(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_workflow(monkeypatch, [])
    api.objects[("Tenant", None, "acme")]["metadata"]["annotations"][wr.LEASE] = "tenant-acme/gone"
    assert asyncio.run(_drive(api, _run(api, "r1")))["phase"] == "Succeeded"


@pytest.mark.parametrize("switch", ["", "0", "1"])
def test_a_fail_step_annotation_counts_only_in_a_process_with_the_test_switch(
        api: FakeApi, monkeypatch: pytest.MonkeyPatch, switch: str) -> None:
    """tenancy.dev/test-fail-step on a run is read only with TENANCY_TEST_FAULTS=1 (never set by the chart):
    a production operator runs the annotated run as any other."""
    if switch:
        monkeypatch.setenv(faults.ENABLED_BY, switch)
    else:
        monkeypatch.delenv(faults.ENABLED_BY, raising=False)
    log: list[str] = []
    _fake_workflow(monkeypatch, log)
    body = _run(api, "r1")
    body["metadata"]["annotations"] = {faults.FAIL_STEP: "act"}
    api.put(body)
    status = asyncio.run(_drive(api, body))
    if switch == "1":
        assert status["phase"] == "Failed" and log == [] and "test fault injected" in status["message"]
        assert status["steps"][0]["attempts"] == 1
    else:
        assert status["phase"] == "Succeeded" and log == ["start r1", "end r1"]
    assert wr.LEASE not in api.objects[("Tenant", None, "acme")]["metadata"]["annotations"]


def test_ttl_deletes_a_finished_run(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_workflow(monkeypatch, [])
    asyncio.run(_drive(api, _run(api, "r1", ttlSecondsAfterFinished=0)))
    assert ("WorkflowRun", "tenant-acme", "r1") not in api.objects


@pytest.mark.parametrize(("spec", "namespace", "reason", "text"), [
    ({"workflow": "offboard"}, "tenant-acme", "Forbidden", "only from the operator's namespace"),
    ({"tenant": "other"}, "tenant-acme", "Forbidden", "not other"),
    ({"workflow": "restore"}, "tenancy-system", "InvalidParameters", "needs the parameter archive"),
    ({"workflow": "verify-isolation", "schedule": "every day"}, "tenant-acme", "InvalidSchedule", "every day"),
    # croniter reads a sixth field as seconds: every second would hammer every backend (found in review).
    ({"workflow": "verify-isolation", "schedule": "* * * * * *"}, "tenant-acme", "InvalidSchedule", "five fields"),
    # A schedule that never comes (30 February) crashed the daemon every 5 s after the first run.
    ({"workflow": "verify-isolation", "schedule": "0 0 30 2 *"}, "tenant-acme", "InvalidSchedule", "never"),
    # A tenant owner's schedule is bounded (found in review: `* * * * *` probed every backend every minute);
    # the gap may be short at one hour only (3:00 and 3:05) and still counts.
    ({"workflow": "verify-isolation", "schedule": "* * * * *"}, "tenant-acme", "ScheduleTooFrequent", "60 s apart"),
    ({"workflow": "verify-isolation", "schedule": "0,5 3 * * *"}, "tenant-acme", "ScheduleTooFrequent", "300 s"),
])
def test_refused_and_unbuilt_runs_are_stalled(api: FakeApi, spec: dict, namespace: str, reason: str, text: str) -> None:
    status = asyncio.run(_drive(api, _run(api, "r1", namespace, **spec)))
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert status["phase"] == "Failed" and stalled["status"] == "True" and stalled["reason"] == reason
    assert text in stalled["message"]


def test_a_stalled_run_is_not_written_again_on_restart(api: FakeApi) -> None:
    body = _run(api, "r1", workflow="restore")
    asyncio.run(_drive(api, body))
    rv = api.objects[("WorkflowRun", "tenant-acme", "r1")]["metadata"]["resourceVersion"]
    again = copy.deepcopy(api.objects[("WorkflowRun", "tenant-acme", "r1")])
    asyncio.run(_drive(api, again))
    assert api.objects[("WorkflowRun", "tenant-acme", "r1")]["metadata"]["resourceVersion"] == rv


def test_an_hourly_owner_schedule_and_a_platform_minute_schedule_are_not_too_frequent() -> None:
    from datetime import UTC, datetime
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert wr.schedule_too_frequent("0 * * * *", now, 900) == ""
    assert wr.schedule_too_frequent("*/15 * * * *", now, 900) == ""
    assert "60 s apart" in wr.schedule_too_frequent("* * * * *", now, 900)


def test_cancel_stops_a_scheduled_run(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: a cancelled scheduled run went on being reset and cancelled at every tick of its
    schedule (writes and Warning Events forever), as cancel only acted on a run not yet started."""
    log: list[str] = []
    _fake_workflow(monkeypatch, log)
    monkeypatch.setitem(registry.WORKFLOWS, "verify-isolation", registry.WORKFLOWS["rotate-credentials"])
    body = _run(api, "r1", workflow="verify-isolation", schedule="0 * * * *", cancel=True)
    body["status"] = {"phase": "Succeeded", "nextRunAt": "2020-01-01T00:00:00Z", "runs": 3,
                      "steps": [{"name": "act", "phase": "Succeeded", "attempts": 1}]}
    api.put(body)
    status = asyncio.run(asyncio.wait_for(_drive(api, body), 5))
    assert log == [], "nothing runs again once cancelled"
    assert status["phase"] == "Succeeded" and not status.get("nextRunAt"), status
