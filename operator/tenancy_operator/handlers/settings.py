"""kopf settings chosen to avoid known failure modes of long-running operators.

- A silent watch must not stall the operator forever: the server ends each watch after
  `server_timeout`, and the client gives up after `client_timeout` and reconnects.
- Our own progress and diff-base annotations live under tenancy.dev, and the finalizer is ours.
- Events are posted for condition changes only, not for every log line.
- Peering replicas need distinct priorities: kopf pauses *every* operator that sees a live peer of
  the same priority, so two replicas at the default priority would both stand still. The oldest
  replica outranks newer ones, so a rolling update or a restarted pod does not take over from a
  healthy leader; it stands by until the leader's peering record expires or is withdrawn.
- A replica enters the peering record before kopf starts watching, then waits `PEERING_SETTLE`
  seconds. kopf itself writes its first heartbeat and lists the peers at the same moment, so two
  replicas started together could each list before the other had written: both ran for a few
  seconds (resume handlers on every Tenant, twice) until the heartbeats met.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import random
import time
from typing import Any

import kopf

from ..backends import kube
from ..observability import metrics, tracing
from ..reconcile import sharding as shard_rule
from . import config, events, sharding

__all__ = ["configure", "seniority_priority", "flush_traces", "announce", "peer_entry", "PEERING_SETTLE"]

PEERING_SETTLE = 2.0
"""Seconds between entering the peering record and kopf's first look at the peers: more than the time
from one replica's start to its entry (startup is well under a second), so replicas started together
see each other before either handles anything."""

_EPOCH_LIMIT = 2**40  # seconds; far beyond any start time, and the product stays inside int64


def seniority_priority(started_s: float | None = None, rng: random.Random | None = None) -> int:
    """A kopf peering priority that is higher for a replica started earlier; random below the second."""
    started = int(time.time() if started_s is None else started_s)
    return (_EPOCH_LIMIT - started) * 1_000_000 + (rng or random.Random()).randrange(1_000_000)


def peer_entry(priority: int, lifetime: int, now: datetime.datetime | None = None) -> dict[str, Any]:
    """One replica's entry in a kopf peering object's status, as kopf's keep-alive writes it."""
    seen = now or datetime.datetime.now(datetime.UTC)
    return {"priority": int(priority), "lifetime": int(lifetime), "lastseen": seen.isoformat()}


async def announce(settings: kopf.OperatorSettings, logger: logging.Logger, settle: float = PEERING_SETTLE) -> bool:
    """Enter this replica in the peering record under kopf's own identity (`POD_ID`, which the chart
    sets) and priority, then wait `settle` seconds; kopf's first heartbeat overwrites the same entry.
    False (and nothing written) without `POD_ID`, without the peering object or when the API server
    refuses: kopf then decides alone, as before (mandatory peering keeps the replica paused while the
    object is missing; replicas that start before the object exists may both resume for a few seconds
    once it appears)."""
    identity = os.environ.get("POD_ID")
    if settings.peering.standalone or not identity:
        return False
    try:
        await kube.merge_patch("ClusterKopfPeering", settings.peering.name, None,
                               {"status": {identity: peer_entry(settings.peering.priority, settings.peering.lifetime)}})
    except kube.NotFound:
        return False
    except (kube.KubeError, OSError, TimeoutError) as exc:  # optional: kopf's own peering still decides
        logger.warning("could not enter peering %s before starting (%s); kopf's peering decides alone",
                       settings.peering.name, exc)
        return False
    logger.info("entered peering %s as %s; looking at the peers in %.1f s", settings.peering.name, identity, settle)
    await asyncio.sleep(settle)
    return True


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    cfg = config.load()
    # Sharded, each shard has its own finalizer and peering object (reconcile/sharding.py).
    settings.persistence.finalizer = shard_rule.finalizer(cfg.shard, cfg.shards)
    settings.persistence.progress_storage = sharding.ProgressStorage(prefix="tenancy.dev")
    settings.persistence.diffbase_storage = sharding.DiffBase(
        prefix="tenancy.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.posting.level = 20
    settings.posting.loggers = False
    settings.posting.reporting_component = "tenancy-operator"
    settings.execution.max_workers = 8
    settings.batching.error_delays = (1, 2, 5, 10, 20, 30, 60)
    # A deleted Tenant's finalizer comes off only once its verify timer has stopped; kopf looks again
    # every `cancellation_polling` seconds (60 by default), so a timer caught between two passes held
    # a finished deletion for a minute.
    settings.background.cancellation_polling = 1.0
    settings.peering.standalone = cfg.standalone
    # Without the peering CRD kopf would quietly run every replica standalone, all of them active;
    # mandatory peering makes them wait for it instead.
    settings.peering.mandatory = not cfg.standalone
    settings.peering.clusterwide = True
    settings.peering.name = f"{cfg.peering_name}-shard-{cfg.shard}" if cfg.sharded else cfg.peering_name
    settings.peering.lifetime = cfg.peering_lifetime
    settings.peering.priority = seniority_priority()
    metrics.serve(cfg.metrics_port, cfg.metrics_address)
    tracing.setup(cfg.otlp_endpoint)
    await announce(settings, logger)


@kopf.on.cleanup()
def flush_traces(**_: Any) -> None:
    """Spans still queued in the batch exporter go out before the process ends."""
    tracing.shutdown()


@kopf.on.cleanup()
async def close_api_connections(**_: Any) -> None:
    """The API server's keep-alive connections close with the operator (no unclosed-session warning),
    after the queued Events went out (or 2 s)."""
    await events.close()
    await kube.close()
