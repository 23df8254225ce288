"""The `Tenant` kind: everything one tenant gets from the platform (its status: :mod:`.tenant_status`).

A Tenant is cluster-scoped because it owns a namespace. Its spec says what each backend gives the
tenant; its status follows kstatus (observedGeneration, Ready/Reconciling/Stalled plus one condition
per part) so `kubectl wait`, Argo CD and Flux can read it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from . import names
from .common import QUANTITY_RULE, DNSLabel, Duration, ObjectName, Quantity, Spec, cel, parse_duration

__all__ = [
    "Owner",
    "Quota",
    "PostgresSpec",
    "ServiceSpec",
    "SearchSpec",
    "VaultSpec",
    "CredentialsSpec",
    "MIN_ROTATE_EVERY",
    "AutoscalingRule",
    "RestoreFrom",
    "TenantSpec",
    "PLACED_SERVICES",
    "ROOT_RULES",
]

# Subjects of RoleBindings: user names from OIDC often carry ':' and '@', never quotes or spaces.
SubjectName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9@:._-]*$", min_length=1, max_length=253)]


# What RBAC accepts as a ServiceAccount subject: namespace a DNS label, name a DNS subdomain.
_SA_SUBJECT = ("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:)?"
               "[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Owner(Spec):
    """A person, group or service account bound to the `admin` ClusterRole in the tenant namespace."""

    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(f"self.kind != 'ServiceAccount' || self.name.matches('{_SA_SUBJECT}')",
                    "a ServiceAccount owner is `namespace:name` (or a bare name, meaning the tenant namespace): "
                    "the namespace a DNS-1123 label, the name a DNS-1123 subdomain (lower-case)"),
                # system:authenticated, system:serviceaccounts[:ns], system:anonymous... stand for every
                # identity or every workload, other tenants' pods included: one such owner opens the
                # namespace and its credentials Secret to them all.
                cel("self.kind == 'ServiceAccount' || !self.name.startsWith('system:')",
                    "a User or Group owner may not be a Kubernetes system: name (system:authenticated, "
                    "system:serviceaccounts and the like stand for every identity or every workload, other "
                    "tenants' included); name a person, a group of people, or kind ServiceAccount"),
            ]
        }
    }

    kind: Literal["User", "Group", "ServiceAccount"] = "Group"
    """Maps to the RoleBinding subject kind."""
    name: SubjectName
    """The subject name; for a ServiceAccount, `namespace:name`."""


def _whole(what: str, example: str) -> dict:
    # The API server would round a fractional count of bytes or pods; refuse it instead of writing
    # a quota that differs from the spec (and would then look like drift forever).
    return {"x-kubernetes-validations": [QUANTITY_RULE, cel(
        # isInteger() alone says no to 1.5Gi (its fast int64 path); the float check settles those.
        "!isQuantity(self) || quantity(self).isInteger() || "
        "quantity(self).asApproximateFloat() == double(int(quantity(self).asApproximateFloat()))",
        f"{what} must be a whole number (the API server would round a fraction), like {example}")]}


# CPU is counted in millicores: more precision than 1m (0.0001, 1.5m) is rounded by the API server.
_MILLI_CPU = cel("self.matches('^([0-9]+([.][0-9]{0,3})?|[.][0-9]{1,3}|[0-9]+m|[0-9]+[kMGTPE]|[0-9]+[eE][+]?[0-9]+)$')",
                 "cpu must be whole millicores, like 500m, 2 or 1.5 (at most three decimals); "
                 "the API server would round finer values such as 0.0001 or 1.5m")


class Quota(Spec):
    """Hard limits of the tenant namespace; maps to its ResourceQuota."""

    cpu: Annotated[Quantity, Field(json_schema_extra={"x-kubernetes-validations": [QUANTITY_RULE, _MILLI_CPU]})] = "4"
    """Total CPU requests (`requests.cpu`) and limits (`limits.cpu`) in the namespace; whole millicores."""
    memory: Annotated[Quantity, Field(json_schema_extra=_whole("memory", "512Mi or 1.5Gi"))] = "8Gi"
    """Total memory requests (`requests.memory`) and limits (`limits.memory`); whole bytes."""
    pods: Annotated[Quantity, Field(json_schema_extra=_whole("pods", "20"))] = "20"
    """Number of pods (`pods`); a whole number."""
    storage: Annotated[Quantity, Field(json_schema_extra=_whole("storage", "50Gi"))] = "50Gi"
    """Total persistent volume claims storage (`requests.storage`); whole bytes."""
    workflow_runs: Annotated[Quantity, Field(json_schema_extra=_whole("workflowRuns", "20"))] = "20"
    """How many WorkflowRuns the tenant namespace may hold at once (`count/workflowruns.tenancy.dev`):
    the API server refuses the next one (finished runs count until deleted; `ttlSecondsAfterFinished`)."""


class ServiceSpec(Spec):
    """A slice of one backing service."""

    enabled: bool = False
    """Whether the tenant gets this service at all."""
    backend: ObjectName | None = None
    """The `Backend` to use. Left empty, the operator places the tenant on the ready Backend of this type
    with the most free capacity and records the choice in `status.placement`; once placed, only a
    `migrate-database` WorkflowRun changes it (PostgreSQL, with this field left empty; moving the other
    services between Backends is not built yet)."""


class PostgresSpec(ServiceSpec):
    """A PostgreSQL database `t_<name>` with owner and two login roles."""

    connection_limit: int = Field(20, ge=1, le=10000)
    """Maps to `CONNECTION LIMIT` of the database and its login roles."""


class SearchSpec(ServiceSpec):
    """OpenSearch (or Elasticsearch) indices `t-<name>_*` and the tenant's role on them."""

    max_shards: int = Field(50, ge=1, le=1000)
    """The most shards (primaries and replicas, of open and closed indices) the tenant's indices may hold.
    Counted on every verify pass: once the count reaches it, the tenant's role loses index creation and
    index settings updates, so the server refuses them (OpenSearch: HTTP 403), `SearchReady` says
    `ShardLimitReached` and a Warning Event names the count; reads and writes to existing indices go on.
    Deleting indices below the limit gives the actions back on the next pass. A request made between two
    passes can go past the limit (one index of many shards), so the node's `cluster.max_shards_per_node`
    stays the hard bound for the whole server."""


class VaultSpec(ServiceSpec):
    """OpenBao (Vault API) keys, KV path, policy and Kubernetes auth role."""

    transit_key: bool = True
    """A transit key `tenant-<name>` for encrypt/decrypt: in the policy and as `VAULT_TRANSIT_*` in the
    Secret. Turned off later, it leaves the policy and the Secret but the key itself is kept (deleting it
    would make everything encrypted with it unreadable); turning it on again gives the same key back."""
    kv: bool = True
    """A KV v2 path `tenants/<name>/`: in the policy and as `VAULT_KV_*` in the Secret. Off: neither,
    and a token of the tenant is refused there; data already written stays."""


MIN_ROTATE_EVERY = "1h"
"""The shortest rotation period: each rotation rolls opted-in workloads and, after the overlap, cuts
the previous password, so a shorter one would churn (or loop) rather than protect."""


class CredentialsSpec(Spec):
    """How the `tenant-credentials` Secret is rotated."""

    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(f"!has(self.rotateEvery) || duration(self.rotateEvery) >= duration('{MIN_ROTATE_EVERY}')",
                    f"rotateEvery must be at least {MIN_ROTATE_EVERY}: every rotation rolls opted-in workloads "
                    "and cuts the previous password after the overlap"),
                cel("!has(self.rotateEvery) || !has(self.overlap) || "
                    "duration(self.overlap) < duration(self.rotateEvery)",
                    "overlap must be shorter than rotateEvery: the previous password must stop working before "
                    "the next rotation"),
                cel("!has(self.restartWorkloads) || !self.restartWorkloads || !has(self.overlap) || "
                    "duration(self.overlap) > duration('0s')",
                    "overlap must be above 0s when restartWorkloads is true: workloads roll, so the previous "
                    "password must outlive the rollout"),
            ]
        }
    }

    rotate_every: Duration = "720h"
    """Rotation period (Go duration), at least 1h. The annotation `tenancy.dev/rotate` rotates on demand."""
    overlap: Duration = "1h"
    """How long the previous credentials keep working after a rotation; shorter than rotateEvery, and
    above 0s when restartWorkloads is true."""
    restart_workloads: bool = False
    """Annotate opted-in workloads' pod templates with the credential version so they roll."""

    @model_validator(mode="after")
    def _safe_rotation(self) -> CredentialsSpec:
        # The CRD's CEL refuses these at apply; this catches objects stored before the rules existed.
        every, overlap = parse_duration(self.rotate_every), parse_duration(self.overlap)
        if every < parse_duration(MIN_ROTATE_EVERY):
            raise ValueError(f"rotateEvery must be at least {MIN_ROTATE_EVERY}")
        if overlap >= every:
            raise ValueError("overlap must be shorter than rotateEvery")
        if self.restart_workloads and not overlap:
            raise ValueError("overlap must be above 0s when restartWorkloads is true")
        return self


class RestoreFrom(Spec):
    """An archive to load into the tenant (see `kubectl tenant archives`)."""

    archive: Annotated[str, Field(pattern=r"^[a-z0-9][-a-z0-9]{0,120}$")]
    """The archive id (`status.archive.id` of the archived tenant). Every file is checked against the
    manifest's sha256 and authenticated before anything is written; a missing or changed file makes the
    Tenant Stalled (reason ArchiveTampered) with a message naming the file. A manifest whose tenant, id,
    wrapping key `tenant-<tenant>` and that key's owner disagree is refused before its key is unwrapped
    (ArchiveMismatch); a part naming something outside this tenant (a KV path with `..`, an index outside
    its prefix...) is refused before any write (ArchiveUnsafe)."""
    overwrite: bool = False
    """Restoring into a tenant that already holds data (any table, Redis key under its prefix, KV secret, MongoDB
    collection, search index, or a ConfigMap the archive would write) is refused (Stalled, reason RestoreRefused) unless this is true; then what the archive holds replaces it."""


class TargetRef(Spec):
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    """Kind of the scaled workload."""
    name: DNSLabel
    """Name of the workload in the tenant namespace."""


class MetricSource(Spec):
    prometheus: str = Field(min_length=1, max_length=2048)
    """A PromQL query returning the demand (for example requests per second) as one series."""


class AutoscalingRule(Spec):
    """One forecast-fed scaling rule for a workload of the tenant."""

    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
                # The forecaster predicts within one day of one-minute steps (forecasting/features.py:
                # horizon + window + 30 steps <= 1440); further ahead is not autoscaling.
                cel("duration(has(self.leadTime) ? self.leadTime : '5m') + duration(has(self.window) ? self.window : '5m')"
                    " <= duration('23h')",
                    "leadTime + window must be at most 23h: the forecast looks at most one day ahead"),
                # The HPA's per-pod target is capacityPerReplica x targetUtilization / 100, in milli-units:
                # below 1m it rounds to 0, which the API server refuses on the HPA.
                cel("self.capacityPerReplica * double(has(self.targetUtilization) ? self.targetUtilization : 70)"
                    " >= 0.1",
                    "capacityPerReplica x targetUtilization / 100 must be at least 0.001: the HPA's per-pod target "
                    "is kept in milli-units"),
            ]
        }
    }

    name: DNSLabel
    """Name of the rule, unique within the tenant."""
    target_ref: TargetRef
    """The workload the HPA scales."""
    metric: MetricSource
    """Where demand history comes from."""
    capacity_per_replica: float = Field(gt=0)
    """Demand one replica serves at 100% utilisation, in the metric's unit."""
    min_replicas: int = Field(1, ge=1, le=10000)
    """Maps to the HPA's `minReplicas` when no forecast lifts it."""
    max_replicas: int = Field(ge=1, le=10000)
    """Maps to the HPA's `maxReplicas`."""
    target_utilization: int = Field(70, ge=1, le=100)
    """Target utilisation, percent."""
    lead_time: Duration = "5m"
    """How far ahead to forecast; at least pod start delay plus metric delay."""
    window: Duration = "5m"
    """Width of the forecast window: the forecast is the peak demand over [now + leadTime, now + leadTime + window]."""
    mode: Literal["Observe", "Floor", "ExternalMetric"] = "Observe"
    """Observe: an HPA at the rule's own minReplicas scales reactively; the forecast goes to status and
    metrics only and never changes the HPA. Floor: lift the HPA's minReplicas before a predicted rise.
    ExternalMetric: export the forecast as an external metric the HPA reads."""


PLACED_SERVICES = ("postgres", "redis", "mongodb", "search", "vault")


class TenantSpec(Spec):
    """What the tenant gets."""

    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("!has(self.sessionPolicyRef) || (has(self.redis) && has(self.redis.enabled) && self.redis.enabled "
                    "&& has(self.vault) && has(self.vault.enabled) && self.vault.enabled)",
                    "spec.sessionPolicyRef needs spec.redis.enabled and spec.vault.enabled: sessions are kept in the "
                    "tenant's Redis and their tokens are signed by its OpenBao key"),
                cel("!has(self.cachePolicyRef) || (has(self.redis) && has(self.redis.enabled) && self.redis.enabled)",
                    "spec.cachePolicyRef needs spec.redis.enabled: the policy budgets the tenant's Redis keys"),
                cel("!has(self.state) || self.state != 'Archived' || (has(self.vault) && has(self.vault.enabled) "
                    "&& self.vault.enabled)",
                    "spec.state Archived needs spec.vault.enabled: an archive's data key is wrapped by the tenant's "
                    "OpenBao transit key"),
            ]
        }
    }

    display_name: str | None = Field(None, max_length=256)
    """A human name, shown by `kubectl tenant status`; never sent to a backend."""
    owners: list[Owner] = Field(default_factory=list, max_length=64)
    """Who administers the tenant namespace (bound to the `admin` ClusterRole there only)."""
    state: Literal["Active", "Suspended", "Archived"] = "Active"
    """Active serves; Suspended keeps data, scales the tenant's workloads to zero and revokes its logins (unless
    its LifecyclePolicy sets suspendRevokesLogins: false; `status.suspension.loginsRevoked` says which).
    Archived closes every door, exports the tenant's PostgreSQL, Redis, OpenBao KV, MongoDB and search data
    and its namespace's ConfigMaps into an encrypted archive (the operator's archive store,
    TENANCY_ARCHIVE_DIR), verifies it, then deletes the live backend data; phase Archived, the archive's id and
    location in `status.archive`. Needs spec.vault.enabled (its transit key wraps the archive's key; refused
    at apply without it); without an OpenBao backend placed or an archive store, the Tenant is Stalled. Back to Active gives empty services: use `restoreFrom` to load data."""
    restore_from: RestoreFrom | None = None
    """Load an archive into this tenant once its services are provisioned (`status.restore` records it, so it
    runs once); while spec.state is not Active it waits (RestoreReady False, WaitingForActive). See RestoreFrom. Into a name whose transit key is kept for a deleted tenant's archives (the
    Tenant is Stalled NameHeldByArchives), restoring one of those archives hands this Tenant that key."""
    adopt_namespace: bool = False
    """Adopt an existing namespace `tenant-<name>` that no other tenant owns. Without it, an existing
    namespace makes the tenant Stalled."""
    adopt_retained_data: bool = False
    """Re-attach backend data retained from a deleted Tenant of the same name (its database, roles,
    Redis keys, OpenBao paths carry that Tenant's UID). Without it such data makes the tenant Stalled
    with reason OwnedByAnotherTenant, so a new tenant never reads a previous one's data by accident.
    With it, the operator re-marks the data as this Tenant's and posts a RetainedDataAdopted Event. Data
    of a Tenant that still exists is never taken, whatever this says."""
    deletion_protection: bool = False
    """While true, the API server refuses to delete this Tenant (the chart's admission policy, on by default:
    chart value `deletionProtection.enabled`; without it the operator still keeps the data, as reclaim Retain)."""
    quota: Quota = Field(default_factory=Quota)
    """Namespace ResourceQuota."""
    postgres: PostgresSpec = Field(default_factory=PostgresSpec)
    """PostgreSQL database and roles."""
    redis: ServiceSpec = Field(default_factory=ServiceSpec)
    """A Redis ACL user fenced to the key prefix `t:<name>:`."""
    mongodb: ServiceSpec = Field(default_factory=ServiceSpec)
    """A MongoDB database `t_<name>` and a user that may read and write it alone (`MONGODB_URI` in the
    credentials Secret). On FerretDB v1 with its PostgreSQL handler the server fences tenants: the user
    is a PostgreSQL role without any grant on other tenants' schemas. Database and collection names of
    other tenants stay listable (docs/mongodb.md)."""
    search: SearchSpec = Field(default_factory=SearchSpec)
    """OpenSearch indices `t-<name>_*`, an index template, a role with permissions on that pattern only and
    an internal user per credential slot mapped to it (the OpenSearch security plugin)."""
    vault: VaultSpec = Field(default_factory=VaultSpec)
    """OpenBao transit key, KV path, policy and Kubernetes auth role."""
    credentials: CredentialsSpec = Field(default_factory=CredentialsSpec)
    """Rotation of the credentials Secret."""
    cache_policy_ref: ObjectName | None = None
    """Name of a CachePolicy (needs `redis.enabled`): its settings go to ConfigMap `tenant-cache` in the tenant
    namespace and its memory budget is enforced on the tenant's keys. A missing policy: Ready=False, reason
    PolicyNotFound, until it exists (picked up on the next verify pass)."""
    session_policy_ref: ObjectName | None = None
    """Name of a TenantSessionPolicy: a session-signing key in OpenBao rotated by it, its public keys and
    settings in ConfigMap `tenant-session-keys`, sessions kept in the tenant's Redis (needs `redis` and
    `vault` enabled, checked at apply). A name with no such policy: `Ready=False`, reason `PolicyNotFound`,
    until it appears."""
    lifecycle_policy_ref: ObjectName | None = None
    """Name of a LifecyclePolicy; without one, deleting the tenant retains backend data. A name with no policy
    behind it: LifecyclePolicyReady False, reason PolicyNotFound (the data is retained meanwhile, and a
    deletion-protected label already set stays until the reference names an existing policy without
    protection, or none); the tenant keeps serving and stays Ready."""
    autoscaling: list[AutoscalingRule] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            # Two HPAs on one workload fight (the HPA controller disables both): one rule per target.
            "x-kubernetes-validations": [cel(
                "self.all(r, self.exists_one(s, s.targetRef.kind == r.targetRef.kind && s.targetRef.name == r.targetRef.name))",
                "two autoscaling rules must not share a targetRef (kind and name): the HPA controller would "
                "disable both; use one rule per workload",
            )],
        },
    )
    """Forecast-fed scaling rules, at most one per workload (targetRef)."""


def _placement_rule(service: str) -> dict[str, str]:
    placed = f"has(self.status) && has(self.status.placement) && has(self.status.placement.{service})"
    return cel(
        f"!({placed}) || !has(self.spec.{service}.backend) || self.spec.{service}.backend == self.status.placement.{service}",
        f"spec.{service}.backend cannot change once the tenant is placed (see status.placement.{service}); "
        "set it back to the recorded one (to move a PostgreSQL database, leave this field empty and run the "
        "migrate-database workflow; moving other services is not built yet)",
    )


# Rules on the whole object: the name must fit every backend's naming, and placement is sticky.
ROOT_RULES = [
    cel(
        "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "a Tenant name must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending "
        "with a letter or digit",
    ),
    cel(
        f"size(self.metadata.name) <= {names.MAX_TENANT_NAME}",
        f"a Tenant name has at most {names.MAX_TENANT_NAME} characters, so every backend identifier holds it "
        "whole (t_<name>_owner in PostgreSQL's 63 bytes, tenant-<name> as a namespace); names are never cut",
    ),
    *[_placement_rule(s) for s in PLACED_SERVICES],
]
