"""The `LifecyclePolicy` kind: what suspend, archive and delete do to a tenant's data."""

from __future__ import annotations

from typing import Literal

from .common import Duration, Spec

__all__ = ["LifecyclePolicySpec", "ROOT_RULES"]


class LifecyclePolicySpec(Spec):
    reclaim: Literal["Retain", "Archive", "Delete"] = "Retain"
    """On Tenant deletion: Retain keeps backend data and closes every door (logins off, ACL user off, OpenBao
    tokens revoked); Delete deletes. Archive (export, then
    delete) is not built yet (issue 13): the policy and its tenants are Stalled, reason NotImplemented, and
    a deleted tenant's data is retained."""
    retention: Duration = "720h"
    """How long archives are kept. Not built yet (issue 13): another value makes the policy Stalled, reason
    NotImplemented."""
    deletion_protection: bool = False
    """Tenants using this policy cannot be deleted while it is true: the operator labels them
    tenancy.dev/deletion-protected and the API server refuses the delete; a teardown that runs anyway
    retains the data."""
    suspend_revokes_logins: bool = True
    """Suspending a tenant revokes its backend logins (data is kept). false is not built yet (issue 13): the
    policy is Stalled, reason NotImplemented, and suspending still revokes them."""


ROOT_RULES: list[dict[str, str]] = []
