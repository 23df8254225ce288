"""The `Tenant` kind's status: what the operator found and did, per part, in kstatus form.

Only the operator writes it (tenants cannot write status), so it is authoritative where the objects
it made carry only informative copies (the credentials Secret's annotations). Split from
:mod:`.tenant`, which holds the spec and the rules on the whole object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import Conditions, Spec

__all__ = [
    "ArchiveStatus",
    "AutoscalingRuleStatus",
    "CredentialsState",
    "CredentialsStatus",
    "Placement",
    "RestoreStatus",
    "TenantStatus",
]


class Placement(Spec):
    """Which Backend serves each service; written once, changed only by a migrate-database run (postgres)."""

    postgres: str | None = None
    redis: str | None = None
    mongodb: str | None = None
    search: str | None = None
    vault: str | None = None


class CredentialsState(Spec):
    """One credential version as the operator knows it. Authoritative: tenants cannot write status,
    while the Secret's annotations are only informative copies."""

    version: int = 0
    """Incremented on every rotation, never reset; workloads that opted in carry it in a pod-template annotation."""
    slot: Literal["a", "b"] | None = None
    """The PostgreSQL login role slot this version uses (role `t_<name>_a` or `_b`); rotations alternate."""
    rotated_at: str | None = None
    """When this version was made (RFC 3339, UTC)."""
    rotate_handled: str | None = None
    """The last `tenancy.dev/rotate` annotation value acted on."""
    redis_sha256: str | None = None
    """SHA-256 of this version's Redis password (never the password): keeps it accepted through the
    next overlap even when the Secret is gone."""
    previous_redis_sha256: str | None = None
    """SHA-256 of the previous version's Redis password, accepted until the overlap ends."""
    previous_open: bool | None = None
    """The previous version still works (its overlap has not been closed yet)."""
    reason: str | None = None
    """Why this version was made: first credentials, requested, scheduled, secret-deleted,
    password-removed, password-edited, service-added."""
    services: list[str] | None = None
    """The services holding a password in this version."""
    password_sha256: dict[str, str] | None = None
    """Service -> SHA-256 of the password this version gave it (never the password). A password edited
    in the Secret does not match: it is never applied, the credentials rotate (reason password-edited)."""


class MigrationHold(Spec):
    """A migrate-database run holds the tenant's database: the Tenant handler leaves the database, the
    credentials Secret and the placement alone until the run clears it."""

    run: str
    """The WorkflowRun holding the tenant."""
    target_backend: str
    """Where the database is going."""
    since: str | None = None
    """When the hold (and the write freeze) began (RFC 3339, UTC)."""


class CredentialsStatus(CredentialsState):
    active_role: str | None = None
    """The PostgreSQL login role (`_a` or `_b`) the Secret currently names."""
    next_rotation_at: str | None = None
    """When the next scheduled rotation is due: rotatedAt + spec.credentials.rotateEvery (RFC 3339, UTC)."""
    secret_name: str | None = None
    """The Secret in the tenant namespace that apps read (`tenant-credentials`)."""
    pending: CredentialsState | None = None
    """A version staged (passwords in `tenant-credentials-next`) but not yet published; a crash resumes it."""


class SuspensionStatus(Spec):
    by: Literal["spec", "inactivity"]
    """Who suspended: spec.state, or the operator for inactivity (annotation tenancy.dev/suspended-for-inactivity)."""
    since: str | None = None
    """When inactivity suspended the tenant."""
    logins_revoked: bool = True
    """False while the LifecyclePolicy's suspendRevokesLogins: false keeps the backend logins working."""
    workloads: dict[str, int] = Field(default_factory=dict)
    """Replica counts resume brings back, per `Kind/name` (also on each workload, annotation
    tenancy.dev/suspended-replicas)."""


class ActivityStatus(Spec):
    last_seen: str | None = None
    """When the tenant was last seen in use (only while its LifecyclePolicy sets inactivitySuspendAfter); on
    the first pass with that setting, when the clock started."""
    pg_sessions: int | None = None
    """pg_stat_database.sessions of the tenant database at lastSeen: a change is new use."""


class CacheEviction(Spec):
    keys: int = 0
    bytes: int = 0
    seconds: float = 0.0
    """How long the whole pass (measure and evict) took."""
    at: str | None = None


class CacheStatus(Spec):
    """The CachePolicy's budget on the shared Redis (also in the CacheReady message)."""

    policy: str
    budget_bytes: int
    usage_bytes: int
    """Estimated by sampling, rounded to 1% of the budget (so an idle tenant's status does not move)."""
    relative_error: float = 0.0
    """Half-width of the estimate's 95% interval, as a fraction of the usage."""
    evicted_keys: int = 0
    """Keys of this tenant the operator evicted, in total."""
    last_eviction: CacheEviction | None = None


class ArchiveStatus(Spec):
    id: str | None = None
    location: str | None = None
    """Where the archive folder is (`dir://<path>/<id>`)."""
    created_at: str | None = None
    expires_at: str | None = None
    """createdAt + the LifecyclePolicy's retention at the time of the export; the purge uses the policy's
    current retention, so a retention changed since moves the purge, not this field."""
    bytes: int | None = None
    state: Literal["Exporting", "Exported", "Released", "Superseded"] | None = None
    """Exporting: under way (a rerun adopts it if it was published); Exported: complete, live data may
    still be there; Released: live data deleted; Superseded: the tenant is Active again."""
    bytes_done: int | None = None
    """Progress of the export: plain bytes dumped so far (written at most every few seconds while it runs)."""
    bytes_total: int | None = None
    """Expected plain bytes of the export (an estimate while a part is dumped; exact when it is done)."""


class RestoreStatus(Spec):
    archive: str | None = None
    state: Literal["Loading", "Done"] | None = None
    """Loading: writes began (a rerun redoes them); Done: finished, never run again for this archive."""
    started_at: str | None = None
    restored_at: str | None = None
    seconds: float | None = None
    bytes_done: int | None = None
    """Progress of the restore: bytes verified plus bytes loaded (written at most every few seconds)."""
    bytes_total: int | None = None
    """Twice the archive's plain bytes (each is verified, then loaded)."""


class AutoscalingRuleStatus(Spec):
    """One autoscaling rule as the last pass found it (the forecast's numbers to 3 significant digits; a
    forecast that moved by less than the rule's tolerance keeps the numbers published before)."""

    model_config = Spec.model_config | {"extra": "allow"}

    name: str
    """The rule (spec.autoscaling[].name)."""
    mode: str | None = None
    """Observe, Floor or ExternalMetric, as the rule asks."""
    model: str | None = None
    """The model that forecasts: `quantile-gbm`, `holt-winters` or a blend of both with its median/upper weights."""
    last_refit: str | None = None
    """When the models were last refit or their backtest re-scored (RFC 3339, UTC)."""
    backtest: dict[str, Any] | None = None
    """The last refit's rolling-origin backtest of that model: forecasts (count), pinball and
    pinballPersistence (upper quantile's loss, and persistence's), mae and maePersistence, skill
    (1 - pinball / persistence's), risePrecision."""
    gate: dict[str, Any] | None = None
    """`active`: whether the forecast may act (the predictability gate passed); `reason`: why, or why not."""
    forecast: dict[str, Any] | None = None
    """The newest forecast of the peak demand over the rule's window: peak (median), upper (the quantile
    lifts are sized by), recent (the recent maximum a reactive HPA sees), at (when the peak comes)."""
    anomaly_score: float | None = None
    """In [0, 1]: how far the newest realised window surprised both the model and persistence."""
    floor: int | None = None
    """The minReplicas the rule asks of its HPA now."""
    lift_until: str | None = None
    """While a lift is in force: when it is released (after the predicted peak)."""
    scaled_by: list[str] | None = None
    """Other scalers of the rule's target (another HPA, a KEDA ScaledObject, an earlier rule): while there
    is one, the rule keeps no HPA (AutoscalingReady False, TargetAlreadyScaled)."""
    hpa_conditions: list[dict[str, Any]] | None = None
    """The HPA controller's False ScalingActive / AbleToScale conditions on the rule's HPA (type, reason, message)."""


class TenantStatus(Spec):
    model_config = Spec.model_config | {"extra": "allow"}

    observed_generation: int | None = None
    """The metadata.generation the status as a whole describes."""
    ready_generation: int | None = None
    """The latest generation the tenant was Ready at; before that, writes provision rather than repair."""
    phase: str | None = None
    """Provisioning, Ready, Degraded, Suspended, Archived, Stalled or Terminating."""
    conditions: Conditions
    """Ready, Reconciling, Stalled and one per part (NamespaceReady, DatabaseReady, ...)."""
    namespace: str | None = None
    """The tenant namespace."""
    backends: str | None = None
    """Summary of placed backends for the printer column."""
    placement: Placement = Field(default_factory=Placement)
    """The Backend each enabled service was placed on."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """Non-secret endpoints and names each backend gave (database, key prefix, KV path...)."""
    credentials: CredentialsStatus = Field(default_factory=CredentialsStatus)
    """Credential version and rotation times."""
    suspension: SuspensionStatus | None = None
    """While suspended: by whom, whether logins are revoked, the workloads' remembered replica counts."""
    activity: ActivityStatus | None = None
    """The inactivity clock (LifecyclePolicy inactivitySuspendAfter)."""
    cache: CacheStatus | None = None
    """Usage against the CachePolicy's memory budget, and what was evicted."""
    archive: ArchiveStatus | None = None
    """The latest archive of this tenant (spec.state Archived, or reclaim Archive on delete)."""
    restore: RestoreStatus | None = None
    """The restore spec.restoreFrom asked for."""
    migration: MigrationHold | None = None
    """Set while a migrate-database run holds the database (writes frozen); absent otherwise."""
    autoscaling: list[AutoscalingRuleStatus] | None = None
    """One entry per spec.autoscaling rule: its model, gate, forecast and floor (AutoscalingReady sums them up)."""
