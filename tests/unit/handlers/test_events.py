"""Events are posted so that `kubectl describe` finds them: kubectl selects a cluster-scoped object's
Events by involvedObject.namespace="" and its uid (kopf writes its own namespace there: kopf#949)."""

import asyncio

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


def test_post_queues_and_one_worker_posts_in_order_and_a_failure_is_dropped(monkeypatch):
    posted = []

    async def create(event):
        if event["reason"] == "Bad":
            raise ConnectionError("api down")
        posted.append(event["reason"])

    monkeypatch.setattr(events.kube, "create", create)
    monkeypatch.setattr(events, "_queue", None)
    monkeypatch.setattr(events, "_worker", None)

    async def main():
        for reason in ("A", "Bad", "B", "C"):
            events.post(TENANT, type="Normal", reason=reason, message="")
        await asyncio.wait_for(events._queue.join(), 5)

    asyncio.run(main())
    assert posted == ["A", "B", "C"]
