"""Deletion protection as the API server sees it: a label mirrored onto each Tenant.

The chart's ValidatingAdmissionPolicy can read only the Tenant being deleted, not its
LifecyclePolicy, so the operator writes the policy's protection onto the Tenant as the label
`tenancy.dev/deletion-protected: "true"`, which the admission policy checks on DELETE. The Tenant's
own spec.deletionProtection is read there directly and is not mirrored: lifting it then takes
effect at once, with no label left to wait for. It is written
only when it differs, on every reconcile of the Tenant and whenever a LifecyclePolicy changes (for
the tenants that reference it), so steady state writes nothing.

Between a Tenant's creation (or a policy change) and the label landing there is a short window; the
teardown re-reads both flags and retains a protected tenant's data whatever got through.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.common import GROUP, VERSION
from ..backends import kube
from ..reconcile import labels
from . import sharding
from .indexes import first_stored

__all__ = ["lifecycle_protection", "tenants_by_policy", "wanted", "mirror", "policy_changed"]


@kopf.index(GROUP, VERSION, "lifecyclepolicies")
def lifecycle_protection(name: str, spec: kopf.Spec, **_: Any) -> dict[str, bool]:
    return {name: bool(spec.get("deletionProtection"))}


@kopf.index(GROUP, VERSION, "tenants")
def tenants_by_policy(name: str, spec: kopf.Spec, **_: Any) -> dict[str, str] | None:
    ref = spec.get("lifecyclePolicyRef")
    return {ref: name} if ref else None


def wanted(spec: dict[str, Any], policies: Any) -> bool | None:
    """Does the Tenant's LifecyclePolicy protect it? False if it names none; None if it names one that does
    not exist (deleted, or not yet made): the label then stays as it is, so deleting a protecting policy
    never lifts its protection (the Tenant's LifecyclePolicyReady condition says the policy is missing;
    pointing spec.lifecyclePolicyRef elsewhere, or at nothing, lifts it)."""
    ref = spec.get("lifecyclePolicyRef") or ""
    if not ref:
        return False
    found = first_stored(policies, ref)
    return None if found is None else bool(found)


async def mirror(name: str, obj: dict[str, Any], policies: Any, logger: logging.Logger) -> bool:
    """Put the label in line with the effective protection; True if it wrote. Never raises: the next
    reconcile or verify pass tries again, and the teardown guard holds meanwhile."""
    protect = wanted(dict(obj.get("spec") or {}), policies)
    current = ((obj.get("metadata") or {}).get("labels") or {}).get(labels.DELETION_PROTECTED) == "true"
    if protect is None or protect == current or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return False
    try:
        await kube.merge_patch("Tenant", name, None,
                               {"metadata": {"labels": {labels.DELETION_PROTECTED: "true" if protect else None}}})
    except kube.KubeError as exc:
        logger.error("cannot %s label %s on Tenant %s: %s", "set" if protect else "remove",
                     labels.DELETION_PROTECTED, name, exc)
        return False
    logger.info("label %s %s", labels.DELETION_PROTECTED, "set" if protect else "removed")
    return True


@kopf.on.event(GROUP, VERSION, "lifecyclepolicies")
async def policy_changed(name: str, tenants_by_policy: kopf.Index, lifecycle_protection: kopf.Index,
                         logger: logging.Logger, **_: Any) -> None:
    """Re-label the tenants that reference this policy (on create, change, delete and at start)."""
    for tenant in sorted(tenants_by_policy.get(name, [])):
        obj = await kube.get("Tenant", tenant)
        if obj is not None and sharding.owns_tenant(tenant, (obj.get("metadata") or {}).get("labels")):
            await mirror(tenant, obj, lifecycle_protection, logger)
