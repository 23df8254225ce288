"""A `migrate-database` hold (`status.migration`) that outlived its run is lifted by the Tenant's own pass.

The run's compensation `thaw_source` lifts the freeze (connection limit back, hold off). When it cannot
(the source PostgreSQL is down through the same outage that failed `copy`), the run still ends (Failed,
a `CompensationFailed` Event) or is deleted, and nothing would ever lift the hold: the tenant would stay
frozen (CONNECTION LIMIT 0, DatabaseReady=Migrating) for good. So every Tenant pass asks whether the
hold's run still owns it: a run that is finished (Succeeded, Failed, Cancelled), gone (for a hold older
than ORPHAN_GRACE_S, 10 minutes), or names another tenant does not. Such a hold is cleared (guarded by the Tenant's resourceVersion, so a hold a new run
took meanwhile is never cleared); the same pass then converges PostgreSQL as for any tenant, which puts
the login roles' connection limit back to spec.postgres.connectionLimit, and while the source is down
that part fails and is retried with backoff until it answers. A run being deleted keeps its hold: its
finalizer compensates first (handlers/workflow_run_end.py).
"""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any

from ..backends import kube
from ..workflows import engine
from . import config

__all__ = ["stale", "lift_if_stale", "ORPHAN_GRACE_S"]


ORPHAN_GRACE_S = 600.0
"""A hold naming a WorkflowRun that does not exist is lifted only once it is this old (seconds since its
`since`): a deleted run lifts its own hold through its finalizer, so a missing one is an orphan (an
older operator, a lost object) or a migration driven step by step without a run object."""


def stale(tenant: str, hold: dict[str, Any], run: dict[str, Any] | None, now: float | None = None) -> str:
    """Why `hold` no longer belongs to a live run ('' when its run still owns it). `run`: the WorkflowRun
    the hold names, as read (None: it does not exist); `now`: epoch seconds (default: the clock)."""
    name = hold.get("run") or ""
    if not name:
        return "it names no WorkflowRun"
    if run is None:
        since = hold.get("since") or ""
        try:
            age = (now if now is not None else time.time()) - calendar.timegm(time.strptime(since, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            age = ORPHAN_GRACE_S  # no readable time: as old as it needs to be
        if age < ORPHAN_GRACE_S:
            return ""  # a migration driven without a WorkflowRun object (tests, tools) is given its time
        return f"WorkflowRun {name} no longer exists"
    if (run.get("metadata") or {}).get("deletionTimestamp"):
        return ""  # its finalizer compensates (and lifts the hold) before it goes
    if (run.get("spec") or {}).get("tenant") != tenant:
        return f"WorkflowRun {name} is a run for tenant {(run.get('spec') or {}).get('tenant')}"
    phase = (run.get("status") or {}).get("phase")
    if phase in engine.FINAL:
        return f"WorkflowRun {name} is {phase}"
    return ""


async def lift_if_stale(tenant: str, logger: logging.Logger) -> str:
    """Clear the Tenant's `status.migration` when `stale`; returns what was done ('' when nothing)."""
    obj = await kube.get("Tenant", tenant)
    hold = ((obj or {}).get("status") or {}).get("migration")
    if not obj or not hold:
        return ""
    run = await kube.get("WorkflowRun", hold.get("run") or "-", config.load().operator_namespace)
    why = stale(tenant, hold, run)
    if not why:
        return ""
    try:
        await kube.merge_patch("Tenant", tenant, None, {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                                        "status": {"migration": None}}, "status")
    except kube.Conflict:
        return ""  # the Tenant changed (a new run's hold?): the next pass looks again
    logger.warning("lifted the migration hold of %s: %s; PostgreSQL converges to the spec again", hold.get("run"), why)
    return f"migration hold of WorkflowRun {hold.get('run')} lifted ({why})"
