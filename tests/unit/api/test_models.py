import pytest
from pydantic import ValidationError
from tenancy_operator.api import quantity
from tenancy_operator.api.tenant import TenantSpec


def test_empty_spec_gets_defaults():
    spec = TenantSpec.model_validate({})
    assert spec.state == "Active" and spec.quota.cpu == "4" and not spec.postgres.enabled


def test_camel_case_on_the_wire():
    spec = TenantSpec.model_validate({"postgres": {"enabled": True, "connectionLimit": 5}})
    assert spec.postgres.connection_limit == 5


@pytest.mark.parametrize(
    "spec",
    [
        {"owners": [{"name": "a b"}]},
        {"owners": [{"name": "x';--"}]},
        {"quota": {"cpu": "many"}},
        {"state": "Gone"},
        {"postgress": {}},
        {"credentials": {"rotateEvery": "1 day"}},
        {"postgres": {"backend": "Bad Name"}},
    ],
    ids=["space", "quote", "quantity", "state", "unknown-field", "duration", "backend-name"],
)
def test_bad_input_is_refused(spec):
    with pytest.raises(ValidationError):
        TenantSpec.model_validate(spec)


@pytest.mark.parametrize("a,b", [("16Gi", "16384Mi"), ("1", "1000m"), ("0.5", "500m"), ("1k", "1000"), ("1e3", "1k")])
def test_quantities_compare_by_value(a, b):
    assert quantity.same(a, b)


@pytest.mark.parametrize("a,b", [("1Gi", "1G"), ("1", "2"), ("x", "x1")])
def test_different_quantities(a, b):
    assert not quantity.same(a, b)
