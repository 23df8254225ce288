"""WorkflowRuns on real servers: verify-isolation, rotate-credentials across a SIGKILL, one run per tenant
at a time, cancel, TTL, and who may run what (refused by the API server itself)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from . import kube
from .admin import pg_admin
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
OWNER = "wf-owner"
OPERATOR_NS = "tenancy-system"
PLUGIN = str(kube.REPO / ".venv" / "bin" / "kubectl-tenant")  # this checkout's plugin, whatever PATH says


def _create(ns: str, tenant: str, workflow: str, name: str, **spec) -> str:
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": name, "namespace": ns},
            "spec": {"tenant": tenant, "workflow": workflow, **spec}}
    kubectl("create", "-f", "-", input=json.dumps(body))
    return name


def _status(name: str, ns: str) -> dict:
    return (get("workflowrun", name, ns) or {}).get("status") or {}


def _wait(name: str, ns: str, check, timeout: float = 120, message: str = "") -> dict:
    eventually(lambda: check(_status(name, ns)), timeout, 1, message or f"workflowrun {ns}/{name}")
    return _status(name, ns)


def _probes(status: dict) -> dict[str, str]:
    return {k: v for k, v in (status.get("outputs") or {}).items() if k.startswith("probe ")}


def _events(name: str, ns: str, reason: str) -> list[str]:
    """Messages of the Events of this reason on the WorkflowRun `ns`/`name` now."""
    return [e["message"] for e in kube.object_events("WorkflowRun", name, namespace=ns, reason=reason)]


@pytest.fixture(scope="module")
def pair(backends, operator):
    owners = [{"kind": "User", "name": OWNER}]
    kube.apply("\n---\n".join([tenant_yaml("wf-a", owners=owners, **FULL), tenant_yaml("wf-b", **FULL)]))
    kubectl("wait", "--for=condition=Ready", "tenant/wf-a", "tenant/wf-b", "--timeout=120s", timeout=130)
    yield "wf-a", "wf-b"
    kubectl("delete", "workflowruns", "--all", "-n", "tenant-wf-a", "--wait=false", check=False)
    kubectl("delete", "tenant", "wf-a", "wf-b", "--wait=false", check=False)


@pytest.fixture(scope="module")
def rot(backends, operator):
    """A tenant whose opted-in Deployment `api` is paused: a rotation's run waits for it to roll. A short
    overlap: a rotation waits for the previous one's overlap to end (reconcile/credentials.py)."""
    kube.apply(tenant_yaml("wf-rot", credentials={"overlap": "10s", "restartWorkloads": True}, **FULL))
    kubectl("wait", "--for=condition=Ready", "tenant/wf-rot", "--timeout=120s", timeout=130)
    kube.apply(kube.rolling_deployment("tenant-wf-rot"))
    kubectl("patch", "deployment", "api", "-n", "tenant-wf-rot", "--type=merge", "-p", '{"spec":{"paused":true}}')
    yield "wf-rot"
    kubectl("delete", "workflowruns", "--all", "-n", "tenant-wf-rot", "--wait=false", check=False)
    kubectl("delete", "tenant", "wf-rot", "--wait=false", check=False)


def _pause(paused: bool) -> None:
    kubectl("patch", "deployment", "api", "-n", "tenant-wf-rot", "--type=merge", "-p",
            json.dumps({"spec": {"paused": paused}}))


def _version(tenant: str) -> int:
    return int(get("tenant", tenant)["status"]["credentials"]["version"])


def _allowed_metric(operator, tenant: str) -> float | None:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(f'tenancy_isolation_probes_allowed{{tenant="{tenant}"}}'):
            return float(line.split()[-1])
    return None


def test_verify_isolation_on_schedule_fails_when_a_grant_lets_a_probe_through(pair, operator):
    a, b = pair
    ns = "tenancy-system"  # every minute: only the platform may (a tenant namespace's minimum is 15 minutes)
    run = _create(ns, a, "verify-isolation", "iso-every-minute", parameters={"peers": b}, schedule="* * * * *")
    first = _wait(run, ns, lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    probes = _probes(first)
    print("\nverify-isolation, first run:\n" + "\n".join(f"  {k}: {v}" for k, v in sorted(probes.items())))
    assert first["phase"] == "Succeeded", first
    refused = [k for k, v in probes.items() if v.startswith("refused")]
    assert len(refused) >= 5 and all(v.startswith(("refused", "absent")) for v in probes.values()), probes
    assert probes["probe mongodb"].startswith("absent") and probes["probe search"].startswith("absent"), probes
    assert f"probe postgres connect to database t_{b.replace('-', '_')}" in probes
    assert first.get("nextRunAt"), "a scheduled run says when it runs next"
    eventually(lambda: _allowed_metric(operator, a) == 0, 10, 0.5, "tenancy_isolation_probes_allowed 0")

    # As the admin, open B's database to a platform role and make A's login role a member of it (the
    # operator revokes only grants to another tenant's own roles, so this stays): the next scheduled
    # run must catch it.
    login = credentials(a)["PGUSER"]
    database = f"t_{b.replace('-', '_')}"
    pg_admin("DO $$ BEGIN CREATE ROLE iso_platform_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg_admin(f'GRANT CONNECT ON DATABASE "{database}" TO iso_platform_reader')
    pg_admin(f'GRANT iso_platform_reader TO "{login}"')
    try:
        failed = _wait(run, ns, lambda s: s.get("phase") == "Failed", 150, "the next scheduled run fails")
    finally:
        pg_admin(f'REVOKE CONNECT ON DATABASE "{database}" FROM iso_platform_reader')
        pg_admin("DROP ROLE iso_platform_reader")
    assert failed["outputs"][f"probe postgres connect to database {database}"] == "ALLOWED"
    assert f"connect to database {database}" in failed["message"], failed["message"]
    assert failed["steps"][1] == {**failed["steps"][1], "name": "probe-postgres", "phase": "Failed"}
    stalled = kube.condition(get("workflowrun", run, ns), "Stalled")
    assert stalled["status"] == "True" and database in stalled["message"]
    breached = eventually(lambda: _events(run, ns, "IsolationBreached"), 20, 1, "Warning Event IsolationBreached")
    assert database in breached[0]
    # Also on the Tenant, where a person looks: `kubectl describe tenant` lists only its uid's Events.
    eventually(lambda: "IsolationBreached" in kubectl("describe", "tenant", a).stdout, 20, 1,
               "IsolationBreached in kubectl describe tenant")
    status = subprocess.run([PLUGIN, "status", a], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "Recent warnings" in status and "IsolationBreached" in status.split("Recent warnings")[1], status
    # The metric the chart's TenantIsolationBreached alert reads.
    eventually(lambda: _allowed_metric(operator, a) == 1, 10, 0.5, "tenancy_isolation_probes_allowed 1")
    print(f"\nafter GRANT CONNECT: Failed: {failed['message']}")
    kubectl("delete", "workflowrun", run, "-n", ns)


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_verify_isolation_probes_the_placed_backends_not_the_secrets_endpoints(pair):
    """The owner can edit tenant-credentials: endpoints aimed at a port where nothing listens must not
    decide where the probes go (before: 'unreachable', the run Failed; a server letting everyone in
    would have been a false breach). Held every 0.1 s while the run probes: the operator's 3 s verify
    pass puts the Secret back."""
    import base64
    import contextlib
    import threading

    a, b = pair
    port = _dead_port()
    edit = {"PGHOST": "127.0.0.1", "PGPORT": str(port), "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port),
            "VAULT_ADDR": f"http://127.0.0.1:{port}"}
    patch = json.dumps({"data": {k: base64.b64encode(v.encode()).decode() for k, v in edit.items()}})

    def again() -> None:
        while not stop.wait(0.1):
            kubectl("patch", "secret", "tenant-credentials", "-n", f"tenant-{a}", "--type=merge", "-p", patch, check=False)

    stop = threading.Event()
    kubectl("patch", "secret", "tenant-credentials", "-n", f"tenant-{a}", "--type=merge", "-p", patch)
    worker = threading.Thread(target=again, daemon=True)
    worker.start()
    try:
        run = _create(OPERATOR_NS, a, "verify-isolation", "iso-edited-secret", parameters={"peers": b})
        done = _wait(run, OPERATOR_NS, lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    finally:
        stop.set()
        worker.join(10)
        with contextlib.suppress(Exception):
            kubectl("delete", "workflowrun", "iso-edited-secret", "-n", OPERATOR_NS, "--wait=false")
    outputs = done.get("outputs") or {}
    print("\nverify-isolation with an edited Secret:\n" + "\n".join(f"  {k}: {v}" for k, v in sorted(outputs.items())
                                                                      if k.startswith(("probe", "secret"))))
    assert done["phase"] == "Succeeded", done.get("message")
    probes = _probes(done)
    database = f"t_{b.replace('-', '_')}"
    assert probes[f"probe postgres connect to database {database}"].startswith("refused: "), probes
    assert all(v.startswith("refused: ") for k, v in probes.items() if k.startswith(("probe redis", "probe vault"))), probes


def test_a_migration_hold_whose_run_is_gone_is_lifted_and_the_limit_restored(pair):
    """A migrate-database run whose undo could not reach the source (down through the same outage) ends
    or is deleted with the tenant frozen; the Tenant's next pass lifts a hold whose run is finished or
    gone and puts the connection limit back (before: frozen for good)."""
    _, b = pair
    roles = [f"t_{b.replace('-', '_')}_{slot}" for slot in ("a", "b")]
    hold = {"run": "no-such-migration", "targetBackend": "pg-elsewhere", "since": "2026-01-01T00:00:00Z"}
    kubectl("patch", "tenant", b, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {"migration": hold}}))
    for role in roles:
        pg_admin(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')

    def limits() -> dict[str, int]:
        return {r["rolname"]: r["rolconnlimit"] for r in pg_admin(
            "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY($1::text[])", roles)}

    eventually(lambda: not (get("tenant", b).get("status") or {}).get("migration"), 30, 0.5, "the stale hold lifted")
    eventually(lambda: set(limits().values()) == {20}, 30, 0.5, "connection limits back to spec (20)")
    ready = eventually(lambda: kube.condition(get("tenant", b), "Ready")["status"] == "True" and get("tenant", b), 60, 1,
                       "the tenant Ready again")
    print(f"\nstale hold lifted, limits {limits()}, Ready: {kube.condition(ready, 'Ready')['message']}")


def test_rotate_credentials_rotates_once_across_a_sigkill(rot, operator):
    ns = f"tenant-{rot}"
    before = _version(rot)
    out = subprocess.run([PLUGIN, "run", "rotate-credentials", rot, "--no-follow"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name = out.stdout.split()[0].split("/")[1]
    listing = subprocess.run([PLUGIN, "runs", "-n", ns], capture_output=True, text=True, timeout=60)
    assert name in listing.stdout and "rotate-credentials" in listing.stdout, listing.stdout

    # The Deployment is paused, so the run waits in its last step: kill the operator there.
    waiting = _wait(name, ns, lambda s: s.get("currentStep") == "wait-workloads-rolled", 90)
    assert waiting["phase"] == "Running" and waiting["steps"][1]["phase"] == "Succeeded"
    time.sleep(2)
    assert _status(name, ns)["phase"] == "Running", "the run must wait while an opted-in workload has not rolled"
    operator.kill()
    operator.start()
    _pause(False)
    done = _wait(name, ns, lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    assert done["phase"] == "Succeeded", done
    assert _version(rot) == before + 1, "rotated exactly once"
    assert done["outputs"]["version"] == str(before + 1) and done["outputs"]["rolled"] == "Deployment/api"
    assert [s["attempts"] for s in done["steps"]][:2] == [1, 1], "completed steps were not run again"
    assert get("tenant", rot)["status"]["credentials"]["rotateHandled"] == f"workflowrun/{ns}/{name}"
    assert kube.condition(get("workflowrun", name, ns), "Ready")["status"] == "True"
    _pause(True)


def test_second_run_waits_for_the_tenant_then_runs(rot, pair):
    ns = f"tenant-{rot}"
    first = _create(ns, rot, "rotate-credentials", "rot-first")
    _wait(first, ns, lambda s: s.get("currentStep") == "wait-workloads-rolled", 90)
    second = _create(ns, rot, "verify-isolation", "iso-second", parameters={"peers": pair[0]},
                     ttlSecondsAfterFinished=5)
    cancelled = _create(ns, rot, "verify-isolation", "iso-cancelled", parameters={"peers": pair[0]})
    waiting = _wait(second, ns, lambda s: s.get("phase") == "Waiting", 30)
    assert waiting["holder"] == f"{ns}/{first}" and first in waiting["message"]
    reconciling = kube.condition(get("workflowrun", second, ns), "Reconciling")
    assert reconciling["reason"] == "WaitingForTenant" and first in reconciling["message"]
    _wait(cancelled, ns, lambda s: s.get("phase") == "Waiting", 30)
    kubectl("patch", "workflowrun", cancelled, "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    gone = _wait(cancelled, ns, lambda s: s.get("phase") == "Cancelled", 30)
    assert {s["phase"] for s in gone["steps"]} == {"Skipped"}, gone["steps"]
    refused = kubectl("patch", "workflowrun", cancelled, "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":false}}',
                      check=False)
    assert refused.returncode != 0 and "cancel cannot be taken back" in refused.stderr

    time.sleep(3)
    assert _status(second, ns)["phase"] == "Waiting", "nothing interleaves while the first run holds the tenant"
    _pause(False)
    one = _wait(first, ns, lambda s: s.get("phase") == "Succeeded", 90)
    two = _wait(second, ns, lambda s: s.get("phase") == "Succeeded", 120)
    assert two["startedAt"] >= one["finishedAt"], (one, two)
    # ttlSecondsAfterFinished: 5
    eventually(lambda: get("workflowrun", second, ns) is None, 30, 1, "finished run deleted after its TTL")
    assert get("workflowrun", first, ns) is not None, "a run without a TTL is kept"
    _pause(True)


def test_offboard_from_a_tenant_namespace_is_refused_by_the_api_server(pair):
    a, b = pair
    ns = f"tenant-{a}"
    can = kubectl("auth", "can-i", "create", "workflowruns.tenancy.dev", "-n", ns, f"--as={OWNER}", check=False)
    assert can.stdout.strip() == "yes", "the owner may create runs in their namespace (RBAC)"

    def as_owner(workflow: str, tenant: str) -> subprocess.CompletedProcess:
        body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun",
                "metadata": {"generateName": f"{workflow}-", "namespace": ns},
                "spec": {"tenant": tenant, "workflow": workflow}}
        return kubectl("create", f"--as={OWNER}", "-f", "-", input=json.dumps(body), check=False)

    refused = as_owner("offboard", a)
    print(f"\noffboard by the tenant owner: {refused.stderr.strip()}")
    assert refused.returncode != 0
    assert "workflow offboard may run only from the operator's namespace" in refused.stderr, refused.stderr
    other = as_owner("rotate-credentials", b)
    assert other.returncode != 0 and f"not on tenant {b}" in other.stderr, other.stderr
    allowed = kubectl("create", f"--as={OWNER}", "--dry-run=server", "-f", "-", input=json.dumps({
        "apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": "x", "namespace": ns},
        "spec": {"tenant": a, "workflow": "verify-isolation"}}), check=False)
    assert allowed.returncode == 0, allowed.stderr

    # From the operator's namespace any workflow may be named (admitted; dry run, nothing runs).
    admitted = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps({
        "apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun",
        "metadata": {"name": "offboard-admitted", "namespace": OPERATOR_NS},
        "spec": {"tenant": a, "workflow": "offboard"}}), check=False)
    assert admitted.returncode == 0, admitted.stderr


def test_runs_past_the_tenant_quota_are_refused_by_the_api_server(operator):
    """spec.quota.workflowRuns: the namespace's ResourceQuota counts runs; the API server refuses the next."""
    tenant, ns = "wf-quota", "tenant-wf-quota"
    kube.apply(tenant_yaml(tenant, owners=[{"kind": "User", "name": OWNER}], quota={"workflowRuns": "2"}))
    try:
        kubectl("wait", "--for=condition=Ready", f"tenant/{tenant}", "--timeout=90s", timeout=100)

        def counted() -> bool:  # the quota controller has counted the namespace: admission can decide
            found = get("resourcequota", "tenant-quota", ns) or {}
            return (found.get("status") or {}).get("hard", {}).get("count/workflowruns.tenancy.dev") == "2"
        eventually(counted, 30, 0.5, "the ResourceQuota counts workflowruns")

        def as_owner(name: str) -> subprocess.CompletedProcess:
            body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": name, "namespace": ns},
                    "spec": {"tenant": tenant, "workflow": "verify-isolation", "cancel": True}}
            return kubectl("create", f"--as={OWNER}", "-f", "-", input=json.dumps(body), check=False)

        made = [as_owner(f"quota-{i}") for i in range(2)]
        assert [m.returncode for m in made] == [0, 0], [m.stderr for m in made]
        refused = as_owner("quota-2")
        print(f"\nthe third run of a tenant with quota.workflowRuns 2: {refused.stderr.strip()}")
        assert refused.returncode != 0 and "exceeded quota: tenant-quota" in refused.stderr, refused.stderr
        assert "count/workflowruns.tenancy.dev=2" in refused.stderr, refused.stderr
        kubectl("delete", "workflowrun", "quota-0", "-n", ns)  # a deleted run frees its place
        eventually(lambda: as_owner("quota-3").returncode == 0, 30, 1, "a run admitted again after one is deleted")
    finally:
        kubectl("delete", "workflowruns", "--all", "-n", ns, "--wait=false", check=False)
        kubectl("delete", "tenant", tenant, "--wait=false", check=False)


def test_a_schedule_of_seconds_is_refused_at_apply_and_one_that_never_comes_is_stalled(pair, operator):
    a, _ = pair
    ns = f"tenant-{a}"
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": "iso-every-second",
                                                                                       "namespace": ns},
            "spec": {"tenant": a, "workflow": "verify-isolation", "schedule": "* * * * * *"}}
    # croniter reads a sixth field as seconds: a tenant owner could probe every backend every second.
    refused = kubectl("create", f"--as={OWNER}", "-f", "-", input=json.dumps(body), check=False)
    assert refused.returncode != 0 and "five cron fields" in refused.stderr, refused.stderr
    # What would be ignored is refused too: a TTL on a run that never finishes, a parameter no workflow reads.
    for spec, words in (({"workflow": "verify-isolation", "schedule": "0 3 * * *", "ttlSecondsAfterFinished": 60},
                         "ttlSecondsAfterFinished is for a run without schedule"),
                        ({"workflow": "migrate-database", "parameters": {"targetBackend": "pg-x", "dryRun": "true"}},
                         "migrate-database takes only the parameters targetBackend")):
        odd = {**body, "metadata": {"name": "iso-odd", "namespace": ns}, "spec": {"tenant": a, **spec}}
        refused = kubectl("create", "-f", "-", input=json.dumps(odd), check=False)
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    _stalled_before_running(ns, a, "iso-never", "0 0 30 2 *", "InvalidSchedule", "never comes")
    # A tenant owner's schedule every minute would probe every backend every minute: Stalled, nothing runs.
    _stalled_before_running(ns, a, "iso-owner-every-minute", "* * * * *", "ScheduleTooFrequent", "15 minutes")


def _stalled_before_running(ns: str, tenant: str, name: str, schedule: str, reason: str, words: str) -> None:
    """A verify-isolation run with `schedule` ends Failed and Stalled for `reason` (message holding
    `words`) without ever starting."""
    run = _create(ns, tenant, "verify-isolation", name, schedule=schedule)
    try:
        stalled = _wait(run, ns, lambda s: s.get("phase") == "Failed", 60)
        condition = kube.condition(get("workflowrun", run, ns), "Stalled")
        assert condition["reason"] == reason and words in condition["message"], condition
        assert not stalled.get("startedAt"), "nothing ran"
    finally:
        kubectl("delete", "workflowrun", run, "-n", ns, check=False)


def test_cancel_ends_a_schedule(pair, operator):
    a, b = pair
    ns = "tenancy-system"  # every minute: only the platform may
    run = _create(ns, a, "verify-isolation", "iso-cancel-schedule", parameters={"peers": b}, schedule="* * * * *")
    try:
        first = _wait(run, ns, lambda s: s.get("phase") == "Succeeded" and s.get("nextRunAt"), 120)
        kubectl("patch", "workflowrun", run, "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
        ended = _wait(run, ns, lambda s: not s.get("nextRunAt"), 30, "cancel clears nextRunAt")
        assert ended["phase"] == "Succeeded", ended
        # Past the next minute's tick: the run was reset and cancelled there, again and again, before.
        time.sleep(65)
        after = _status(run, ns)
        assert after["startedAt"] == first["startedAt"] and after["phase"] == "Succeeded", after
        assert not _events(run, ns, "Cancelled"), "a cancelled schedule does not flip to Cancelled at each tick"
    finally:
        kubectl("delete", "workflowrun", run, "-n", ns, check=False)



STEP_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Compensating", "Compensated", "Skipped")


def test_kubectl_tenant_run_follows_the_steps_live_and_exits_by_the_outcome(pair):
    a, b = pair
    ns = f"tenant-{a}"
    # Followed to the end: the plugin prints each change of phase and steps as the operator makes it.
    out = subprocess.run([PLUGIN, "run", "verify-isolation", a, "--param", f"peers={b}", "--timeout", "120"],
                         capture_output=True, text=True, timeout=150)
    print(f"\n$ kubectl tenant run verify-isolation {a} --param peers={b}\n{out.stdout[:1500]}")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    name = lines[0].split()[0].removeprefix("workflowrun/")
    assert lines[0] == f"workflowrun/{name} created in {ns}", lines[0]
    phases = [line.split(": ", 1)[1].split()[0] for line in lines if line.startswith(f"{ns}/{name}: ")]
    assert phases[-1] == "Succeeded" and len(phases) >= 2, f"a live follow shows the run moving: {phases}"
    last = max(i for i, line in enumerate(lines) if line.startswith(f"{ns}/{name}: "))
    final_steps = [line.split() for line in lines[last + 1:] if line.split()[0] in STEP_PHASES]
    assert final_steps and all(words[0] == "Succeeded" for words in final_steps), lines[last:]
    assert any(line.startswith("  probe ") and ": refused" in line for line in lines[last:]), lines[last:]
    assert _status(name, ns)["phase"] == "Succeeded"

    # Following that stops at --timeout exits 2 and says how to go on; the run itself goes on.
    out = subprocess.run([PLUGIN, "run", "verify-isolation", a, "--param", f"peers={b}", "--timeout", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    late = out.stdout.splitlines()[0].split()[0].removeprefix("workflowrun/")
    assert f"kubectl get wfr {late} -n {ns} -w" in out.stdout, out.stdout
    done = _wait(late, ns, lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    assert done["phase"] == "Succeeded", done
