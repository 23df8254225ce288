"""reconcile/suspension.py: who suspends, what scales, when inactivity suspends."""

from __future__ import annotations

from datetime import datetime, timedelta

from tenancy_operator.api.lifecycle_policy import LifecyclePolicySpec
from tenancy_operator.reconcile import suspension as s

NOW = datetime(2026, 1, 1, 12, 0, 0)


def _deploy(replicas, remembered=None, kind="Deployment"):
    meta = {"name": "api", "annotations": {s.SUSPENDED_REPLICAS: remembered} if remembered is not None else {}}
    spec = {} if replicas is None else {"replicas": replicas}
    return {"kind": kind, "metadata": meta, "spec": spec}


def test_mode_spec_inactivity_and_logins():
    keep = LifecyclePolicySpec(suspend_revokes_logins=False)
    assert s.mode("Active", {}, None) == s.Mode(None, False)
    assert s.mode("Suspended", {}, None) == s.Mode("spec", True)
    assert s.mode("Suspended", {}, keep) == s.Mode("spec", False)
    assert s.mode("Archived", {}, keep).doors_closed  # an archived tenant's doors always close
    inactive = s.mode("Active", {s.INACTIVITY: "2026-01-01T00:00:00Z"}, keep)
    assert inactive.by == "inactivity" and inactive.workloads_down and not inactive.doors_closed
    assert inactive.state == "Suspended"
    assert s.mode("Suspended", {s.INACTIVITY: "x"}, None).by == "spec"  # spec wins


def test_scale_down_remembers_in_the_same_patch():
    patch, what = s.workload_patch(_deploy(3), down=True)
    assert patch == {"metadata": {"annotations": {s.SUSPENDED_REPLICAS: "3"}}, "spec": {"replicas": 0}}
    assert what == "Deployment/api (was 3)"
    assert s.workload_patch(_deploy(None), down=True)[0]["metadata"]["annotations"][s.SUSPENDED_REPLICAS] == "1"
    # Already down (remembered, or at 0 before the suspend): nothing to write.
    assert s.workload_patch(_deploy(0, "3"), down=True) == (None, "")
    assert s.workload_patch(_deploy(0), down=True) == (None, "")
    # Scaled up while suspended (a GitOps sync): down again, the new count remembered.
    assert s.workload_patch(_deploy(5, "3"), down=True)[0]["metadata"]["annotations"][s.SUSPENDED_REPLICAS] == "5"


def test_resume_restores_exactly_and_is_idempotent():
    patch, what = s.workload_patch(_deploy(0, "2", kind="StatefulSet"), down=False)
    assert patch == {"metadata": {"annotations": {s.SUSPENDED_REPLICAS: None}}, "spec": {"replicas": 2}}
    assert what == "StatefulSet/api to 2"
    assert s.workload_patch(_deploy(3), down=False) == (None, "")  # nothing remembered: untouched
    # Someone scaled it since: their count stands, only the note goes.
    patch, _ = s.workload_patch(_deploy(4, "2"), down=False)
    assert patch == {"metadata": {"annotations": {s.SUSPENDED_REPLICAS: None}}}
    patch, what = s.workload_patch(_deploy(0, "lots"), down=False)
    assert "spec" not in patch and "unreadable" in what


def test_inactivity_clock():
    after = timedelta(seconds=100)
    idle = s.Observation(pg_open=0, pg_established=7, redis_clients=0)
    started = s.inactivity(None, idle, NOW, after)
    assert not started.suspend and started.record == {"lastSeen": "2026-01-01T12:00:00Z", "pgSessions": 7}
    later = s.inactivity(started.record, idle, NOW + timedelta(seconds=109), after)
    assert not later.suspend and later.record == started.record  # idle: nothing to write
    # Due at the limit plus one granularity (10 s): lastSeen may trail the last busy pass by that much.
    due = s.inactivity(started.record, idle, NOW + timedelta(seconds=110), after)
    assert due.suspend and "no activity since 2026-01-01T12:00:00Z" in due.why
    # Plus one pass interval: use that ended just after a pass is seen only by the next one.
    assert not s.inactivity(started.record, idle, NOW + timedelta(seconds=110), after, timedelta(seconds=5)).suspend
    assert s.inactivity(started.record, idle, NOW + timedelta(seconds=115), after, timedelta(seconds=5)).suspend


def test_activity_resets_the_clock_at_most_once_per_granularity():
    after = timedelta(seconds=100)
    record = {"lastSeen": "2026-01-01T12:00:00Z", "pgSessions": 7}
    for busy in (s.Observation(pg_open=1, pg_established=7), s.Observation(pg_established=8),
                 s.Observation(redis_clients=2), s.Observation(ready_replicas=1),
                 s.Observation(unknown=["postgres: down"])):
        soon = s.inactivity(record, busy, NOW + timedelta(seconds=5), after)
        assert not soon.suspend and soon.record == record  # within 10 s: no write
        late = s.inactivity(record, busy, NOW + timedelta(seconds=500), after)
        assert not late.suspend and late.record["lastSeen"] == "2026-01-01T12:08:20Z"
    assert s.granularity(timedelta(hours=24)) == timedelta(minutes=1)


def test_a_remembered_count_the_api_would_refuse_is_unreadable():
    """The annotation sits on the tenant's own workload, which its owners may edit: a count beyond
    int32 (the API server refuses the patch, and every later workload stays at 0) or digits int()
    cannot read ("²") is dropped, never applied or crashing the pass."""
    for bad in (str(2**31), "99999999999", "²", "1_000", " 3", "+3"):
        patch, what = s.workload_patch(_deploy(0, bad), down=False)
        assert "spec" not in patch and "unreadable" in what, bad
        assert s.remembered_count(bad) is None, bad
    assert s.workload_patch(_deploy(0, str(2**31 - 1)), down=False)[0]["spec"] == {"replicas": 2**31 - 1}
    assert s.remembered_count("7") == 7
