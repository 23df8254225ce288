"""Desired state of a tenant's Kubernetes slice: namespace, quota, limits, network policy, RBAC.

Pure: takes the tenant's name, uid and spec and returns the objects as plain dicts. The handler reads
what exists, `diff.plan` decides what to write, and the Kubernetes adapter writes only that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api import names
from ..api.tenant import Owner, TenantSpec
from . import labels

__all__ = ["desired_objects", "owner_reference", "OperatorIdentity", "APP_SERVICE_ACCOUNT", "OWNERS_BINDING",
           "SECRETS_BINDING", "OWNED_KINDS"]

APP_SERVICE_ACCOUNT = "tenant-app"
OWNERS_BINDING = "tenant-owners"
SECRETS_BINDING = "tenancy-operator-secrets"
QUOTA = "tenant-quota"
LIMITS = "tenant-limits"
NETWORK_POLICY = "tenant-isolation"
# Every kind this module makes inside the namespace; the verify pass reads each.
OWNED_KINDS = ("ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "RoleBinding")


@dataclass(frozen=True)
class OperatorIdentity:
    """Who the operator runs as, and the ClusterRole it binds to itself in each tenant namespace."""

    namespace: str
    service_account: str
    secrets_role: str


def owner_reference(tenant: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "tenancy.dev/v1alpha1",
        "kind": "Tenant",
        "name": tenant,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _meta(name: str, tenant: str, namespace: str | None, uid: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels.owned_labels(tenant)}
    if namespace:
        meta["namespace"] = namespace
    meta["ownerReferences"] = [owner_reference(tenant, uid)]
    return meta


def _system_wide(owner: Owner) -> bool:
    """A User or Group owner named `system:...` (system:authenticated, system:serviceaccounts...) stands for
    every identity or every workload, other tenants' included, so it is never bound. The CRD refuses such
    owners; a Tenant stored before that rule may still hold one."""
    return owner.kind != "ServiceAccount" and owner.name.startswith("system:")


def system_wide_owners(spec: TenantSpec) -> list[str]:
    """The owners left out of the owners' RoleBinding (`_system_wide`), as `Kind name`."""
    return [f"{o.kind} {o.name}" for o in spec.owners if _system_wide(o)]


def _subject(owner: Owner, tenant_namespace: str) -> dict[str, str]:
    if owner.kind == "ServiceAccount":
        # "namespace:name", or a bare name meaning a ServiceAccount in the tenant namespace.
        namespace, _, name = owner.name.rpartition(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace or tenant_namespace}
    return {"kind": owner.kind, "name": owner.name, "apiGroup": "rbac.authorization.k8s.io"}


def desired_objects(tenant: str, uid: str, spec: TenantSpec,
                    operator: OperatorIdentity | None = None) -> list[dict[str, Any]]:
    """Objects the tenant should have, the namespace first.

    With an `operator` identity, a RoleBinding grants the operator Secrets in this namespace only,
    so it never needs to read Secrets cluster-wide.
    """
    ns = names.namespace(tenant)
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            **_meta(ns, tenant, None, uid),
            "labels": {
                **labels.owned_labels(tenant),
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    quota = spec.quota
    objects: list[dict[str, Any]] = [
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(QUOTA, tenant, ns, uid),
            "spec": {
                "hard": {
                    "requests.cpu": quota.cpu,
                    "limits.cpu": quota.cpu,
                    "requests.memory": quota.memory,
                    "limits.memory": quota.memory,
                    "pods": quota.pods,
                    "requests.storage": quota.storage,
                    "count/workflowruns.tenancy.dev": quota.workflow_runs,
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(LIMITS, tenant, ns, uid),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(NETWORK_POLICY, tenant, ns, uid),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {}},
                            {"namespaceSelector": {"matchLabels": {labels.PLATFORM: "true"}}},
                        ]
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(APP_SERVICE_ACCOUNT, tenant, ns, uid),
        },
    ]
    if operator is not None:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(SECRETS_BINDING, tenant, ns, uid),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": operator.secrets_role},
                "subjects": [{"kind": "ServiceAccount", "name": operator.service_account, "namespace": operator.namespace}],
            }
        )
    owners = [o for o in spec.owners if not _system_wide(o)]
    if owners:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(OWNERS_BINDING, tenant, ns, uid),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [_subject(o, ns) for o in owners],
            }
        )
    return objects
