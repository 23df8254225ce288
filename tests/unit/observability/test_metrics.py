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
