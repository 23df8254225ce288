"""Other scalers on a rule's target, and which HPA controller conditions stop a rule (issue 21)."""

from __future__ import annotations

from tenancy_operator.api.tenant import AutoscalingRule
from tenancy_operator.reconcile import scalers


def _rule(name: str = "web", target: str = "web", kind: str = "Deployment") -> AutoscalingRule:
    return AutoscalingRule.model_validate(dict(name=name, targetRef={"kind": kind, "name": target},
                                               metric={"prometheus": "x"}, capacityPerReplica=50, maxReplicas=20))


def _hpa(name: str, target: str, kind: str = "Deployment") -> dict:
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}}}


def test_other_hpas_scaled_objects_and_earlier_rules_on_the_same_target_are_named():
    rule = _rule()
    keda = {"metadata": {"name": "q"}, "spec": {"scaleTargetRef": {"name": "web"}}}  # kind defaults to Deployment
    found = scalers.other_scalers(rule, [_rule("first")], [_hpa("mine", "web"), _hpa("x", "other"),
                                                            _hpa("s", "web", "StatefulSet")], [keda])
    assert found == ["HorizontalPodAutoscaler/mine", "ScaledObject/q", "rule first"]


def test_nothing_else_on_the_target_is_no_conflict():
    assert scalers.other_scalers(_rule(), [_rule("api", "api")], [_hpa("x", "api")], []) == []


def _conditions(*conds: tuple[str, str, str]) -> dict:
    return {"status": {"conditions": [{"type": t, "status": s, "reason": r, "message": f"{r} happened"}
                                      for t, s, r in conds]}}


def test_a_metric_read_failure_is_shown_but_does_not_block():
    hpa = _conditions(("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetExternalMetric"))
    problems = scalers.hpa_problems(hpa)
    assert problems == [{"type": "ScalingActive", "reason": "FailedGetExternalMetric",
                         "message": "FailedGetExternalMetric happened"}]
    assert scalers.blocking(problems) is None


def test_ambiguous_selector_disabled_scaling_and_unable_to_scale_block():
    for conds in [(("ScalingActive", "False", "AmbiguousSelector"),), (("ScalingActive", "False", "ScalingDisabled"),),
                  (("AbleToScale", "False", "FailedGetScale"), ("ScalingActive", "False", "FailedGetExternalMetric"))]:
        blocked = scalers.blocking(scalers.hpa_problems(_conditions(*conds)))
        assert blocked is not None and blocked["reason"] == conds[0][2]


def test_an_hpa_before_its_first_sync_has_no_problems():
    assert scalers.hpa_problems(None) == [] and scalers.hpa_problems({"status": {}}) == []
