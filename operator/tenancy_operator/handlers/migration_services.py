"""What the migrate-database steps get from the operator (workflows.migrate_database.MigrationServices).

The WorkflowRun handler passes `MigrationServices()` as `StepContext.services`.
"""

from __future__ import annotations

from ..backends import kube
from ..backends.base import Target
from . import tenant as tenant_handler
from .targets import target_for

__all__ = ["MigrationServices"]


class MigrationServices:
    kube = kube

    async def target(self, backend: str) -> Target:
        """The Backend's Target; LookupError when the Backend does not exist (TargetError: its Secret)."""
        body = await kube.get("Backend", backend)
        if body is None:
            raise LookupError(f"Backend {backend} does not exist")
        return await target_for(body)

    async def quiesce(self, tenant: str) -> None:
        """Wait for a Tenant pass of this process that began before the hold (they run under this lock)."""
        async with tenant_handler.lock(tenant):
            pass
