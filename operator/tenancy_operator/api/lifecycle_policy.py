"""The `LifecyclePolicy` kind: what suspend, archive and delete do to a tenant's data."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import Duration, Spec, cel

__all__ = ["LifecyclePolicySpec", "ROOT_RULES"]


class LifecyclePolicySpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("duration(self.retention) >= duration('1m')",
                    "retention must be at least 1m: the purge pass deletes every archive older than it, and a "
                    "deleted tenant's archive is the only copy of its data"),
            ]
        }
    }

    reclaim: Literal["Retain", "Archive", "Delete"] = "Retain"
    """On Tenant deletion: Retain keeps backend data and closes every door (logins off, ACL user off, OpenBao
    tokens revoked); Delete deletes and never archives; Archive closes the doors, exports an encrypted
    archive (as spec.state Archived does), verifies it, then deletes as Delete does. An archive that cannot be
    made keeps the deletion waiting (Terminating, with the reason), so no data is ever lost to it."""
    retention: Duration = "720h"
    """How long archives of tenants using this policy are kept: an archive older than this (its createdAt plus
    the current value, so shortening it purges older archives at the next pass) is purged by the periodic purge
    pass (files, then the manifest), with an Event on the Tenant if it still exists and a log line otherwise.
    At least 1m."""
    deletion_protection: bool = False
    """Tenants using this policy cannot be deleted while it is true: the operator labels them
    tenancy.dev/deletion-protected and the API server refuses the delete; a teardown that runs anyway
    retains the data."""
    suspend_revokes_logins: bool = True
    """Suspending a tenant revokes its backend logins and cuts their open sessions and tokens (data is
    kept). false keeps the logins working while suspended (a pause of compute only: external jobs and
    people keep reading the data); either way the tenant namespace's Deployments and StatefulSets are
    scaled to zero and restored on resume. An Archived tenant's doors always close."""
    inactivity_suspend_after: Duration | None = None
    """Suspend a tenant after this long with no activity: no PostgreSQL session of its roles and no new
    session to its database, no Redis client of its ACL user, no ready replica of a Deployment or
    StatefulSet in its namespace (docs/how-it-works.md). The operator marks the Tenant with the annotation
    tenancy.dev/suspended-for-inactivity and never rewrites spec.state; `kubectl tenant resume` (or
    removing the annotation) resumes it. Unset: never."""
    owner_exports_kept: Annotated[int, Field(ge=1, le=100)] = 1
    """How many archives made by `export` WorkflowRuns in the tenant's own namespace (by tenant owners) are
    kept per tenant: once an owner's export is published and verified, the oldest beyond this many are
    purged (an Event on the Tenant names them). Exports run from the operator's namespace, and archives
    of spec.state Archived or reclaim Archive, never count. `retention` still purges each."""


ROOT_RULES: list[dict[str, str]] = []
