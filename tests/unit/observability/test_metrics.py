from prometheus_client import REGISTRY
from tenancy_operator.observability import metrics


def _value(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


def test_tenant_conditions_and_phase_are_one_hot():
    metrics.record_tenant("m-acme", [{"type": "Ready", "status": "False"}], "Degraded")
    assert _value("tenancy_tenant_condition", tenant="m-acme", type="Ready", status="False") == 1
    assert _value("tenancy_tenant_condition", tenant="m-acme", type="Ready", status="True") == 0
    assert _value("tenancy_tenant_phase", tenant="m-acme", phase="Degraded") == 1
    metrics.record_tenant("m-acme", [{"type": "Ready", "status": "True"}], "Ready")
    assert _value("tenancy_tenant_condition", tenant="m-acme", type="Ready", status="True") == 1
    assert _value("tenancy_tenant_phase", tenant="m-acme", phase="Degraded") == 0


def test_forgotten_tenant_leaves_no_series():
    metrics.record_tenant("m-gone", [{"type": "Ready", "status": "True"}], "Ready")
    metrics.forget_tenant("m-gone")
    assert _value("tenancy_tenant_condition", tenant="m-gone", type="Ready", status="True") is None


def test_backend_ready():
    metrics.record_backend("pg-x", "postgres", False)
    assert _value("tenancy_backend_ready", backend="pg-x", type="postgres") == 0


def test_handler_run_times_and_counts_errors():
    import pytest

    before = _value("tenancy_handler_seconds_count", handler="m-unit") or 0
    with metrics.handler_run("m-unit"):
        pass
    with pytest.raises(RuntimeError), metrics.handler_run("m-unit"):
        raise RuntimeError("boom")
    assert _value("tenancy_handler_seconds_count", handler="m-unit") == before + 2
    assert _value("tenancy_handler_errors_total", handler="m-unit", error="RuntimeError") == 1


def test_backend_call_names_its_error():
    with metrics.backend_call("pg-unit", "postgres", "ensure") as call:
        call.fail("unavailable")
    with metrics.backend_call("pg-unit", "postgres", "ensure"):
        pass
    labels = {"backend": "pg-unit", "type": "postgres", "operation": "ensure"}
    assert _value("tenancy_backend_call_seconds_count", **labels) == 2
    assert _value("tenancy_backend_call_errors_total", **labels, error="unavailable") == 1


def test_quota_and_credentials_from_status():
    metrics.record_quota("m-quota", {"hard": {"requests.cpu": "500m", "requests.memory": "1Gi", "pods": "5",
                                              "count/secrets": "9"},
                                     "used": {"requests.cpu": "0", "pods": "2"}})
    assert _value("tenancy_tenant_quota_hard", tenant="m-quota", resource="requests.cpu") == 0.5
    assert _value("tenancy_tenant_quota_hard", tenant="m-quota", resource="requests.memory") == 2**30
    assert _value("tenancy_tenant_quota_used", tenant="m-quota", resource="pods") == 2
    assert _value("tenancy_tenant_quota_hard", tenant="m-quota", resource="count/secrets") is None  # not a bounded key
    metrics.record_credentials("m-quota", {"version": 3, "rotatedAt": "2026-01-01T00:00:00Z",
                                           "nextRotationAt": "2026-01-31T00:00:00Z"})
    assert _value("tenancy_credential_version", tenant="m-quota") == 3
    assert (_value("tenancy_credential_next_rotation_timestamp_seconds", tenant="m-quota")
            - _value("tenancy_credential_rotated_timestamp_seconds", tenant="m-quota")) == 30 * 86400
    metrics.forget_tenant("m-quota")
    assert _value("tenancy_tenant_quota_hard", tenant="m-quota", resource="pods") is None
    assert _value("tenancy_credential_version", tenant="m-quota") is None


def test_circuit_state_is_read_at_scrape_time():
    state = [("pg-c", True, 3)]
    metrics.watch_circuits(lambda: state)
    assert _value("tenancy_backend_circuit_open", backend="pg-c") == 1
    assert _value("tenancy_backend_circuit_failures", backend="pg-c") == 3
    state[:] = [("pg-c", False, 0)]
    assert _value("tenancy_backend_circuit_open", backend="pg-c") == 0
