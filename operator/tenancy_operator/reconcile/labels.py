"""Labels and annotations we put on everything we create, so owned objects can be found and pruned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TENANT", "MANAGED_BY", "OPERATOR", "PLATFORM", "CREDENTIAL_VERSION", "ROTATE", "owned_labels",
           "tenant_of"]

TENANT = "tenancy.dev/tenant"
MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "tenancy-operator"
# Namespaces with this label may reach every tenant namespace (ingress controllers, monitoring).
PLATFORM = "tenancy.dev/platform"
CREDENTIAL_VERSION = "tenancy.dev/credential-version"
ROTATE = "tenancy.dev/rotate"


def owned_labels(tenant: str) -> dict[str, str]:
    return {TENANT: tenant, MANAGED_BY: OPERATOR}


def tenant_of(obj: Mapping[str, Any] | None) -> str | None:
    """The tenant an object is labelled for, or None."""
    return (((obj or {}).get("metadata") or {}).get("labels") or {}).get(TENANT)
