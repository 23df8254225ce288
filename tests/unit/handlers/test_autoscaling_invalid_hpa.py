"""An autoscaling rule whose HPA the API server refuses (422) is Stalled with InvalidSpec, not retried.

Found by the fuzz test (seed 1796472121): capacityPerReplica 0.0001 at 70 % made an HPA averageValue of
"0m", the API server answered 422 on every pass and the Tenant stayed in a retry loop with reason ApiError.
The CRD's CEL now refuses such a rule at apply; a Tenant stored before that rule, or any other value the
API server will not hold on an HPA, still arrives here.
"""

from __future__ import annotations

import logging

import pytest
from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.backends import kube
from tenancy_operator.handlers import autoscaling_part

SPEC = TenantSpec.model_validate({"autoscaling": [{
    "name": "web", "targetRef": {"kind": "Deployment", "name": "web"},
    "metric": {"prometheus": "sum(rate(http_requests_total[1m]))"},
    "capacityPerReplica": 50, "minReplicas": 1, "maxReplicas": 5}]})


@pytest.fixture
def api_answers(monkeypatch):
    """The rule's HPA write answered with the given API error."""
    answer: dict[str, kube.KubeError] = {}

    async def no_objects(kind, namespace):
        return []

    async def rule(tenant, namespace, rule, observed, others, now, logger):
        raise answer["error"]

    monkeypatch.setattr(kube, "list_objects", no_objects)
    monkeypatch.setattr(autoscaling_part, "_rule", rule)
    monkeypatch.setattr(autoscaling_part, "_keda", (float("inf"), False))
    return answer


async def test_a_refused_hpa_is_stalled_invalid_spec(api_answers):
    api_answers["error"] = kube.KubeError(422, "Invalid", 'HorizontalPodAutoscaler.autoscaling "web" is invalid: '
                                                         "spec.metrics[0].external.target.averageValue: must be positive")
    parts, _, _ = await autoscaling_part.ensure("t1", "uid", "tenant-t1", SPEC, logging.getLogger("test"))
    ready = parts[0]
    assert (ready.ok, ready.reason, ready.stalled) == (False, "InvalidSpec", True)
    assert "must be positive" in ready.message and "edit the rule" in ready.message


async def test_a_server_error_stays_a_retried_api_error(api_answers):
    api_answers["error"] = kube.KubeError(503, "ServiceUnavailable", "etcd is restarting")
    parts, _, _ = await autoscaling_part.ensure("t2", "uid", "tenant-t2", SPEC, logging.getLogger("test"))
    ready = parts[0]
    assert (ready.ok, ready.reason, ready.stalled) == (False, "ApiError", False)
