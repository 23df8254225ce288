"""A migrate-database hold outliving its run is lifted by the Tenant's pass (handlers/migration_hold.py)."""

from __future__ import annotations

import pytest
from tenancy_operator.handlers.migration_hold import stale

HOLD = {"run": "move-acme", "targetBackend": "pg-b", "since": "2026-12-04T03:00:00Z"}


def _run(phase, tenant="acme", deleting=False):
    meta = {"name": "move-acme", **({"deletionTimestamp": "2026-12-04T03:01:00Z"} if deleting else {})}
    return {"metadata": meta, "spec": {"tenant": tenant, "workflow": "migrate-database"}, "status": {"phase": phase}}


@pytest.mark.parametrize("phase", ["Failed", "Cancelled", "Succeeded"])
def test_the_hold_of_a_finished_run_is_lifted(phase):
    assert stale("acme", HOLD, _run(phase)) == f"WorkflowRun move-acme is {phase}"


def test_the_hold_of_a_deleted_run_is_lifted():
    assert stale("acme", HOLD, None) == "WorkflowRun move-acme no longer exists"


def test_a_run_of_that_name_for_another_tenant_does_not_own_it():
    assert "tenant globex" in stale("acme", HOLD, _run("Running", tenant="globex"))


@pytest.mark.parametrize("phase", ["Pending", "Waiting", "Running", "Compensating", None])
def test_a_live_run_keeps_its_hold(phase):
    assert stale("acme", HOLD, _run(phase)) == ""


def test_a_run_being_deleted_keeps_it_its_finalizer_compensates_first():
    assert stale("acme", HOLD, _run("Failed", deleting=True)) == ""


def test_a_hold_naming_no_run_is_lifted():
    assert stale("acme", {"targetBackend": "pg-b"}, None) == "it names no WorkflowRun"


def test_a_young_hold_of_a_missing_run_is_kept_an_old_one_lifted():
    """A migration driven step by step without a WorkflowRun object (the e2e tests of each step) holds the
    tenant for its few minutes; an orphan is lifted once its hold is older than the grace."""
    from tenancy_operator.handlers.migration_hold import ORPHAN_GRACE_S

    since = 1_796_354_400.0  # 2026-12-04T03:20:00Z
    hold = {"run": "move-acme", "since": "2026-12-04T03:20:00Z"}
    assert stale("acme", hold, None, now=since + 5) == ""
    assert stale("acme", hold, None, now=since + ORPHAN_GRACE_S + 1) == "WorkflowRun move-acme no longer exists"
    assert stale("acme", {"run": "move-acme", "since": "garbled"}, None, now=since) == "WorkflowRun move-acme no longer exists"
