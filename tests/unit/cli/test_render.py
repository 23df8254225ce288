"""`kubectl tenant` output, from objects to text: readable at a glance, colour only when asked."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from tenancy_operator.cli import main as cli_main
from tenancy_operator.cli import render

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def cond(type_, status, reason, message="", gen=1):
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": gen,
            "lastTransitionTime": "2026-11-25T10:00:00Z"}


def tenant(name="acme", phase="Ready", conditions=None, generation=1, observed=1, spec=None, **status):
    return {
        "apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "generation": generation, "creationTimestamp": "2026-11-23T12:00:00Z"},
        "spec": spec if spec is not None else {"displayName": "Acme Music", "postgres": {"enabled": True}},
        "status": {"observedGeneration": observed, "phase": phase, "namespace": f"tenant-{name}",
                   "conditions": conditions if conditions is not None else [
                       cond("NamespaceReady", "True", "Succeeded", "namespace tenant-acme with quota"),
                       cond("DatabaseReady", "True", "Succeeded", "database t_acme"),
                       cond("Ready", "True", "Succeeded", "all parts ready"),
                   ], **status},
    }


READY = tenant(placement={"postgres": "pg-main"},
               credentials={"version": 4, "activeRole": "t_acme_b", "rotatedAt": "2026-11-22T12:00:00Z",
                            "nextRotationAt": "2026-12-22T12:00:00Z", "secretName": "tenant-credentials"},
               endpoints={"database": "t_acme"})


def test_status_shows_each_part_with_condition_reason_backend_and_message():
    text = render.status_text(READY, NOW)
    assert text.splitlines()[0] == "Tenant acme (Acme Music)"
    assert "Phase: Ready   Ready: True   State: Active   Age: 2d" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert rows["Namespace"][1:3] == ["ok", "Succeeded"]
    assert rows["Database"][1:4] == ["ok", "Succeeded", "pg-main"]
    assert "database t_acme" in text


def test_status_shows_credential_version_and_age():
    text = render.status_text(READY, NOW)
    assert ("Credentials: version 4, role t_acme_b, rotated 3d ago, next in 27d, Secret tenant-credentials"
            in text)
    assert "Endpoints: database=t_acme" in text


def test_status_of_a_degraded_tenant_says_what_and_where():
    outage = "backend pg-main (postgres) unavailable: connection refused"
    t = tenant(phase="Degraded", placement={"postgres": "pg-main"}, conditions=[
        cond("NamespaceReady", "True", "Succeeded", "ok"),
        cond("DatabaseReady", "False", "BackendUnavailable", outage),
        cond("Ready", "False", "PartsNotReady", "DatabaseReady: " + outage),
        cond("Degraded", "True", "BackendUnavailable", outage),
    ])
    text = render.status_text(t, NOW)
    assert "Phase: Degraded   Ready: False" in text
    assert f"Degraded: BackendUnavailable: {outage}" in text
    assert f"Waiting on: DatabaseReady: {outage}" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("Database"))
    assert line.split()[1:4] == ["FAIL", "BackendUnavailable", "pg-main"]


def test_enabled_part_without_a_condition_is_pending_and_disabled_parts_are_hidden():
    t = tenant(spec={"redis": {"enabled": True}}, conditions=[cond("NamespaceReady", "True", "Succeeded", "ok")])
    text = render.status_text(t, NOW)
    assert any(x.split()[:3] == ["Cache", "..", "Pending"] for x in text.splitlines() if x.strip())
    assert "Search" not in text and "DocumentStore" not in text and "Database" not in text


def test_status_flags_an_unobserved_generation_and_terminating():
    t = tenant(generation=3, observed=2)
    t["metadata"]["deletionTimestamp"] = "2026-11-25T11:59:00Z"
    text = render.status_text(t, NOW)
    assert "Phase: Terminating" in text
    assert "Generation 3 not yet observed (status describes 2)" in text
    assert "Terminating since 2026-11-25T11:59:00Z" in text


def test_status_without_any_status_says_the_operator_may_be_down():
    t = {"metadata": {"name": "fresh", "generation": 1}, "spec": {}}
    text = render.status_text(t, NOW)
    assert "Phase: Pending" in text and "is the operator running?" not in text  # namespace part is always shown
    assert any(x.split()[:2] == ["Namespace", ".."] for x in text.splitlines() if x.strip())


def test_list_prints_a_table_and_a_summary_line():
    tenants = [READY, tenant("beta"), tenant("gamma"), tenant("delta"),
               tenant("omega", phase="Degraded", conditions=[cond("Ready", "False", "PartsNotReady", "x")])]
    text = render.list_text(tenants, NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "READY", "NAMESPACE", "BACKENDS", "CREDENTIALS", "AGE"]
    assert [x.split()[0] for x in lines[1:6]] == ["acme", "beta", "delta", "gamma", "omega"]
    assert lines[1].split()[1:3] == ["Ready", "True"] and "v4" in lines[1]
    assert lines[-1] == "5 tenants: 4 Ready, 1 Degraded"


@pytest.mark.parametrize(("phases", "line"), [
    (["Ready"], "1 tenant: 1 Ready"),
    (["Suspended", "Ready", "Stalled", "Ready"], "4 tenants: 2 Ready, 1 Stalled, 1 Suspended"),
    (["Weird"], "1 tenant: 1 Weird"),
], ids=["one", "ordered", "unknown-phase"])
def test_summary(phases, line):
    assert render.summary([tenant(f"t{i}", phase=p) for i, p in enumerate(phases)]) == line


def test_list_of_nothing():
    assert render.list_text([], NOW) == "No tenants found.\n"


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (59, "59s"), (60, "1m"), (7199, "119m"), (7200, "2h"),
                                                (86400 * 2 - 1, "47h"), (86400 * 2, "2d"), (86400 * 40, "40d")])
def test_age_reads_like_kubectl(seconds, text):
    assert render.age(datetime.fromtimestamp(NOW.timestamp() - seconds, UTC), NOW) == text


def test_colour_only_when_asked_and_columns_stay_aligned():
    plain = render.list_text([READY, tenant("zz", phase="Degraded")], NOW, colour=False)
    coloured = render.list_text([READY, tenant("zz", phase="Degraded")], NOW, colour=True)
    assert "\033[" not in plain and "\033[32mReady\033[0m" in coloured
    strip = coloured
    for code in ("\033[32m", "\033[31m", "\033[0m"):
        strip = strip.replace(code, "")
    assert strip == plain


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


@pytest.mark.parametrize(("tty", "env", "expected"), [
    (True, {}, True), (False, {}, False), (True, {"NO_COLOR": "1"}, False), (True, {"NO_COLOR": ""}, True),
], ids=["terminal", "pipe", "no-color", "no-color-empty"])
def test_colour_only_on_a_terminal_without_no_color(tty, env, expected):
    assert cli_main.use_colour(_Stream(tty), env) is expected


def test_status_shows_each_autoscaling_rule_and_why_it_is_reactive():
    t = tenant(autoscaling=[
        {"name": "web", "mode": "Floor", "model": "quantile-gbm 0.7/0.9 + holt-winters",
         "gate": {"active": True, "reason": "Predictive: ..."},
         "forecast": {"peak": 430, "upper": 450, "recent": 124, "at": "2026-11-25T12:04:00Z"},
         "floor": 13, "liftUntil": "2026-11-25T12:06:00Z", "anomalyScore": 0.0},
        {"name": "worker", "mode": "Observe", "model": "holt-winters",
         "gate": {"active": False, "reason": "Reactive: holt-winters does not beat persistence (pinball 3 vs 2)"},
         "floor": 2, "anomalyScore": 0.95},
    ])
    lines = render.status_text(t, NOW).splitlines()
    at = lines.index("  Autoscaling:")
    assert lines[at + 1] == ("    web [Floor]: predictive (quantile-gbm 0.7/0.9 + holt-winters), "
                             "peak 430 (q 450, now 124) in 4m, floor 13 lifted for 6m")
    assert lines[at + 2] == ("    worker [Observe]: Reactive: holt-winters does not beat persistence "
                             "(pinball 3 vs 2), floor 2, anomaly 0.95")


def test_status_without_autoscaling_rules_has_no_autoscaling_section():
    assert "Autoscaling:" not in render.status_text(READY, NOW)


def test_status_names_what_is_not_built_once_and_the_parts_that_are_not():
    unbuilt = ("not built yet, so not done: spec.mongodb.enabled, spec.mongodb.backend: MongoDB tenancy is not built "
               "yet, no database or user is made (issue 15)")
    t = tenant(phase="Stalled", spec={"mongodb": {"enabled": True}}, conditions=[
        cond("NamespaceReady", "True", "Succeeded", "ok"),
        cond("DocumentStoreReady", "False", "NotImplemented", "mongodb tenancy is not built yet (issue 15)"),
        cond("SpecSupported", "False", "NotImplemented", unbuilt),
        cond("Stalled", "True", "NotImplemented", unbuilt),
        cond("Ready", "False", "NotImplemented", unbuilt),
    ])
    text = render.status_text(t, NOW)
    assert f"Not built yet: {unbuilt}" in text
    assert text.count(unbuilt) == 1, text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert rows["DocumentStore"][1:3] == ["FAIL", "NotImplemented"]


def test_status_shows_the_cache_budget_usage_and_evictions():
    t = tenant(cache={"policy": "small", "budgetBytes": 2**20, "usageBytes": 943718, "relativeError": 0.03,
                      "evictedKeys": 4100, "lastEviction": {"keys": 1200, "bytes": 1300000, "seconds": 0.0412,
                                                            "at": "2026-11-25T11:59:00Z"}})
    assert ("Cache: policy small, usage 0.9 MiB of 1.0 MiB (±3%), 4100 keys evicted, last eviction 1200 keys in "
            "0.041 s at 2026-11-25T11:59:00Z") in render.status_text(t, NOW)
    assert "Cache:" not in render.status_text(READY, NOW)


def test_overlap_end_is_when_a_requested_rotation_can_start():
    from tenancy_operator.cli.render import overlap_end

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    tenant = {"spec": {"credentials": {"overlap": "20m"}},
              "status": {"credentials": {"version": 2, "slot": "b", "rotatedAt": "2026-12-07T11:50:00Z",
                                         "previousOpen": True}}}
    assert overlap_end(tenant, now) == datetime(2026, 12, 7, 12, 10, tzinfo=UTC)
    assert overlap_end({**tenant, "spec": {}}, now) == datetime(2026, 12, 7, 12, 50, tzinfo=UTC)  # the default 1h
    closed = {"spec": tenant["spec"], "status": {"credentials": {"version": 2, "slot": "b",
                                                                  "rotatedAt": "2026-12-07T11:50:00Z"}}}
    assert overlap_end(closed, now) is None
    first = {"spec": tenant["spec"], "status": {"credentials": {**tenant["status"]["credentials"], "version": 1}}}
    assert overlap_end(first, now) is None  # version 1 has no previous version to keep open
    staged = {"spec": tenant["spec"], "status": {"credentials": {
        **closed["status"]["credentials"], "pending": {"version": 3, "slot": "a", "rotatedAt": "2026-12-07T11:55:00Z",
                                                       "previousOpen": True}}}}
    assert overlap_end(staged, now) == datetime(2026, 12, 7, 12, 15, tzinfo=UTC)  # the staged rotation's overlap
    assert overlap_end(tenant, datetime(2026, 12, 7, 12, 11, tzinfo=UTC)) is None  # over, not closed yet
    assert overlap_end({}, now) is None


def test_status_ends_with_the_newest_warning_events():
    def warning(reason: str, minute: int, message: str, count: int = 1) -> dict:
        return {"reason": reason, "message": message, "count": count, "type": "Warning",
                "involvedObject": {"kind": "Tenant", "name": "acme"},
                "lastTimestamp": f"2026-11-25T11:{minute:02d}:00Z"}

    events = [warning("DriftRepaired", 50, "put back: quota"), warning("IsolationBreached", 58, "not\n  refused", 2)]
    events += [warning("DriftRepaired", m, "older") for m in range(10, 15)]
    text = render.status_text(READY, NOW, warnings=events)
    tail = text.split("Recent warnings")[1].splitlines()
    assert tail[0] == " (5 of 7 Warning Events since Ready; kubectl describe tenant acme lists all):"
    assert tail[1] == "    2m ago  IsolationBreached (x2): not refused"
    assert tail[2] == "    10m ago  DriftRepaired: put back: quota"
    assert len(tail) == 6 and "older" in tail[-1]
    # Before Ready last turned True (10:00): history once Ready, shown while not Ready.
    early = [{**warning("NoBackendAvailable", 0, "search-main not ready"), "lastTimestamp": "2026-11-25T09:59:00Z"}]
    assert "Recent warnings" not in render.status_text(READY, NOW, warnings=early)
    waiting = tenant(conditions=[cond("Ready", "False", "WaitingForBackends", "search")])
    assert "NoBackendAvailable: search-main not ready" in render.status_text(waiting, NOW, warnings=early)
    assert "Recent warnings" not in render.status_text(READY, NOW, warnings=[])
    assert "Recent warnings" not in render.status_text(READY, NOW)
