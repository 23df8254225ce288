"""Suspension decisions (issue 13): who suspends a tenant, what closes, which workloads scale, and when
inactivity suspends. Pure: objects and observations in, patches and verdicts out.

Two ways in, one way of being suspended:
- `spec.state: Suspended` (or Archived), written by a person or by GitOps;
- inactivity (LifecyclePolicy `inactivitySuspendAfter`): the operator puts the annotation
  `tenancy.dev/suspended-for-inactivity` (its time) on the Tenant. It never rewrites spec, so Git
  and the cluster still agree on `state: Active` and no GitOps tool reverts anything; `kubectl tenant
  resume` (spec.state Active and the annotation removed, in one patch) or removing the annotation
  resumes. A spec suspension supersedes the annotation (it is removed), so resuming by spec resumes.

Suspended, either way: every Deployment and StatefulSet in the tenant namespace is scaled to zero
and its replica count kept in its own annotation `tenancy.dev/suspended-replicas`, written in the
same merge patch as `spec.replicas: 0` (one request: no crash can separate them). Resume puts back
exactly that count and removes the annotation in one patch. The logins close too unless the
LifecyclePolicy says `suspendRevokesLogins: false`; an Archived tenant's always close.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..api.lifecycle_policy import LifecyclePolicySpec

__all__ = ["SUSPENDED_REPLICAS", "INACTIVITY", "Mode", "mode", "workload_patch", "remembered_count", "Observation", "Verdict",
           "inactivity", "granularity", "fmt_time", "parse_time"]

SUSPENDED_REPLICAS = "tenancy.dev/suspended-replicas"
"""On a Deployment or StatefulSet of a suspended tenant: its replica count before the suspend."""
INACTIVITY = "tenancy.dev/suspended-for-inactivity"
"""On a Tenant: set by the operator when inactivity suspended it (RFC 3339 time); remove it to resume."""


@dataclass(frozen=True)
class Mode:
    """How suspended a tenant is this pass."""

    by: str | None
    """"spec" (spec.state), "inactivity" (the annotation) or None (active)."""
    doors_closed: bool
    """Backend logins off, sessions, clients and tokens cut."""
    since: str | None = None
    """When inactivity suspended it (the annotation's value)."""

    @property
    def workloads_down(self) -> bool:
        return self.by is not None

    @property
    def state(self) -> str:
        """The state the status reports: spec.state, or Suspended for an inactivity suspension."""
        return "Suspended" if self.by == "inactivity" else "Active"


def mode(state: str, annotations: Mapping[str, str] | None, policy: LifecyclePolicySpec | None) -> Mode:
    """The suspension in force. ``policy``: the tenant's LifecyclePolicy, None for none or a missing one
    (defaults: logins revoked)."""
    revokes = policy is None or policy.suspend_revokes_logins
    if state != "Active":
        return Mode("spec", state == "Archived" or revokes)
    since = (annotations or {}).get(INACTIVITY)
    if since is not None:
        return Mode("inactivity", revokes, since)
    return Mode(None, False)


_COUNT = re.compile(r"[0-9]{1,10}")
MAX_REPLICAS = 2**31 - 1
"""spec.replicas is an int32: a larger count would make the API server refuse the resume patch."""


def remembered_count(note: Any) -> int | None:
    """The count in a `tenancy.dev/suspended-replicas` note, or None when it is not plain ASCII digits
    within int32 (the note is on the tenant's own workload, which its owners may edit)."""
    text = str(note)
    if not _COUNT.fullmatch(text) or int(text) > MAX_REPLICAS:
        return None
    return int(text)


def workload_patch(obj: Mapping[str, Any], down: bool) -> tuple[dict[str, Any] | None, str]:
    """(merge patch or None, what it does) for one Deployment or StatefulSet.

    Down: a workload with replicas is scaled to 0 with its count remembered (a count someone raised
    while suspended, a GitOps sync say, is remembered anew: the latest intent is what resume brings
    back); one already at 0 is left alone (and, unremembered, stays 0 on resume). Up: the remembered
    count comes back and the note goes; if someone scaled it since, their count stands. An unreadable
    note is dropped without scaling.
    """
    meta = obj.get("metadata") or {}
    kind_name = f"{obj.get('kind', 'Workload')}/{meta.get('name')}"
    replicas = (obj.get("spec") or {}).get("replicas")
    replicas = 1 if replicas is None else int(replicas)  # the API server's default
    remembered = (meta.get("annotations") or {}).get(SUSPENDED_REPLICAS)
    if down:
        if replicas == 0:
            return None, ""
        return ({"metadata": {"annotations": {SUSPENDED_REPLICAS: str(replicas)}}, "spec": {"replicas": 0}},
                f"{kind_name} (was {replicas})")
    if remembered is None:
        return None, ""
    patch: dict[str, Any] = {"metadata": {"annotations": {SUSPENDED_REPLICAS: None}}}
    count = remembered_count(remembered)
    if count is None:
        return patch, f"{kind_name} left at {replicas}: unreadable {SUSPENDED_REPLICAS} {remembered!r} dropped"
    if replicas != 0:
        return patch, f"{kind_name} left at {replicas} (scaled since the suspend)"
    patch["spec"] = {"replicas": count}
    return patch, f"{kind_name} to {count}"


@dataclass(frozen=True)
class Observation:
    """What one pass saw of a tenant's use. None: that service is not enabled or not placed."""

    pg_open: int | None = None
    """Open sessions of the tenant's login roles."""
    pg_established: int | None = None
    """pg_stat_database.sessions of the tenant database: client sessions ever established (a counter)."""
    redis_clients: int | None = None
    """Open connections of the tenant's Redis ACL user."""
    ready_replicas: int = 0
    """Ready replicas over the namespace's Deployments and StatefulSets."""
    unknown: list[str] = field(default_factory=list)
    """What could not be read; unknown is never taken for idle."""

    def busy(self, baseline: int | None) -> list[str]:
        """What shows activity now, given the last recorded session counter."""
        out = [f"cannot tell: {u}" for u in self.unknown]
        if self.pg_open:
            out.append(f"{self.pg_open} PostgreSQL sessions")
        if self.pg_established is not None and baseline is not None and self.pg_established != baseline:
            out.append("new PostgreSQL sessions")
        if self.redis_clients:
            out.append(f"{self.redis_clients} Redis clients")
        if self.ready_replicas:
            out.append(f"{self.ready_replicas} ready replicas")
        return out


@dataclass(frozen=True)
class Verdict:
    record: dict[str, Any]
    """status.activity: {"lastSeen": RFC 3339, "pgSessions": the session counter then}."""
    suspend: bool
    why: str


def fmt_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def granularity(after: timedelta) -> timedelta:
    """How far lastSeen must move before it is written again: a busy tenant costs a status write per
    this long, not per pass (a tenth of the limit, at most a minute)."""
    return min(after / 10, timedelta(minutes=1))


def inactivity(previous: Mapping[str, Any] | None, seen: Observation, now: datetime, after: timedelta,
               interval: timedelta = timedelta(0)) -> Verdict:
    """Update the activity record and say whether the tenant has been idle for ``after``.

    ``previous``: status.activity of the last pass (None: the clock starts now, as after a resume).
    ``interval``: the time between passes (use ending just after a pass is seen only by the next one).
    Times are naive UTC.
    """
    last = parse_time((previous or {}).get("lastSeen"))
    baseline = (previous or {}).get("pgSessions")
    busy = seen.busy(baseline)
    fresh = {"lastSeen": fmt_time(now), "pgSessions": seen.pg_established}
    if last is None:
        return Verdict(fresh, False, "clock started")
    if busy:
        # Within the granularity the old record stands (no write); its counter still differs next pass.
        record = dict(previous or {}) if now - last < granularity(after) else fresh
        return Verdict(record, False, "active: " + ", ".join(busy))
    record = dict(previous or {})
    idle = now - last
    # lastSeen may trail the last busy pass by up to one granularity (it is not rewritten more often),
    # and use may go on until just before the next pass: waiting that much longer means a tenant is
    # never suspended before it was really idle for `after`.
    if idle < after + granularity(after) + interval:
        return Verdict(record, False, f"idle for {int(idle.total_seconds())}s")
    return Verdict(record, True, f"no activity since {fmt_time(last)} ({int(idle.total_seconds())}s, limit "
                                 f"inactivitySuspendAfter {int(after.total_seconds())}s)")
