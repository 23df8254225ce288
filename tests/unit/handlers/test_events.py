"""Events are posted so that `kubectl describe` finds them: kubectl selects a cluster-scoped object's
Events by involvedObject.namespace="" and its uid (kopf writes its own namespace there: kopf#949)."""

import asyncio
import zlib

import pytest
from tenancy_operator.handlers import events

TENANT = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "acme", "uid": "u-1"}}
RUN = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun",
       "metadata": {"name": "r", "namespace": "tenant-acme", "uid": "u-2"}}


def test_a_cluster_scoped_objects_reference_has_no_namespace_and_its_event_lives_in_default():
    e = events._event(TENANT, "Warning", "IsolationBreached", "x")
    assert e["involvedObject"] == {"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "name": "acme", "uid": "u-1"}
    assert e["metadata"]["namespace"] == "default"
    assert e["source"] == {"component": "tenancy-operator"} and e["type"] == "Warning"


def test_a_namespaced_objects_event_lives_in_its_namespace():
    e = events._event(RUN, "Normal", "Succeeded", "ok")
    assert e["involvedObject"]["namespace"] == "tenant-acme" and e["metadata"]["namespace"] == "tenant-acme"


def test_a_long_message_is_cut_to_what_the_api_server_takes():
    assert len(events._event(TENANT, "Normal", "R", "m" * 5000)["message"]) == events.MAX_MESSAGE


def _fake_api(monkeypatch, fail: dict[str, int]):
    """kube.create that fails `fail[reason]` times (a 503) before it takes the Event; no retry waits."""
    posted = []

    async def create(event):
        if fail.get(event["reason"], 0) > 0:
            fail[event["reason"]] -= 1
            raise events.kube.KubeError(503, "ServiceUnavailable", "api down")
        posted.append(event["reason"])

    monkeypatch.setattr(events.kube, "create", create)
    monkeypatch.setattr(events, "RETRY_DELAYS", (0.0, 0.0))
    monkeypatch.setattr(events, "_workers", [])
    return posted


def test_one_objects_events_post_in_order_and_a_transient_failure_is_retried(monkeypatch):
    posted = _fake_api(monkeypatch, {"B": 2, "Bad": 5})

    async def main():
        for reason in ("A", "B", "Bad", "C"):
            events.post(TENANT, type="Normal", reason=reason, message="")
        events.post(RUN, type="Normal", reason="Other", message="")
        workers = list(events._workers)
        await events.close(5)
        return [w for w in workers if w.done()]  # inside the loop: asyncio.run cancels what is left after

    workers = asyncio.run(main())
    assert [r for r in posted if r != "Other"] == ["A", "B", "C"]  # B after two 503s; Bad dropped after 3 tries
    assert "Other" in posted and events._workers == []
    assert len(workers) == events.WORKERS and all(w.done() for w in workers)  # kopf waits 5 s on a live task


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_a_refused_event_is_not_retried(monkeypatch, status):
    calls = []

    async def create(event):
        calls.append(event["reason"])
        raise events.kube.KubeError(status, "Refused", "bad")

    monkeypatch.setattr(events.kube, "create", create)
    assert asyncio.run(events.send(TENANT, type="Normal", reason="R")) is False and calls == ["R"]


def test_a_worker_cancelled_from_outside_is_replaced_and_its_queue_kept(monkeypatch):
    posted = _fake_api(monkeypatch, {})

    async def main():
        events._started()
        target = zlib.crc32(b"u-1") % events.WORKERS  # TENANT's worker
        events._workers[target].cancel()
        await asyncio.sleep(0)
        events._queues[target].put_nowait(events._event(TENANT, "Normal", "Queued", ""))
        events.post(TENANT, type="Normal", reason="After", message="")
        await events.close(5)

    asyncio.run(main())
    assert posted == ["Queued", "After"]


def test_close_returns_at_its_timeout_with_events_still_failing(monkeypatch):
    _fake_api(monkeypatch, {"Slow": 99})
    monkeypatch.setattr(events, "RETRY_DELAYS", (30.0,))

    async def main():
        events.post(TENANT, type="Normal", reason="Slow", message="")
        await asyncio.sleep(0)
        started = asyncio.get_running_loop().time()
        await events.close(0.2)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(main()) < 2


def test_each_loop_gets_its_own_workers(monkeypatch):
    posted = _fake_api(monkeypatch, {})

    async def main(reason):
        events.post(TENANT, type="Normal", reason=reason, message="")
        await asyncio.wait_for(asyncio.gather(*(q.join() for q in events._queues)), 5)

    asyncio.run(main("A"))  # leaves its workers behind, cancelled with that loop
    asyncio.run(main("B"))
    assert posted == ["A", "B"]
