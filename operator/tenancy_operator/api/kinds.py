"""The registry of our kinds: names, scope, printer columns and the models behind spec and status.

Handlers, the CRD generator and the kubectl plugin all read kind names from here, so a kind is
described exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from . import backend, cache_policy, lifecycle_policy, session_policy, tenant, tenant_status, workflow_run
from .common import GROUP, VERSION, KindStatus

__all__ = ["Kind", "KINDS", "TENANT", "BACKEND", "CACHE_POLICY", "SESSION_POLICY", "LIFECYCLE_POLICY", "WORKFLOW_RUN"]

CATEGORY = "tenancy"


def _ready_column() -> dict[str, Any]:
    return {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}


def _age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    short_names: list[str]
    scope: str
    spec: type[BaseModel]
    status: type[BaseModel] | None
    root_rules: list[dict[str, str]]
    description: str
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


TENANT = Kind(
    kind="Tenant",
    plural="tenants",
    singular="tenant",
    short_names=["tn"],
    scope="Cluster",
    spec=tenant.TenantSpec,
    status=tenant_status.TenantStatus,
    root_rules=tenant.ROOT_RULES,
    description="One tenant of the platform: its namespace slice and its slice of every backing service.",
    columns=[
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        _ready_column(),
        {"name": "Namespace", "type": "string", "jsonPath": ".status.namespace"},
        {"name": "Backends", "type": "string", "jsonPath": ".status.backends"},
        _age_column(),
        {"name": "Message", "type": "string", "priority": 1,
         "jsonPath": '.status.conditions[?(@.type=="Ready")].message'},
    ],
)

BACKEND = Kind(
    kind="Backend",
    plural="backends",
    singular="backend",
    short_names=["be"],
    scope="Cluster",
    spec=backend.BackendSpec,
    status=backend.BackendStatus,
    root_rules=backend.ROOT_RULES,
    description="One instance of a backing service (postgres, redis, mongodb, search, vault) tenants are placed on.",
    columns=[
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        _ready_column(),
        {"name": "Tenants", "type": "integer", "jsonPath": ".status.tenantsPlaced"},
        {"name": "Capacity", "type": "integer", "jsonPath": ".spec.capacity"},
        {"name": "Version", "type": "string", "jsonPath": ".status.serverVersion", "priority": 1},
        _age_column(),
    ],
)

CACHE_POLICY = Kind(
    kind="CachePolicy",
    plural="cachepolicies",
    singular="cachepolicy",
    short_names=["cachep"],
    scope="Cluster",
    spec=cache_policy.CachePolicySpec,
    status=KindStatus,
    root_rules=cache_policy.ROOT_RULES,
    description="Cache tiers, TTLs, per-tenant memory budget and eviction, referenced by tenants: the operator "
    "keeps each referencing tenant's Redis usage under its budget (docs/cache.md).",
    columns=[
        {"name": "Budget", "type": "string", "jsonPath": ".spec.memoryBudget"},
        {"name": "Eviction", "type": "string", "jsonPath": ".spec.eviction"},
        _ready_column(),
        _age_column(),
    ],
)

SESSION_POLICY = Kind(
    kind="TenantSessionPolicy",
    plural="tenantsessionpolicies",
    singular="tenantsessionpolicy",
    short_names=["tsp"],
    scope="Cluster",
    spec=session_policy.TenantSessionPolicySpec,
    status=KindStatus,
    root_rules=session_policy.ROOT_RULES,
    description="Session lifetime, idle timeout, concurrency, signing algorithm and key rotation: each referencing "
    "tenant gets an OpenBao signing key rotated on schedule and its JWKS in a ConfigMap (docs/sessions.md).",
    columns=[
        {"name": "Lifetime", "type": "string", "jsonPath": ".spec.lifetime"},
        {"name": "Idle", "type": "string", "jsonPath": ".spec.idleTimeout"},
        {"name": "Algorithm", "type": "string", "jsonPath": ".spec.signingAlgorithm"},
        _ready_column(),
        _age_column(),
    ],
)

LIFECYCLE_POLICY = Kind(
    kind="LifecyclePolicy",
    plural="lifecyclepolicies",
    singular="lifecyclepolicy",
    short_names=["lcp"],
    scope="Cluster",
    spec=lifecycle_policy.LifecyclePolicySpec,
    status=KindStatus,
    root_rules=lifecycle_policy.ROOT_RULES,
    description="What suspend, archive and delete do: reclaim, retention, deletion protection.",
    columns=[
        {"name": "Reclaim", "type": "string", "jsonPath": ".spec.reclaim"},
        {"name": "Retention", "type": "string", "jsonPath": ".spec.retention"},
        {"name": "Protected", "type": "boolean", "jsonPath": ".spec.deletionProtection"},
        _ready_column(),
        _age_column(),
    ],
)

WORKFLOW_RUN = Kind(
    kind="WorkflowRun",
    plural="workflowruns",
    singular="workflowrun",
    short_names=["wfr"],
    scope="Namespaced",
    spec=workflow_run.WorkflowRunSpec,
    status=workflow_run.WorkflowRunStatus,
    root_rules=workflow_run.ROOT_RULES,
    description="One run of a built-in multi-step workflow (saga) for a tenant, with compensation: steps run in order, "
    "each retried with backoff; a failed or cancelled run undoes the steps that ran, last first.",
    columns=[
        {"name": "Workflow", "type": "string", "jsonPath": ".spec.workflow"},
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Step", "type": "string", "jsonPath": ".status.currentStep"},
        _age_column(),
        {"name": "Message", "type": "string", "priority": 1, "jsonPath": ".status.message"},
    ],
)

KINDS = [TENANT, BACKEND, CACHE_POLICY, SESSION_POLICY, LIFECYCLE_POLICY, WORKFLOW_RUN]
