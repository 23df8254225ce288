"""The desired HPA per mode, the patch that brings a live one in line, and the lift annotations."""

from __future__ import annotations

import copy

from tenancy_operator.api.tenant import AutoscalingRule
from tenancy_operator.reconcile import autoscaling as auto


def _rule(mode: str = "Floor", **kw) -> AutoscalingRule:
    base = dict(name="web", targetRef={"name": "web"}, metric={"prometheus": "sum(rate(x[1m]))"},
                capacityPerReplica=50, minReplicas=2, maxReplicas=20, mode=mode)
    return AutoscalingRule.model_validate({**base, **kw})


def _live(desired: dict) -> dict:
    """What the API server hands back: our object plus defaults, status and server fields."""
    obj = copy.deepcopy(desired)
    obj["metadata"]["annotations"] = {k: v for k, v in obj["metadata"]["annotations"].items() if v is not None}
    obj["metadata"].update(resourceVersion="7", uid="u")
    obj["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 300}}
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 2}
    return obj


def test_floor_mode_sets_min_replicas_to_the_floor_and_records_the_lift():
    lift = auto.LiftState(12, 1_800_000_000.0)
    hpa = auto.desired_hpa("acme", "tenant-acme", _rule(), 12, lift)
    assert hpa["metadata"]["name"] == "web"
    assert hpa["metadata"]["labels"]["tenancy.dev/tenant"] == "acme"
    assert hpa["metadata"]["labels"][auto.RULE_LABEL] == "web"
    assert hpa["spec"]["minReplicas"] == 12 and hpa["spec"]["maxReplicas"] == 20
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert hpa["metadata"]["annotations"] == {auto.LIFT: "12", auto.LIFT_UNTIL: "2027-01-15T08:00:00Z"}
    assert auto.read_lift(hpa) == lift
    [metric] = hpa["spec"]["metrics"]
    assert metric["external"]["metric"] == {"name": auto.DEMAND_METRIC,
                                            "selector": {"matchLabels": {"tenant": "acme", "rule": "web"}}}
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "35"}


def test_observe_and_external_metric_keep_the_rules_own_min_replicas():
    for mode in ("Observe", "ExternalMetric"):
        hpa = auto.desired_hpa("acme", "tenant-acme", _rule(mode), 12, auto.LiftState(12, 1.0))
        assert hpa["spec"]["minReplicas"] == 2
        assert hpa["metadata"]["annotations"] == {auto.LIFT: None, auto.LIFT_UNTIL: None}
    ext = auto.desired_hpa("acme", "tenant-acme", _rule("ExternalMetric"), 2)
    assert [m["external"]["metric"]["name"] for m in ext["spec"]["metrics"]] == [auto.DEMAND_METRIC, auto.FORECAST_METRIC]


def test_fractional_per_pod_target_is_a_milli_quantity_and_floor_is_clamped():
    hpa = auto.desired_hpa("a", "tenant-a", _rule(capacityPerReplica=5, targetUtilization=75), 99)
    assert hpa["spec"]["metrics"][0]["external"]["target"]["averageValue"] == "3750m"
    assert hpa["spec"]["minReplicas"] == 20


def test_steady_state_needs_no_patch_even_with_server_defaults_and_canonical_quantities():
    desired = auto.desired_hpa("a", "tenant-a", _rule(capacityPerReplica=5, targetUtilization=75), 2)
    live = _live(desired)
    live["spec"]["metrics"][0]["external"]["target"]["averageValue"] = "3.75"
    assert auto.hpa_patch(live, desired) is None


def test_lift_and_release_patch_min_replicas_and_annotations_only():
    rule = _rule()
    base = auto.desired_hpa("a", "tenant-a", rule, 2)
    live = _live(base)
    lifted = auto.desired_hpa("a", "tenant-a", rule, 12, auto.LiftState(12, 1_800_000_000.0))
    patch = auto.hpa_patch(live, lifted)
    assert patch["spec"]["minReplicas"] == 12
    assert patch["metadata"]["annotations"] == {auto.LIFT: "12", auto.LIFT_UNTIL: "2027-01-15T08:00:00Z"}
    assert auto.only_floor_differs(live, lifted)
    # Release: the annotations are removed (None in a merge patch).
    patch = auto.hpa_patch(_live(lifted), base)
    assert patch["spec"]["minReplicas"] == 2
    assert patch["metadata"]["annotations"] == {auto.LIFT: None, auto.LIFT_UNTIL: None}


def test_an_edit_by_someone_else_is_drift_not_the_floor():
    desired = auto.desired_hpa("a", "tenant-a", _rule(), 2)
    live = _live(desired)
    live["spec"]["maxReplicas"] = 3
    assert auto.hpa_patch(live, desired)["spec"]["maxReplicas"] == 20
    assert not auto.only_floor_differs(live, desired)


def test_read_lift_tolerates_missing_or_bad_annotations():
    assert auto.read_lift(None) == auto.LiftState()
    assert auto.read_lift({"metadata": {"annotations": {auto.LIFT: "x", auto.LIFT_UNTIL: "soon"}}}) == auto.LiftState()


def test_created_before_reads_the_creation_timestamp():
    hpa = {"metadata": {"creationTimestamp": "2026-11-25T12:00:00Z"}}
    noon = 1795608000.0  # 2026-11-25T12:00:00Z
    assert auto.created_before(hpa, noon + 1)
    assert not auto.created_before(hpa, noon)
    assert not auto.created_before(None, noon)
    assert not auto.created_before({"metadata": {}}, noon)


def test_target_ref_is_the_hpas_scale_target():
    rule = _rule(targetRef={"kind": "StatefulSet", "name": "db"})
    hpa = auto.desired_hpa("acme", "tenant-acme", rule, 2)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}
