"""Labels and annotations we put on everything we create, so owned objects can be found and pruned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TENANT", "MANAGED_BY", "OPERATOR", "PLATFORM", "CREDENTIAL_VERSION", "ROTATE", "DELETION_PROTECTED",
           "ABANDON_DATA", "ABANDON_BACKEND_DATA", "owned_labels", "tenant_of"]

TENANT = "tenancy.dev/tenant"
MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "tenancy-operator"
# Namespaces with this label may reach every tenant namespace (ingress controllers, monitoring).
PLATFORM = "tenancy.dev/platform"
CREDENTIAL_VERSION = "tenancy.dev/credential-version"
ROTATE = "tenancy.dev/rotate"
# On a Tenant, set by the operator: "true" while its LifecyclePolicy has deletionProtection. The
# chart's ValidatingAdmissionPolicy refuses deleting a Tenant that carries it (and one with
# spec.deletionProtection, read directly), and refuses anyone but the operator removing it.
DELETION_PROTECTED = "tenancy.dev/deletion-protected"
# Escape hatches for a deletion stuck on a Backend that will not come back (set by a person):
# on a Tenant, a comma-separated list of Backend names whose data of this tenant is left behind;
# on a Backend, "true" leaves every tenant's data there behind. Either way: Retain-and-forget, with
# a Warning Event naming what was left where.
ABANDON_DATA = "tenancy.dev/abandon-data"
ABANDON_BACKEND_DATA = "tenancy.dev/abandon-backend-data"


def owned_labels(tenant: str) -> dict[str, str]:
    return {TENANT: tenant, MANAGED_BY: OPERATOR}


def tenant_of(obj: Mapping[str, Any] | None) -> str | None:
    """The tenant an object is labelled for, or None."""
    return (((obj or {}).get("metadata") or {}).get("labels") or {}).get(TENANT)
