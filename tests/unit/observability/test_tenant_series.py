"""The tenant-labelled series (tenant_series.py): /metrics as the labelled prometheus_client metrics served it.

EXPECTED was captured from the implementation before tenant_series.py (commit dc4655f, one labelled
child per series) running `_scenario` through the same public functions (the handlers' calls then
wrote `REPAIRS.labels(t).inc(n)` and so on): every `tenancy_*` HELP and TYPE line in registry order,
and every sample of the three tenants, byte for byte. Sample order within a family is the old one
here; in general the new code groups a family's samples by tenant (Prometheus reads no meaning into
sample order).
"""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from tenancy_operator.observability import metrics, tenant_series

from bench.scale import metrics_memory

TENANTS = ("g-alpha", "g-beta", "g-gamma")


def _scenario() -> None:
    a, b, c = TENANTS
    metrics.record_tenant(a, [{"type": "Ready", "status": "False"}, {"type": "DatabaseReady", "status": "True"},
                              {"type": "CacheReady", "status": "Unknown"}, {"type": "Odd", "status": "weird"},
                              {"status": "True"}], "Degraded")
    metrics.record_tenant(b, [{"type": "Ready", "status": "True"}, {"type": "DatabaseReady", "status": "True"}], "Ready")
    metrics.record_tenant(a, [{"type": "Ready", "status": "True"}, {"type": "DatabaseReady", "status": "True"},
                              {"type": "CacheReady", "status": "True"}], "Ready")  # "Odd" and "" keep their series
    metrics.record_tenant(c, [{"type": "Ready", "status": "Unknown"}], "NoSuchPhase")
    metrics.record_credentials(a, {"version": 3, "rotatedAt": "2026-01-01T00:00:00Z",
                                   "nextRotationAt": "2026-01-31T00:00:00Z"})
    metrics.record_credentials(b, {"version": "x", "rotatedAt": "not a time"})
    metrics.record_credentials(b, {"version": 2})
    metrics.record_credentials(c, None)
    metrics.record_quota(a, {"hard": {"requests.cpu": "2", "requests.memory": "1Gi", "requests.storage": "10Gi",
                                      "pods": "5", "limits.cpu": "4", "limits.memory": "2Gi", "count/secrets": "9"},
                             "used": {"requests.cpu": "250m", "pods": "2"}})
    metrics.record_quota(b, {"hard": {"pods": "10", "requests.memory": "bad"}})
    metrics.record_quota(a, {"used": {"pods": "3", "limits.memory": "512Mi"}})
    metrics.record_quota(c, None)
    metrics.record_database_size(a, 7_512_345)
    metrics.record_database_size(b, None)
    metrics.record_database_size(c, 0)
    metrics.record_cache(a, 1000, 2048, 0.05, 0.0125)
    metrics.record_cache(b, 10, 20, 0.5, 0.001)
    metrics.forget_cache(b)
    metrics.count_evictions(a, 0)
    metrics.count_evictions(a, 7)
    metrics.count_repairs(a, 2)
    metrics.count_repairs(a, 1)
    metrics.count_repeated_repairs(b, 1)
    metrics.count_rotation(a, "scheduled")
    metrics.count_rotation(a, "requested")
    metrics.count_rotation(a, "scheduled")
    metrics.count_rotation(b, "secret-deleted")
    metrics.record_isolation(a, 0)
    metrics.record_isolation(b, 2)


EXPECTED = """\
# HELP tenancy_tenant_condition 1 for the current status of each tenant condition
# TYPE tenancy_tenant_condition gauge
tenancy_tenant_condition{status="True",tenant="g-alpha",type="Ready"} 1.0
tenancy_tenant_condition{status="False",tenant="g-alpha",type="Ready"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-alpha",type="Ready"} 0.0
tenancy_tenant_condition{status="True",tenant="g-alpha",type="DatabaseReady"} 1.0
tenancy_tenant_condition{status="False",tenant="g-alpha",type="DatabaseReady"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-alpha",type="DatabaseReady"} 0.0
tenancy_tenant_condition{status="True",tenant="g-alpha",type="CacheReady"} 1.0
tenancy_tenant_condition{status="False",tenant="g-alpha",type="CacheReady"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-alpha",type="CacheReady"} 0.0
tenancy_tenant_condition{status="True",tenant="g-alpha",type="Odd"} 0.0
tenancy_tenant_condition{status="False",tenant="g-alpha",type="Odd"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-alpha",type="Odd"} 0.0
tenancy_tenant_condition{status="True",tenant="g-alpha",type=""} 1.0
tenancy_tenant_condition{status="False",tenant="g-alpha",type=""} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-alpha",type=""} 0.0
tenancy_tenant_condition{status="True",tenant="g-beta",type="Ready"} 1.0
tenancy_tenant_condition{status="False",tenant="g-beta",type="Ready"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-beta",type="Ready"} 0.0
tenancy_tenant_condition{status="True",tenant="g-beta",type="DatabaseReady"} 1.0
tenancy_tenant_condition{status="False",tenant="g-beta",type="DatabaseReady"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-beta",type="DatabaseReady"} 0.0
tenancy_tenant_condition{status="True",tenant="g-gamma",type="Ready"} 0.0
tenancy_tenant_condition{status="False",tenant="g-gamma",type="Ready"} 0.0
tenancy_tenant_condition{status="Unknown",tenant="g-gamma",type="Ready"} 1.0
# HELP tenancy_tenant_phase 1 for the tenant's current phase
# TYPE tenancy_tenant_phase gauge
tenancy_tenant_phase{phase="Ready",tenant="g-alpha"} 1.0
tenancy_tenant_phase{phase="Provisioning",tenant="g-alpha"} 0.0
tenancy_tenant_phase{phase="Degraded",tenant="g-alpha"} 0.0
tenancy_tenant_phase{phase="Suspended",tenant="g-alpha"} 0.0
tenancy_tenant_phase{phase="Archived",tenant="g-alpha"} 0.0
tenancy_tenant_phase{phase="Stalled",tenant="g-alpha"} 0.0
tenancy_tenant_phase{phase="Ready",tenant="g-beta"} 1.0
tenancy_tenant_phase{phase="Provisioning",tenant="g-beta"} 0.0
tenancy_tenant_phase{phase="Degraded",tenant="g-beta"} 0.0
tenancy_tenant_phase{phase="Suspended",tenant="g-beta"} 0.0
tenancy_tenant_phase{phase="Archived",tenant="g-beta"} 0.0
tenancy_tenant_phase{phase="Stalled",tenant="g-beta"} 0.0
tenancy_tenant_phase{phase="Ready",tenant="g-gamma"} 0.0
tenancy_tenant_phase{phase="Provisioning",tenant="g-gamma"} 0.0
tenancy_tenant_phase{phase="Degraded",tenant="g-gamma"} 0.0
tenancy_tenant_phase{phase="Suspended",tenant="g-gamma"} 0.0
tenancy_tenant_phase{phase="Archived",tenant="g-gamma"} 0.0
tenancy_tenant_phase{phase="Stalled",tenant="g-gamma"} 0.0
# HELP tenancy_backend_ready 1 while the Backend answers its health probe
# TYPE tenancy_backend_ready gauge
# HELP tenancy_reconcile_total Reconcile passes by kind and result
# TYPE tenancy_reconcile_total counter
# HELP tenancy_reconcile_seconds Duration of one reconcile pass
# TYPE tenancy_reconcile_seconds histogram
# HELP tenancy_drift_repairs_total Objects the verify pass had to put back
# TYPE tenancy_drift_repairs_total counter
tenancy_drift_repairs_total{tenant="g-alpha"} 3.0
# HELP tenancy_credential_rotations_total Credential rotations completed, by reason (requested, scheduled, secret-deleted, password-removed, password-edited)
# TYPE tenancy_credential_rotations_total counter
tenancy_credential_rotations_total{reason="scheduled",tenant="g-alpha"} 2.0
tenancy_credential_rotations_total{reason="requested",tenant="g-alpha"} 1.0
tenancy_credential_rotations_total{reason="secret-deleted",tenant="g-beta"} 1.0
# HELP tenancy_repeated_repairs_total Objects written again on the very next pass of the same generation: a comparison defect (stale cache, server normalization), not drift
# TYPE tenancy_repeated_repairs_total counter
tenancy_repeated_repairs_total{tenant="g-beta"} 1.0
# HELP tenancy_cache_usage_bytes Estimated Redis memory of the tenant's keys (sampled)
# TYPE tenancy_cache_usage_bytes gauge
tenancy_cache_usage_bytes{tenant="g-alpha"} 1000.0
# HELP tenancy_cache_budget_bytes The tenant's CachePolicy memoryBudget
# TYPE tenancy_cache_budget_bytes gauge
tenancy_cache_budget_bytes{tenant="g-alpha"} 2048.0
# HELP tenancy_cache_usage_relative_error Half-width of the usage estimate's 95% interval, as a fraction of it
# TYPE tenancy_cache_usage_relative_error gauge
tenancy_cache_usage_relative_error{tenant="g-alpha"} 0.05
# HELP tenancy_cache_pass_seconds Duration of the last budget pass (measure and evict)
# TYPE tenancy_cache_pass_seconds gauge
tenancy_cache_pass_seconds{tenant="g-alpha"} 0.0125
# HELP tenancy_cache_evictions_total Keys of the tenant the operator evicted over budget
# TYPE tenancy_cache_evictions_total counter
tenancy_cache_evictions_total{tenant="g-alpha"} 7.0
# HELP tenancy_workflow_runs_total WorkflowRuns finished, by workflow and final phase
# TYPE tenancy_workflow_runs_total counter
# HELP tenancy_isolation_probes_allowed Probes of the tenant's last verify-isolation run that a server did not refuse (0 is good)
# TYPE tenancy_isolation_probes_allowed gauge
tenancy_isolation_probes_allowed{tenant="g-alpha"} 0.0
tenancy_isolation_probes_allowed{tenant="g-beta"} 2.0
# HELP tenancy_handler_seconds Duration of one run of a kopf handler, by handler
# TYPE tenancy_handler_seconds histogram
# HELP tenancy_handler_errors_total Handler runs that raised, by handler and error (TemporaryError: a retry is scheduled)
# TYPE tenancy_handler_errors_total counter
# HELP tenancy_reconcile_part_failures_total Parts (conditions) that failed in a Tenant pass, by part and reason
# TYPE tenancy_reconcile_part_failures_total counter
# HELP tenancy_verify_passes_total Periodic verify passes by result: clean (read only), repaired (drift put back), failed, skipped (another pass of the tenant ran, or began less than 0.9 of an interval ago), deferred (every pass slot was taken; at most twice in a row)
# TYPE tenancy_verify_passes_total counter
# HELP tenancy_backend_call_seconds Duration of one call to a backend adapter
# TYPE tenancy_backend_call_seconds histogram
# HELP tenancy_backend_call_errors_total Backend adapter calls that failed, by error (unavailable, refused, circuit_open, owned, invalid, unexpected)
# TYPE tenancy_backend_call_errors_total counter
# HELP tenancy_backend_probe_seconds Latency of the Backend's last health probe
# TYPE tenancy_backend_probe_seconds gauge
# HELP tenancy_credential_rotated_timestamp_seconds When the tenant's current credential version was made (age: time() - this)
# TYPE tenancy_credential_rotated_timestamp_seconds gauge
tenancy_credential_rotated_timestamp_seconds{tenant="g-alpha"} 1.7672256e+09
# HELP tenancy_credential_next_rotation_timestamp_seconds When the tenant's credentials are next due for rotation (spec.credentials.rotateEvery)
# TYPE tenancy_credential_next_rotation_timestamp_seconds gauge
tenancy_credential_next_rotation_timestamp_seconds{tenant="g-alpha"} 1.7698176e+09
# HELP tenancy_credential_version The tenant's current credential version
# TYPE tenancy_credential_version gauge
tenancy_credential_version{tenant="g-alpha"} 3.0
tenancy_credential_version{tenant="g-beta"} 2.0
# HELP tenancy_tenant_quota_used ResourceQuota usage in the tenant namespace (cores, bytes, count)
# TYPE tenancy_tenant_quota_used gauge
tenancy_tenant_quota_used{resource="requests.cpu",tenant="g-alpha"} 0.25
tenancy_tenant_quota_used{resource="pods",tenant="g-alpha"} 3.0
tenancy_tenant_quota_used{resource="limits.memory",tenant="g-alpha"} 5.36870912e+08
# HELP tenancy_tenant_quota_hard ResourceQuota hard limit in the tenant namespace
# TYPE tenancy_tenant_quota_hard gauge
tenancy_tenant_quota_hard{resource="requests.cpu",tenant="g-alpha"} 2.0
tenancy_tenant_quota_hard{resource="requests.memory",tenant="g-alpha"} 1.073741824e+09
tenancy_tenant_quota_hard{resource="requests.storage",tenant="g-alpha"} 1.073741824e+10
tenancy_tenant_quota_hard{resource="pods",tenant="g-alpha"} 5.0
tenancy_tenant_quota_hard{resource="limits.cpu",tenant="g-alpha"} 4.0
tenancy_tenant_quota_hard{resource="limits.memory",tenant="g-alpha"} 2.147483648e+09
tenancy_tenant_quota_hard{resource="pods",tenant="g-beta"} 10.0
# HELP tenancy_tenant_database_bytes Size of the tenant's PostgreSQL database (pg_database_size)
# TYPE tenancy_tenant_database_bytes gauge
tenancy_tenant_database_bytes{tenant="g-alpha"} 7.512345e+06
tenancy_tenant_database_bytes{tenant="g-gamma"} 0.0
# HELP tenancy_backend_circuit_open 1 while the Backend's circuit breaker is open (calls fail fast)
# TYPE tenancy_backend_circuit_open gauge
# HELP tenancy_backend_circuit_failures Consecutive failed calls the Backend's circuit breaker counts
# TYPE tenancy_backend_circuit_failures gauge
"""


def _lines(text: str) -> list[str]:
    """tenancy_* HELP and TYPE lines (not autoscaling_part's, nor the audit gauge's, which appears once set) and
    the samples of TENANTS."""
    out = []
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            name = line.split()[2]
            if name.startswith("tenancy_") and not name.startswith(("tenancy_autoscaling_", "tenancy_audit_")):
                out.append(line)
        elif re.search(r'tenant="g-(alpha|beta|gamma)"', line):
            out.append(line)
    return out


@pytest.fixture
def scenario():
    _scenario()
    yield
    for tenant in TENANTS:
        metrics.forget_tenant(tenant)


def test_metrics_text_is_what_the_labelled_metrics_served(scenario):
    assert _lines(generate_latest().decode()) == EXPECTED.splitlines()


def test_openmetrics_text_too(scenario):
    """Prometheus asks for OpenMetrics: a counter's HELP and TYPE name it without `_total` (checked on the old code)."""
    expected = [re.sub(r"^# (HELP|TYPE) (\w+)_total ", r"# \1 \2 ", line) for line in EXPECTED.splitlines()]
    assert _lines(openmetrics.generate_latest(REGISTRY).decode()) == expected


def test_a_deleted_tenant_leaves_no_series(scenario):
    """The old forget_tenant left drift and repeated repairs, rotations and isolation probes behind."""
    beta = [line for line in EXPECTED.splitlines() if 'tenant="g-beta"' in line]
    assert beta and any("repeated_repairs" in line for line in beta)
    metrics.forget_tenant("g-beta")
    text = generate_latest().decode()
    assert 'tenant="g-beta"' not in text
    assert "g-beta" not in tenant_series.tenants()
    assert [line for line in _lines(text) if 'tenant="g-alpha"' in line] == \
        [line for line in EXPECTED.splitlines() if 'tenant="g-alpha"' in line]
    for tenant in TENANTS:
        metrics.forget_tenant(tenant)
    # The families are still announced with no series (the e2e docs-table test reads the TYPE lines).
    assert _lines(generate_latest().decode()) == [line for line in EXPECTED.splitlines() if line.startswith("#")]


def test_forget_cache_drops_only_the_cache_series(scenario):
    metrics.forget_cache("g-alpha")
    alpha = [line for line in _lines(generate_latest().decode()) if 'tenant="g-alpha"' in line]
    assert not [line for line in alpha if line.startswith("tenancy_cache_")]
    assert [line for line in alpha if line.startswith("tenancy_drift_repairs_total")] == \
        ['tenancy_drift_repairs_total{tenant="g-alpha"} 3.0']


def test_a_counter_takes_no_negative_amount():
    with pytest.raises(ValueError):
        metrics.count_repairs("g-negative", -1)


def test_a_scrape_while_tenants_come_and_go():
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            name = f"g-churn-{i % 50}"
            metrics.record_tenant(name, [{"type": "Ready", "status": "True"}], "Ready")
            metrics.count_rotation(name, "scheduled")
            metrics.forget_tenant(name)
            i += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(50):
            generate_latest()
    finally:
        stop.set()
        thread.join()


def test_memory_per_tenant():
    """Printed, not held to a number: the labelled children held ~35.8 KB per tenant, this ~1 KB."""
    measured = metrics_memory.measure(1000, prefix="g-mem")
    print(f"\n{measured.tenants} tenants x {metrics_memory.SERIES_PER_TENANT} series: "
          f"{measured.per_tenant / 1024:.2f} KB per tenant")
    assert measured.per_tenant < 8 * 1024
    assert not [t for t in tenant_series.tenants() if t.startswith("g-mem")]
