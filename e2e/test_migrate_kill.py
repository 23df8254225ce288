"""SIGKILL of the operator in the middle of each step of a migrate-database WorkflowRun (issue 16).

The operator runs the run itself (a WorkflowRun in the operator's namespace). A test-only switch (the
run's annotation `tenancy.dev/test-pause-step`, read only by an operator started with
TENANCY_TEST_FAULTS=1: workflows/faults.py) stops the chosen step after its side effects and before it
returns, the worst moment: done, not yet recorded. There the operator is SIGKILLed and started again
without TENANCY_TEST_FAULTS (the annotation stays on the run, ignored); the run must resume, end
Succeeded, and have done each side effect once: on the backends (the target database made once: same OID; the source
released; the data equal) and in the API server's audit log (the run's writes carry the field
manager `tenancy-migrate-database`: the hold, the placement and the hold's end on the Tenant, the
Secret once).

Also: a run deleted mid-way is undone (unfrozen, the half-made target dropped, `status.migration`
cleared) by the run's finalizer before it goes (handlers/workflow_run_end.py).

Steps killed: TENANCY_MIGRATE_KILL_STEPS (comma-separated, or `all`; default `copy`, the one that
repeated a side effect before resuming found the finished copy). `make workflow-faults` runs all six.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from tenancy_operator.workflows import faults
from tenancy_operator.workflows import migrate_database as mig

from . import audit
from .admin import pg_databases
from .kube import condition, eventually, get, kubectl
from .tenant_clients import credentials
from .test_migrate_database import (
    OPERATOR_NS,
    TARGET,
    _make_tenant,
    _on_target,
    _placed,
    _target_holds,
    _tenant_contents,
    create_run,
    run_status,
    target_pg,  # noqa: F401 - the module's fixture, used here too
)

_ASKED = (os.environ.get("TENANCY_MIGRATE_KILL_STEPS") or "copy").split(",")
KILLED = list(mig.STEP_NAMES) if _ASKED == ["all"] else [s for s in mig.STEP_NAMES if s in _ASKED]


@contextmanager
def _switchable(operator, marker: Path):
    """The operator restarted with the test-only switches on (a run's pause annotation counts, the pause
    writes `marker`); restarted without them on the way out."""
    saved = dict(operator.extra_env)
    try:
        operator.kill()
        operator.extra_env = {**saved, faults.ENABLED_BY: "1", faults.PAUSE_FILE: str(marker)}
        operator.start()
        yield
    finally:
        operator.extra_env = saved
        operator.kill()
        operator.start()


def _target_oid(instance, tenant: str) -> int | None:
    rows = _on_target(instance, "SELECT oid FROM pg_database WHERE datname = $1", "t_" + tenant.replace("-", "_"))
    return int(rows[0][0]) if rows else None


@pytest.mark.parametrize("step", KILLED)
def test_sigkill_in_the_middle_of_a_step_resumes_and_acts_once(step, target_pg, operator,  # noqa: F811
                                                               cleanup_tenants, tmp_path):
    name = f"migk-{step[:5]}-{secrets.token_hex(2)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 1_000)
    before = _tenant_contents(creds)
    marker = Path(tmp_path) / "paused"
    run = f"migrate-{name}"
    since = audit.mark()
    started = time.monotonic()
    with _switchable(operator, marker):
        create_run(run, name, pause=step)
        eventually(marker.exists, 120, 0.2, f"the run reaches the pause in step {step}")
        paused = run_status(run)
        oid = _target_oid(target_pg, name)
        operator.kill()  # SIGKILL; the context starts it again without the pause
    assert paused["currentStep"] == step and paused["phase"] == "Running", paused
    eventually(lambda: run_status(run).get("phase") in ("Succeeded", "Failed", "Cancelled"), 180, 1,
               f"the run killed in {step} ends")
    done = run_status(run)
    took = time.monotonic() - started
    assert done["phase"] == "Succeeded", json.dumps(done)[:1500]
    attempts = {s["name"]: s["attempts"] for s in done["steps"]}
    assert attempts == {s: 2 if s == step else 1 for s in mig.STEP_NAMES}, attempts

    # On the backends: the data moved whole, the app's re-read credentials work there, the source is gone.
    moved = credentials(name)
    assert moved["PGPORT"] == str(target_pg.port) and moved["PGPASSWORD"] == creds["PGPASSWORD"]
    assert _tenant_contents(moved) == before
    assert pg_databases("t_" + name.replace("-", "_")) == set(), "the source is released"
    if oid is not None:  # the target database a killed step had made is the one that serves: made once
        assert _target_oid(target_pg, name) == oid, "the target database was dropped and made again"
    if step == "copy":
        assert "not copied again" in done["outputs"].get("copyFound", ""), done["outputs"]
    tenant = get("tenant", name)
    assert _placed(name) == TARGET and "migration" not in tenant["status"]

    # In the audit log: each write of the run once, however often the killed step ran.
    writes = audit.by_field_manager(since, mig.FIELD_MANAGER)
    assert writes == Counter({("patch", "tenants", "status", name): 3,  # hold, placement, hold's end
                              ("patch", "secrets", "", "tenant-credentials"): 1}), writes
    eventually(lambda: condition(get("tenant", name), "Ready").get("status") == "True", 60, 1,
               "the moved tenant Ready on the target")
    print(f"\nkilled in {step}: resumed, Succeeded in {took:.1f} s (write freeze {done['outputs'].get('writeFreezeSeconds')}"
          f" s, kill included where it fell inside the freeze); audit: {dict(writes)}")
    kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    assert _target_holds(target_pg, name) == []


def test_a_run_deleted_mid_way_is_undone_before_it_goes(target_pg, operator, cleanup_tenants, tmp_path):  # noqa: F811
    name = f"migd-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 1_000)
    before = _tenant_contents(creds)
    marker = Path(tmp_path) / "paused"
    run = f"migrate-{name}"
    with _switchable(operator, marker):  # paused in copy: frozen, held, and the copy made on the target
        create_run(run, name, pause="copy")
        eventually(marker.exists, 120, 0.2, "the run reaches the pause in step copy")
        assert _target_holds(target_pg, name), "the copy is on the target"
        assert get("tenant", name)["status"]["migration"]["run"] == run
        began = time.monotonic()
        kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
        eventually(lambda: get("workflowrun", run, OPERATOR_NS) is None, 90, 0.5, "the deleted run goes")
        took = time.monotonic() - began
    tenant = get("tenant", name)
    assert "migration" not in tenant["status"], "the hold is cleared"
    assert "tenancy.dev/workflow-run" not in (tenant["metadata"].get("annotations") or {}), "the lease is given up"
    assert _placed(name) == "pg-main" and credentials(name) == creds
    assert _tenant_contents(creds) == before, "unfrozen: the app connects, the data intact"
    assert _target_holds(target_pg, name) == [], "the half-made target is dropped"
    print(f"\nrun deleted inside copy: compensated and gone in {took:.1f} s")
