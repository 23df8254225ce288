"""Events on the operator's objects, posted so that `kubectl describe` lists them.

Why not `kopf.event`: for a cluster-scoped object (Tenant, Backend, the policies) kopf writes its own
namespace into the Event's `involvedObject.namespace` (nolar/kopf#949), and `kubectl describe` of a
cluster-scoped object selects `involvedObject.namespace=` (empty) with the object's uid: not one of
the operator's Events showed under a Tenant. Here the reference carries the object's own namespace
(none for a cluster-scoped one) and its uid; the Event itself lives in the object's namespace, or in
`default` for a cluster-scoped object, as Kubernetes' own Events on Nodes do.

:func:`post` queues; one background task posts in order, as kopf's poster does, so a handler never
waits on an Event. An Event that cannot be posted is logged (never its message's secrets: messages
carry none) and dropped: Events are auxiliary, status carries the state. :func:`send` posts at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..backends import kube

__all__ = ["post", "send", "reference", "COMPONENT"]

COMPONENT = "tenancy-operator"
MAX_MESSAGE = 1024  # what kopf keeps too; the API server refuses longer ones
QUEUE_LIMIT = 1000  # an API outage must not grow the queue without bound: newer Events are dropped

log = logging.getLogger("tenancy.events")
_queue: asyncio.Queue[dict[str, Any]] | None = None
_worker: asyncio.Task[None] | None = None


def reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The `involvedObject` of an Event on `obj`: apiVersion, kind, name, uid, and namespace only for a
    namespaced object."""
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
           "uid": meta.get("uid")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


def _event(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> dict[str, Any]:
    ref = reference(obj)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{ref.get('name', 'object')}.", "namespace": ref.get("namespace", "default")},
        "involvedObject": ref, "type": type_, "reason": reason, "message": message,
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


async def _create(event: dict[str, Any]) -> bool:
    try:
        await kube.create(event)
        return True
    except Exception as exc:  # noqa: BLE001 - auxiliary: never fail a handler for an Event
        ref = event["involvedObject"]
        log.warning("could not post Event %s on %s %s: %s", event["reason"], ref.get("kind"), ref.get("name"),
                    type(exc).__name__)
        return False


async def send(obj: Mapping[str, Any], *, type: str, reason: str, message: str = "") -> bool:  # noqa: A002 - kopf's keyword
    """Post an Event on `obj` (a body with apiVersion, kind, metadata.name and uid) now; False when it could
    not be posted (logged)."""
    return await _create(_event(obj, type, reason, message))


async def _drain(queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        event = await queue.get()
        await _create(event)
        queue.task_done()


def post(obj: Mapping[str, Any], *, type: str, reason: str, message: str = "") -> None:  # noqa: A002 - kopf's keyword
    """Queue an Event on `obj` (as `kopf.event`, which it replaces; see the module's docstring). Call from
    the operator's event loop (every handler runs there)."""
    global _queue, _worker
    if _queue is None or _worker is None or _worker.done():
        _queue = asyncio.Queue(QUEUE_LIMIT)
        _worker = asyncio.get_running_loop().create_task(_drain(_queue), name="tenancy-events")
    try:
        _queue.put_nowait(_event(obj, type, reason, message))
    except asyncio.QueueFull:
        log.warning("Event %s on %s dropped: %d Events wait to be posted", reason, reference(obj).get("name"),
                    QUEUE_LIMIT)
