"""TENANCY_METRICS_ADDRESS: every address by default (a pod, scraped at its IP), the loopback when set so
(a host process on a shared machine: make operator-start and the e2e operator)."""

import pytest
from tenancy_operator.handlers import config


@pytest.mark.parametrize(("value", "expected"), [(None, "0.0.0.0"), ("", "0.0.0.0"), ("127.0.0.1", "127.0.0.1")])
def test_metrics_address(monkeypatch, value, expected):
    monkeypatch.delenv("TENANCY_METRICS_ADDRESS", raising=False)
    if value is not None:
        monkeypatch.setenv("TENANCY_METRICS_ADDRESS", value)
    assert config.load().metrics_address == expected
