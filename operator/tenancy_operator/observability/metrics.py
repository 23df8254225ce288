"""Prometheus metrics of the operator itself: conditions, backend health, reconcile passes, repairs.

Served on TENANCY_METRICS_PORT (the chart's metrics Service scrapes it); the chart's PrometheusRule
alerts on `tenancy_tenant_condition` and `tenancy_backend_ready`. Labels carry names only, never a
credential.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = ["serve", "record_tenant", "forget_tenant", "record_backend", "forget_backend", "RECONCILE_SECONDS", "RECONCILES", "REPAIRS",
           "REPEATED_REPAIRS", "ROTATIONS", "CACHE_EVICTIONS", "record_cache", "forget_cache", "WORKFLOW_RUNS",
           "ISOLATION_ALLOWED"]

log = logging.getLogger(__name__)

TENANT_CONDITION = Gauge("tenancy_tenant_condition", "1 for the current status of each tenant condition",
                         ["tenant", "type", "status"])
TENANT_PHASE = Gauge("tenancy_tenant_phase", "1 for the tenant's current phase", ["tenant", "phase"])
BACKEND_READY = Gauge("tenancy_backend_ready", "1 while the Backend answers its health probe", ["backend", "type"])
RECONCILES = Counter("tenancy_reconcile_total", "Reconcile passes by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram("tenancy_reconcile_seconds", "Duration of one reconcile pass", ["kind"],
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REPAIRS = Counter("tenancy_drift_repairs_total", "Objects the verify pass had to put back", ["tenant"])
ROTATIONS = Counter("tenancy_credential_rotations_total",
                    "Credential rotations completed, by reason (requested, scheduled, secret-deleted, password-removed)",
                    ["tenant", "reason"])
REPEATED_REPAIRS = Counter("tenancy_repeated_repairs_total",
                           "Objects written again on the very next pass of the same generation: a comparison "
                           "defect (stale cache, server normalization), not drift", ["tenant"])

CACHE_USAGE = Gauge("tenancy_cache_usage_bytes", "Estimated Redis memory of the tenant's keys (sampled)", ["tenant"])
CACHE_BUDGET = Gauge("tenancy_cache_budget_bytes", "The tenant's CachePolicy memoryBudget", ["tenant"])
CACHE_ERROR = Gauge("tenancy_cache_usage_relative_error",
                    "Half-width of the usage estimate's 95% interval, as a fraction of it", ["tenant"])
CACHE_PASS_SECONDS = Gauge("tenancy_cache_pass_seconds", "Duration of the last budget pass (measure and evict)",
                           ["tenant"])
CACHE_EVICTIONS = Counter("tenancy_cache_evictions_total", "Keys of the tenant the operator evicted over budget",
                          ["tenant"])
WORKFLOW_RUNS = Counter("tenancy_workflow_runs_total", "WorkflowRuns finished, by workflow and final phase",
                        ["workflow", "phase"])
ISOLATION_ALLOWED = Gauge("tenancy_isolation_probes_allowed",
                          "Probes of the tenant's last verify-isolation run that a server did not refuse (0 is good)",
                          ["tenant"])

_STATUSES = ("True", "False", "Unknown")
_served = False


def serve(port: int | None, addr: str = "0.0.0.0") -> None:
    """Start the /metrics endpoint once; a missing port means no endpoint (the gauges still count)."""
    global _served
    if _served or not port:
        return
    _served = True
    try:
        start_http_server(int(port), addr=addr)
        log.info("metrics on %s:%s/metrics", addr, port)
    except OSError as exc:
        log.warning("metrics endpoint on port %s not started: %s", port, exc)


def record_tenant(tenant: str, conditions: list[dict[str, Any]], phase: str) -> None:
    for c in conditions:
        for status in _STATUSES:
            TENANT_CONDITION.labels(tenant, c.get("type", ""), status).set(1 if c.get("status") == status else 0)
    for known in ("Ready", "Provisioning", "Degraded", "Suspended", "Archived", "Stalled"):
        TENANT_PHASE.labels(tenant, known).set(1 if phase == known else 0)


def forget_tenant(tenant: str) -> None:
    forget_cache(tenant)
    for gauge in (TENANT_CONDITION, TENANT_PHASE):
        for labels in [key for key in list(gauge._metrics) if key[0] == tenant]:  # noqa: SLF001
            gauge.remove(*labels)


def record_cache(tenant: str, usage: int, budget: int, error: float, seconds: float) -> None:
    CACHE_USAGE.labels(tenant).set(usage)
    CACHE_BUDGET.labels(tenant).set(budget)
    CACHE_ERROR.labels(tenant).set(error)
    CACHE_PASS_SECONDS.labels(tenant).set(seconds)


def forget_cache(tenant: str) -> None:
    for metric in (CACHE_USAGE, CACHE_BUDGET, CACHE_ERROR, CACHE_PASS_SECONDS, CACHE_EVICTIONS):
        try:
            metric.remove(tenant)
        except KeyError:
            pass


def record_backend(backend: str, type_: str, ready: bool) -> None:
    BACKEND_READY.labels(backend, type_).set(1 if ready else 0)


def forget_backend(backend: str, type_: str) -> None:
    try:
        BACKEND_READY.remove(backend, type_)
    except KeyError:
        pass
