"""Prometheus metrics of the operator itself: conditions, backend health, reconcile passes, repairs.

Served on TENANCY_METRICS_PORT (the chart's metrics Service scrapes it); the chart's PrometheusRule
alerts on them (charts/tenancy-operator/files/alerts.rules.yaml). Labels carry names only, never a
credential, and only bounded values: tenant, backend and rule names, and fixed sets the code names
(handler, operation, error, part, reason, resource). docs/observability.md lists every metric and
the series count per tenant; an e2e test holds that table to what /metrics serves.

The tenant-labelled families are not prometheus_client labelled metrics: tenant_series.py keeps one
record per tenant and builds their samples at scrape time (a labelled child per series cost ~36 KB
per tenant); `forget_tenant` removes every series of a tenant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import tenant_series

__all__ = ["serve", "record_tenant", "forget_tenant", "record_backend", "forget_backend", "RECONCILE_SECONDS", "RECONCILES",
           "count_repairs", "count_repeated_repairs", "count_rotation", "count_evictions", "record_cache", "forget_cache",
           "WORKFLOW_RUNS", "record_isolation", "handler_run", "backend_call", "record_credentials", "record_quota",
           "record_database_size", "watch_circuits", "VERIFY_PASSES", "PART_FAILURES", "AUDIT_CHAIN_VERIFIED"]

log = logging.getLogger(__name__)

# No `*_created` series: a second series per counter and histogram that no rule or dashboard reads.
disable_created_metrics()


def _per_tenant(name: str, documentation: str, kind: str, labels: list[str],
                read: tenant_series.Read) -> tenant_series.Family:
    """A tenant-labelled family read from tenant_series (labels: those after `tenant`), registered here."""
    family = tenant_series.Family(name, documentation, kind, labels, read)
    REGISTRY.register(family)
    return family


# Families are registered in the order /metrics has always listed them; tenant ones through _per_tenant.
TENANT_CONDITION = _per_tenant("tenancy_tenant_condition", "1 for the current status of each tenant condition",
                               "gauge", ["type", "status"], tenant_series.conditions)
TENANT_PHASE = _per_tenant("tenancy_tenant_phase", "1 for the tenant's current phase", "gauge", ["phase"],
                           tenant_series.phase)
BACKEND_READY = Gauge("tenancy_backend_ready", "1 while the Backend answers its health probe", ["backend", "type"])
RECONCILES = Counter("tenancy_reconcile_total", "Reconcile passes by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram("tenancy_reconcile_seconds", "Duration of one reconcile pass", ["kind"],
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REPAIRS = _per_tenant("tenancy_drift_repairs_total", "Objects the verify pass had to put back", "counter", [],
                      tenant_series.scalar("repairs"))
ROTATIONS = _per_tenant("tenancy_credential_rotations_total",
                        "Credential rotations completed, by reason (requested, scheduled, secret-deleted, password-removed, password-edited)",
                        "counter", ["reason"], tenant_series.rotations)
REPEATED_REPAIRS = _per_tenant("tenancy_repeated_repairs_total",
                               "Objects written again on the very next pass of the same generation: a comparison "
                               "defect (stale cache, server normalization), not drift", "counter", [],
                               tenant_series.scalar("repeated_repairs"))

CACHE_USAGE = _per_tenant("tenancy_cache_usage_bytes", "Estimated Redis memory of the tenant's keys (sampled)", "gauge",
                          [], tenant_series.scalar("cache_usage"))
CACHE_BUDGET = _per_tenant("tenancy_cache_budget_bytes", "The tenant's CachePolicy memoryBudget", "gauge", [],
                           tenant_series.scalar("cache_budget"))
CACHE_ERROR = _per_tenant("tenancy_cache_usage_relative_error",
                          "Half-width of the usage estimate's 95% interval, as a fraction of it", "gauge", [],
                          tenant_series.scalar("cache_error"))
CACHE_PASS_SECONDS = _per_tenant("tenancy_cache_pass_seconds", "Duration of the last budget pass (measure and evict)",
                                 "gauge", [], tenant_series.scalar("cache_pass_seconds"))
CACHE_EVICTIONS = _per_tenant("tenancy_cache_evictions_total", "Keys of the tenant the operator evicted over budget",
                              "counter", [], tenant_series.scalar("cache_evictions"))
WORKFLOW_RUNS = Counter("tenancy_workflow_runs_total", "WorkflowRuns finished, by workflow and final phase",
                        ["workflow", "phase"])
ISOLATION_ALLOWED = _per_tenant("tenancy_isolation_probes_allowed",
                                "Probes of the tenant's last verify-isolation run that a server did not refuse (0 is good)",
                                "gauge", [], tenant_series.scalar("isolation_allowed"))

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HANDLER_SECONDS = Histogram("tenancy_handler_seconds", "Duration of one run of a kopf handler, by handler",
                            ["handler"], buckets=_BUCKETS)
HANDLER_ERRORS = Counter("tenancy_handler_errors_total",
                         "Handler runs that raised, by handler and error (TemporaryError: a retry is scheduled)",
                         ["handler", "error"])
PART_FAILURES = Counter("tenancy_reconcile_part_failures_total",
                        "Parts (conditions) that failed in a Tenant pass, by part and reason", ["part", "reason"])
VERIFY_PASSES = Counter("tenancy_verify_passes_total",
                        "Periodic verify passes by result: clean (read only), repaired (drift put back), failed, skipped "
                        "(another pass of the tenant ran, or began less than 0.9 of an interval ago), deferred (every pass slot was "
                        "taken; at most twice in a row)",
                        ["result"])
BACKEND_CALL_SECONDS = Histogram("tenancy_backend_call_seconds", "Duration of one call to a backend adapter",
                                 ["backend", "type", "operation"], buckets=_BUCKETS)
BACKEND_CALL_ERRORS = Counter("tenancy_backend_call_errors_total",
                              "Backend adapter calls that failed, by error (unavailable, refused, circuit_open, "
                              "owned, invalid, unexpected)", ["backend", "type", "operation", "error"])
BACKEND_PROBE_SECONDS = Gauge("tenancy_backend_probe_seconds", "Latency of the Backend's last health probe",
                              ["backend", "type"])
CREDENTIAL_ROTATED = _per_tenant("tenancy_credential_rotated_timestamp_seconds",
                                 "When the tenant's current credential version was made (age: time() - this)", "gauge",
                                 [], tenant_series.scalar("credential_rotated"))
CREDENTIAL_NEXT = _per_tenant("tenancy_credential_next_rotation_timestamp_seconds",
                              "When the tenant's credentials are next due for rotation (spec.credentials.rotateEvery)",
                              "gauge", [], tenant_series.scalar("credential_next"))
CREDENTIAL_VERSION = _per_tenant("tenancy_credential_version", "The tenant's current credential version", "gauge", [],
                                 tenant_series.scalar("credential_version"))
QUOTA_USED = _per_tenant("tenancy_tenant_quota_used", "ResourceQuota usage in the tenant namespace (cores, bytes, count)",
                         "gauge", ["resource"], tenant_series.quota("quota_used"))
QUOTA_HARD = _per_tenant("tenancy_tenant_quota_hard", "ResourceQuota hard limit in the tenant namespace", "gauge",
                         ["resource"], tenant_series.quota("quota_hard"))
DATABASE_BYTES = _per_tenant("tenancy_tenant_database_bytes",
                             "Size of the tenant's PostgreSQL database (pg_database_size)", "gauge", [],
                             tenant_series.scalar("database_bytes"))


class _UnsetGauge(Collector):
    """An unlabelled gauge with no sample until something sets it.

    `tenancy_audit_chain_verified` is one: a plain Gauge reads 0 from the start and would fire
    TenancyAuditChainBroken on every operator without the audit trail (or before its first check).
    """

    def __init__(self, name: str, documentation: str):
        self.name, self.documentation = name, documentation
        self.value: float | None = None

    def set(self, value: float) -> None:
        self.value = value

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.value is not None:
            yield GaugeMetricFamily(self.name, self.documentation, value=self.value)


AUDIT_CHAIN_VERIFIED = _UnsetGauge(
    "tenancy_audit_chain_verified",
    "1 while the audit chain in the database extends the signed anchor in OpenBao and still holds the newest head "
    "the operator knew on it (checked at start and before each signature), 0 once it does not (a rewrite, or a cut "
    "of the unsigned tail): the operator then signs nothing more (docs/audit.md)")
REGISTRY.register(AUDIT_CHAIN_VERIFIED)

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
    """Three series per condition type (1 for its status, 0 for the other two) and six for the phase.

    A condition type missing from `conditions` keeps the series it had.
    """
    tenant_series.set_conditions(tenant, ((str(c.get("type", "")), c.get("status")) for c in conditions))
    tenant_series.set_phase(tenant, phase)


def forget_tenant(tenant: str) -> None:
    """Every series labelled with the tenant goes (its autoscaling rules' series: autoscaling_part.forget)."""
    tenant_series.forget(tenant)


def count_repairs(tenant: str, objects: int) -> None:
    tenant_series.add(tenant, "repairs", objects)


def count_repeated_repairs(tenant: str, objects: int) -> None:
    tenant_series.add(tenant, "repeated_repairs", objects)


def count_rotation(tenant: str, reason: str) -> None:
    tenant_series.add_rotation(tenant, reason)


def count_evictions(tenant: str, keys: int) -> None:
    tenant_series.add(tenant, "cache_evictions", keys)


def record_isolation(tenant: str, allowed: int) -> None:
    """Probes of the tenant's last verify-isolation run that a server did not refuse."""
    tenant_series.set_values(tenant, isolation_allowed=allowed)


@contextmanager
def handler_run(handler: str) -> Iterator[None]:
    """Time one handler run and count it as an error if it raises (the exception goes on)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        HANDLER_ERRORS.labels(handler, type(exc).__name__).inc()
        raise
    finally:
        HANDLER_SECONDS.labels(handler).observe(time.perf_counter() - started)


class BackendCall:
    """One adapter call being timed; `fail(error)` names how it failed (one of the documented words)."""

    def __init__(self, backend: str, type_: str, operation: str):
        self.labels = (backend, type_, operation)
        self.error: str | None = None
        self.seconds = 0.0

    def fail(self, error: str) -> None:
        self.error = error


@contextmanager
def backend_call(backend: str, type_: str, operation: str) -> Iterator[BackendCall]:
    """Time a call to a backend; an exception that escapes counts as `unexpected` unless named."""
    call = BackendCall(backend, type_, operation)
    started = time.perf_counter()
    try:
        yield call
    except BaseException:
        call.error = call.error or "unexpected"
        raise
    finally:
        call.seconds = time.perf_counter() - started
        BACKEND_CALL_SECONDS.labels(*call.labels).observe(call.seconds)
        if call.error:
            BACKEND_CALL_ERRORS.labels(*call.labels, call.error).inc()


def _timestamp(iso: str | None) -> float | None:
    if not iso:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def record_credentials(tenant: str, status: dict[str, Any] | None) -> None:
    """From the Tenant's status.credentials: version, rotatedAt, nextRotationAt."""
    status = status or {}
    values = {}
    for field, value in (("credential_rotated", _timestamp(status.get("rotatedAt"))),
                         ("credential_next", _timestamp(status.get("nextRotationAt"))),
                         ("credential_version", status.get("version"))):
        if value is not None:
            try:
                values[field] = float(value)
            except (TypeError, ValueError):
                pass
    if values:
        tenant_series.set_values(tenant, **values)



def _quantity(text: Any) -> float | None:
    from decimal import Decimal, InvalidOperation

    suffixes = {"m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
                "T": Decimal(10**12), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
                "Ti": Decimal(2**40)}
    s = str(text)
    for suffix in sorted(suffixes, key=len, reverse=True):
        if s.endswith(suffix):
            try:
                return float(Decimal(s[: -len(suffix)]) * suffixes[suffix])
            except InvalidOperation:
                return None
    try:
        return float(Decimal(s))
    except InvalidOperation:
        return None


def record_quota(tenant: str, quota_status: dict[str, Any] | None) -> None:
    """From the tenant namespace's ResourceQuota status (`hard`, `used`), the bounded set of keys in
    tenant_series.QUOTA_RESOURCES."""
    quota_status = quota_status or {}
    for field, values in (("quota_hard", quota_status.get("hard") or {}), ("quota_used", quota_status.get("used") or {})):
        parsed = {resource: _quantity(values[resource]) for resource in tenant_series.QUOTA_RESOURCES
                  if resource in values}
        known = {resource: value for resource, value in parsed.items() if value is not None}
        if known:
            tenant_series.set_quota(tenant, field, known)


def record_database_size(tenant: str, size: int | None) -> None:
    if size is not None:
        tenant_series.set_values(tenant, database_bytes=size)


class _Circuits(Collector):
    """Circuit-breaker state read at scrape time (a breaker's cool-down ends without any call)."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[str, bool, int]]] = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily("tenancy_backend_circuit_open",
                                  "1 while the Backend's circuit breaker is open (calls fail fast)", labels=["backend"])
        failures = GaugeMetricFamily("tenancy_backend_circuit_failures",
                                     "Consecutive failed calls the Backend's circuit breaker counts", labels=["backend"])
        for backend, is_open, count in self.source():
            state.add_metric([backend], 1.0 if is_open else 0.0)
            failures.add_metric([backend], float(count))
        yield state
        yield failures


_CIRCUITS = _Circuits()
REGISTRY.register(_CIRCUITS)


def watch_circuits(source: Callable[[], Iterable[tuple[str, bool, int]]]) -> None:
    """Where the circuit state comes from: (backend, open, consecutive failures) per breaker."""
    _CIRCUITS.source = source


def record_cache(tenant: str, usage: int, budget: int, error: float, seconds: float) -> None:
    tenant_series.set_values(tenant, cache_usage=usage, cache_budget=budget, cache_error=error,
                             cache_pass_seconds=seconds)


def forget_cache(tenant: str) -> None:
    """The tenant's cache series go (it has no CachePolicy any more)."""
    tenant_series.clear(tenant, "cache_usage", "cache_budget", "cache_error", "cache_pass_seconds", "cache_evictions")


def record_backend(backend: str, type_: str, ready: bool) -> None:
    BACKEND_READY.labels(backend, type_).set(1 if ready else 0)


def forget_backend(backend: str, type_: str) -> None:
    try:
        BACKEND_READY.remove(backend, type_)
    except KeyError:
        pass
