"""Events on the operator's objects, posted so that `kubectl describe` lists them.

Why not `kopf.event`: for a cluster-scoped object (Tenant, Backend, the policies) kopf writes its own
namespace into the Event's `involvedObject.namespace` (nolar/kopf#949), and `kubectl describe` of a
cluster-scoped object selects `involvedObject.namespace=` (empty) with the object's uid: not one of
the operator's Events showed under a Tenant. Here the reference carries the object's own namespace
(none for a cluster-scoped one) and its uid; the Event itself lives in the object's namespace, or in
`default` for a cluster-scoped object, as Kubernetes' own Events on Nodes do.

:func:`post` queues; :data:`WORKERS` background tasks post, each object's Events by one of them and
in order (as kopf's per-object posters), so a handler never waits on an Event and one slow object
does not hold up most others. A post failing for a transient cause (no answer, 429, 5xx) is retried
after :data:`RETRY_DELAYS` (kopf's too retried), then logged (status and reason, never the message)
and dropped: Events are auxiliary, status carries the state. :func:`send` posts at once; :func:`close`
(operator cleanup) lets the queues drain briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..api import conditions as cond
from ..backends import kube

__all__ = ["post", "post_condition_changes", "send", "close", "reference", "COMPONENT"]

COMPONENT = "tenancy-operator"
MAX_MESSAGE = 1024  # kopf's cut too: Event messages are for people, and etcd objects stay small
QUEUE_LIMIT = 1000  # per worker: an API outage must not grow the queues without bound (newer Events dropped)
WORKERS = 4
RETRY_DELAYS = (1.0, 3.0)  # seconds before the second and third try

log = logging.getLogger("tenancy.events")
_queues: list[asyncio.Queue[dict[str, Any]]] = []
_workers: list[asyncio.Task[None]] = []


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


async def _create(event: dict[str, Any], delays: tuple[float, ...] = ()) -> bool:
    for delay in (*delays, None):
        try:
            await kube.create(event)
            return True
        except Exception as exc:  # noqa: BLE001 - auxiliary: never fail a handler for an Event
            transient = not isinstance(exc, kube.KubeError) or exc.status in (0, 429) or exc.status >= 500
            if delay is not None and transient:
                await asyncio.sleep(delay)
                continue
            ref = event["involvedObject"]
            why = f"{exc.status} {exc.reason}" if isinstance(exc, kube.KubeError) else type(exc).__name__
            log.warning("could not post Event %s on %s %s: %s", event["reason"], ref.get("kind"), ref.get("name"), why)
            return False
    return False


async def send(obj: Mapping[str, Any], *, type: str, reason: str, message: str = "") -> bool:  # noqa: A002 - kopf's keyword
    """Post an Event on `obj` (a body with apiVersion, kind, metadata.name and uid) now, with the retries;
    False when it could not be posted (logged)."""
    return await _create(_event(obj, type, reason, message), RETRY_DELAYS)


async def _drain(queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        event = await queue.get()
        try:
            await _create(event, RETRY_DELAYS)
        finally:
            queue.task_done()


def _started() -> list[asyncio.Queue[dict[str, Any]]]:
    """This loop's queues, with their workers (started again after a worker ended or on a new loop)."""
    global _queues, _workers
    loop = asyncio.get_running_loop()
    if len(_workers) != WORKERS or any(w.get_loop() is not loop for w in _workers):
        _queues = [asyncio.Queue(QUEUE_LIMIT) for _ in range(WORKERS)]
        _workers = [loop.create_task(_drain(q), name=f"tenancy-events-{k}") for k, q in enumerate(_queues)]
    for k, w in enumerate(_workers):
        if w.done():  # only a cancellation ends one: a new worker takes over its queue, nothing queued is lost
            _workers[k] = loop.create_task(_drain(_queues[k]), name=f"tenancy-events-{k}")
    return _queues


def post(obj: Mapping[str, Any], *, type: str, reason: str, message: str = "") -> None:  # noqa: A002 - kopf's keyword
    """Queue an Event on `obj` (as `kopf.event`, which it replaces; see the module's docstring). Call from
    the operator's event loop (every handler runs there)."""
    event = _event(obj, type, reason, message)
    ref = event["involvedObject"]
    queues = _started()
    key = ref.get("uid") or f"{ref.get('kind')}/{ref.get('namespace')}/{ref.get('name')}"
    try:
        queues[zlib.crc32(key.encode()) % WORKERS].put_nowait(event)
    except asyncio.QueueFull:
        log.warning("Event %s on %s %s dropped: %d Events wait to be posted", reason, ref.get("kind"),
                    ref.get("name"), QUEUE_LIMIT)


def post_condition_changes(obj: Mapping[str, Any], conditions: list[dict[str, Any]], changed: list[str]) -> None:
    """One Event per condition type in `changed`: `Type=Status: message`, reason the condition's, Warning
    when the new state is bad (:func:`..api.conditions.is_good`)."""
    for type_ in changed:
        c = cond.get_condition(conditions, type_) or {}
        good = cond.is_good(type_, c.get("status"), c.get("reason"))
        post(obj, type="Normal" if good else "Warning", reason=c.get("reason") or type_,
             message=f"{type_}={c.get('status')}: {c.get('message') or c.get('reason')}")


async def close(timeout: float = 2.0) -> None:
    """Let the queued Events go out for up to `timeout` seconds, then stop the workers (operator cleanup:
    kopf waits 5 s for tasks left running, and the API client closes after this)."""
    global _workers
    mine = [w for w in _workers if not w.done() and w.get_loop() is asyncio.get_running_loop()]
    if mine:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in _queues)), timeout)
        left = sum(q.qsize() for q in _queues)
        if left:
            log.warning("%d Events not posted: the operator stops", left)
    for w in mine:
        w.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
    _workers = []
