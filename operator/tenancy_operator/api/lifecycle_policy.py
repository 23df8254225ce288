"""The `LifecyclePolicy` kind: what suspend, archive and delete do to a tenant's data."""

from __future__ import annotations

from typing import Literal

from .common import Duration, Spec

__all__ = ["LifecyclePolicySpec", "ROOT_RULES"]


class LifecyclePolicySpec(Spec):
    reclaim: Literal["Retain", "Archive", "Delete"] = "Retain"
    """On Tenant deletion: Retain leaves backend data and forgets it; Archive exports then deletes;
    Delete deletes."""
    retention: Duration = "720h"
    """How long archives are kept."""
    deletion_protection: bool = False
    """Tenants using this policy cannot be deleted while it is true: the operator labels them
    tenancy.dev/deletion-protected and the API server refuses the delete; a teardown that runs anyway
    retains the data."""
    suspend_revokes_logins: bool = True
    """Suspending a tenant revokes its backend logins (data is kept)."""


ROOT_RULES: list[dict[str, str]] = []
