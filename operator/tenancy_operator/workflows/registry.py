"""The built-in workflows, by the name `WorkflowRun.spec.workflow` gives.

Each entry turns a run's parameters into its ordered steps. A workflow whose module is not built
is absent here; the handler reports such a run Stalled, reason NotImplemented (reconcile/unbuilt.py).
"""

from __future__ import annotations

from collections.abc import Callable

from . import archive, migrate_database, offboard, rotate_credentials, verify_isolation
from .engine import Step

__all__ = ["WORKFLOWS", "steps_for"]

WORKFLOWS: dict[str, Callable[[dict[str, str]], list[Step]]] = {
    "rotate-credentials": rotate_credentials.steps,
    "verify-isolation": verify_isolation.steps,
    "migrate-database": migrate_database.steps,
    "export": archive.export_steps,
    "restore": archive.restore_steps,
    "offboard": offboard.steps,
}


def steps_for(workflow: str, params: dict[str, str]) -> list[Step]:
    """The steps of one run. KeyError: the workflow is not built; ValueError: a parameter is wrong."""
    return WORKFLOWS[workflow](dict(params))
