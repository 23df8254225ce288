"""Who takes a free tenant lease among waiting WorkflowRuns (handlers/workflow_run.ahead_in_line)."""

from __future__ import annotations

from tenancy_operator.handlers.workflow_run import ahead_in_line

OPS = "tenancy-system"


def run(namespace: str, name: str, created: str, phase: str | None = "Waiting", tenant: str = "a", cancel: bool = False):
    return {"metadata": {"namespace": namespace, "name": name, "creationTimestamp": created},
            "spec": {"tenant": tenant, **({"cancel": True} if cancel else {})}, "status": {"phase": phase} if phase else {}}


def test_the_platforms_waiting_run_goes_before_a_newer_owner_run():
    runs = [run(OPS, "offboard", "2026-12-04T10:00:05Z"), run("tenant-a", "rotate-2", "2026-12-04T10:00:09Z", None)]
    assert ahead_in_line(runs, "a", "tenant-a/rotate-2", OPS) == f"{OPS}/offboard"
    assert ahead_in_line(runs, "a", f"{OPS}/offboard", OPS) == ""


def test_the_platforms_run_goes_first_even_when_newer_and_owners_go_oldest_first():
    runs = [run("tenant-a", "old", "2026-12-04T10:00:00Z"), run("tenant-a", "older", "2026-12-04T09:00:00Z"),
            run(OPS, "migrate", "2026-12-04T11:00:00Z")]
    assert ahead_in_line(runs, "a", "tenant-a/old", OPS) == f"{OPS}/migrate"
    assert ahead_in_line(runs, "a", f"{OPS}/migrate", OPS) == ""
    runs = runs[:2]
    assert ahead_in_line(runs, "a", "tenant-a/old", OPS) == "tenant-a/older"
    assert ahead_in_line(runs, "a", "tenant-a/older", OPS) == ""


def test_runs_not_waiting_cancelled_or_of_another_tenant_do_not_count():
    runs = [run(OPS, "done", "2026-12-04T09:00:00Z", "Succeeded"), run(OPS, "cancelled", "2026-12-04T09:00:01Z", cancel=True),
            run(OPS, "other", "2026-12-04T09:00:02Z", tenant="b"), run("tenant-a", "me", "2026-12-04T10:00:00Z", None)]
    assert ahead_in_line(runs, "a", "tenant-a/me", OPS) == ""
    assert ahead_in_line(runs, "a", "tenant-a/gone", OPS) == ""  # deleted meanwhile: nothing to wait for
