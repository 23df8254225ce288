"""Operator settings from the environment (the chart's ConfigMap sets them), read once at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Config", "load"]


@dataclass(frozen=True)
class Config:
    verify_interval: float = 60.0
    """Seconds between verify passes per tenant; each pass only reads unless it finds drift."""
    verify_jitter: float = 0.2
    """Fraction of the interval added at random to the first pass, so a fleet does not verify in step."""
    operator_namespace: str = "tenancy-system"
    """Where Backend admin Secrets live."""
    liveness: str = "http://127.0.0.1:8080/healthz"
    """kopf's liveness endpoint."""
    standalone: bool = True
    """No peering (one replica). The chart runs two replicas with peering."""
    peering_name: str = "tenancy-operator"
    """The ClusterKopfPeering the replicas share (the chart creates it)."""
    peering_lifetime: int = 12
    """Seconds a replica's peering record stays valid without a heartbeat: how long a standby waits
    before taking over from a leader that died (one that exits withdraws its record at once).
    Heartbeats come a few seconds before it runs out, so a shorter lifetime means more API writes."""
    retry_base: float = 2.0
    retry_max: float = 60.0
    reconcile_concurrency: int = 64
    """Tenant passes that converge at once (each waits its turn, first come first served, after the
    tenant's own lock); 0: no bound. See handlers/loop_slots.py."""
    tenant_secrets_role: str = ""
    """A ClusterRole granting Secrets access, which the operator binds to itself inside each tenant
    namespace only (the chart's least-privilege RBAC has no cluster-wide Secrets rule). Empty: no binding."""
    metrics_port: int = 0
    """Port of the /metrics endpoint; 0 serves none."""
    metrics_address: str = "0.0.0.0"
    """Address the /metrics endpoint binds: every address in a pod (the chart's Service scrapes the pod's
    IP); a process on a shared machine binds the loopback (`make operator-start`, the e2e operator)."""
    service_account: str = ""
    """The operator's own ServiceAccount name, in `operator_namespace`, the subject of that binding."""
    otlp_endpoint: str = ""
    """OTLP/HTTP receiver for traces (e.g. Jaeger's `http://jaeger:4318`); empty: no tracing."""
    audit_backend: str = ""
    """A postgres Backend holding the audit trail (handlers/audit_trail.py); empty: no trail."""
    audit_signer: str = ""
    """A vault Backend whose transit key signs the trail's heads (required with `audit_backend`)."""
    audit_database: str = "tenancy_audit"
    audit_sign_every: int = 100
    """Entries after which the head is signed at once."""
    audit_sign_interval: float = 300.0
    """Seconds between signing the head when entries came since the last signature."""
    audit_verify_interval: float = 3600.0
    """Seconds between full verifications of the audit chain (reads only; also at start)."""
    shards: int = 1
    """Processes the Tenants are split across (reconcile/sharding.py, docs/scale.md); 1: no sharding."""
    shard: int = 0
    """The shard this process owns, 0 <= shard < shards."""

    @property
    def sharded(self) -> bool:
        return self.shards > 1


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _count(name: str, default: int) -> int:
    value = _float(name, default)
    if value < 0 or value != int(value):
        raise ValueError(f"{name}={os.environ.get(name)!r}: a whole number >= 0 is needed")
    return int(value)


def load() -> Config:
    shards = int(_float("TENANCY_SHARDS", Config.shards))
    shard = int(_float("TENANCY_SHARD", Config.shard))
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"TENANCY_SHARD={shard} with TENANCY_SHARDS={shards}: the shard must be 0 to shards-1")
    return Config(
        verify_interval=_float("TENANCY_VERIFY_INTERVAL", Config.verify_interval),
        verify_jitter=_float("TENANCY_VERIFY_JITTER", Config.verify_jitter),
        operator_namespace=os.environ.get("TENANCY_NAMESPACE", Config.operator_namespace),
        liveness=os.environ.get("TENANCY_LIVENESS", Config.liveness),
        standalone=os.environ.get("TENANCY_STANDALONE", "true").lower() in ("1", "true", "yes"),
        peering_name=os.environ.get("TENANCY_PEERING_NAME") or Config.peering_name,
        peering_lifetime=int(_float("TENANCY_PEERING_LIFETIME", Config.peering_lifetime)),
        retry_base=_float("TENANCY_RETRY_BASE", Config.retry_base),
        retry_max=_float("TENANCY_RETRY_MAX", Config.retry_max),
        reconcile_concurrency=_count("TENANCY_RECONCILE_CONCURRENCY", Config.reconcile_concurrency),
        tenant_secrets_role=os.environ.get("TENANCY_TENANT_SECRETS_ROLE", ""),
        service_account=os.environ.get("TENANCY_SERVICE_ACCOUNT", ""),
        metrics_port=int(os.environ.get("TENANCY_METRICS_PORT") or 0),
        metrics_address=os.environ.get("TENANCY_METRICS_ADDRESS") or Config.metrics_address,
        otlp_endpoint=os.environ.get("TENANCY_OTLP_ENDPOINT", "").strip(),
        audit_backend=os.environ.get("TENANCY_AUDIT_BACKEND", ""),
        audit_signer=os.environ.get("TENANCY_AUDIT_SIGNER", ""),
        audit_database=os.environ.get("TENANCY_AUDIT_DATABASE") or Config.audit_database,
        audit_sign_every=int(_float("TENANCY_AUDIT_SIGN_EVERY", Config.audit_sign_every)),
        audit_sign_interval=_float("TENANCY_AUDIT_SIGN_INTERVAL", Config.audit_sign_interval),
        audit_verify_interval=_float("TENANCY_AUDIT_VERIFY_INTERVAL", Config.audit_verify_interval),
        shards=shards,
        shard=shard,
    )
