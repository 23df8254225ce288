"""Forecast-fed autoscaling, the pure part that touches the HPA: the floor, the desired HPA, status.

Why this exists: the handler (handlers/autoscaling_part.py) only does I/O and caching; every decision
about the HPA (how far to lift minReplicas and until when, what the HPA should look like, what goes
into status and when status is worth a write) is made here, from plain numbers and dicts, so the
unit tests and the e2e exercise the same code. The forecasts it acts on come from
:mod:`.rule_forecast`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api.tenant import AutoscalingRule
from ..forecasting import FloorDecision, FloorInput, decide_floor
from .diff import contains
from .labels import owned_labels
from .rule_forecast import FittedRule, Forecast, Settings, iso

__all__ = [
    "LiftState", "read_lift", "lift_annotations", "created_before", "decide", "desired_hpa", "hpa_patch",
    "only_floor_differs",
    "RULE_LABEL", "LIFT", "LIFT_UNTIL", "DEMAND_METRIC", "FORECAST_METRIC", "rule_status", "publish",
    "short_reason",
]

RULE_LABEL = "tenancy.dev/autoscaling-rule"
LIFT = "tenancy.dev/floor-lift"
LIFT_UNTIL = "tenancy.dev/floor-lift-until"
DEMAND_METRIC = "tenancy_demand"
"""External metric an adapter serves from each rule's own PromQL query (what a reactive HPA reads)."""
FORECAST_METRIC = "tenancy_autoscaling_forecast_demand"
"""External metric (ExternalMetric mode): the demand the forecast floor stands for, 0 when none."""


# ------------------------------------------------------------------------------------------ floor

@dataclass(frozen=True)
class LiftState:
    lift: int | None = None
    until_s: float | None = None


def read_lift(hpa: Mapping[str, Any] | None) -> LiftState:
    """The lift in force, as recorded on the HPA itself (so a restarted operator knows it)."""
    ann = ((hpa or {}).get("metadata") or {}).get("annotations") or {}
    try:
        lift = int(ann[LIFT])
        until = datetime.strptime(ann[LIFT_UNTIL], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except (KeyError, ValueError, TypeError):
        return LiftState()
    return LiftState(lift, until)


def created_before(obj: Mapping[str, Any] | None, when_s: float) -> bool:
    """Whether the object exists and its creationTimestamp is before ``when_s`` (Unix seconds)."""
    stamp = ((obj or {}).get("metadata") or {}).get("creationTimestamp")
    try:
        created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except (TypeError, ValueError):
        return False
    return created < when_s


def lift_annotations(state: LiftState) -> dict[str, str | None]:
    if state.lift is None or state.until_s is None:
        return {LIFT: None, LIFT_UNTIL: None}
    return {LIFT: str(state.lift), LIFT_UNTIL: iso(state.until_s)}


def decide(rule: AutoscalingRule, fc: Forecast | None, active: bool, held_replicas: int, lift: LiftState,
           now_s: float, settings: Settings | None = None) -> FloorDecision:
    """The rise-only floor for this pass. Without a forecast (no model, stale data) a lift in force is
    held until its time is up, then released: the HPA goes on reacting either way."""
    settings = settings or Settings()
    if fc is None:
        if lift.lift and lift.until_s and now_s < lift.until_s:
            return FloorDecision(lift.lift, lift.lift, lift.until_s, "Holding lift: no fresh forecast")
        return FloorDecision(rule.min_replicas, None, None, "No forecast: the HPA scales reactively")
    return decide_floor(FloorInput(
        median_peak=fc.median, upper_peak=fc.upper, capacity_per_replica=rule.capacity_per_replica,
        target_utilisation=rule.target_utilization / 100.0, held_replicas=held_replicas,
        tolerance=settings.tolerance, min_replicas=rule.min_replicas, max_replicas=rule.max_replicas,
        now_s=now_s, peak_end_s=fc.peak_end_s, current_lift=lift.lift, lift_until_s=lift.until_s,
        gate_active=active, recent_demand=fc.recent,
    ))


# ------------------------------------------------------------------------------------------ HPA

def _quantity(value: float) -> str:
    """A quantity string the API server keeps as is for whole numbers; milli-units otherwise."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{int(round(value * 1000))}m"


def _external(metric: str, tenant: str, rule: AutoscalingRule) -> dict[str, Any]:
    per_pod = rule.capacity_per_replica * rule.target_utilization / 100.0
    return {"type": "External", "external": {
        "metric": {"name": metric, "selector": {"matchLabels": {"tenant": tenant, "rule": rule.name}}},
        "target": {"type": "AverageValue", "averageValue": _quantity(per_pod)},
    }}


def desired_hpa(tenant: str, namespace: str, rule: AutoscalingRule, floor: int,
                lift: LiftState = LiftState()) -> dict[str, Any]:
    """The HPA for a rule. It reads the rule's demand as an External metric (served by an adapter from
    the rule's own query) with a per-pod target of capacityPerReplica x targetUtilization; in
    ExternalMetric mode also the forecast floor's demand. minReplicas is the floor (Floor mode) or the
    rule's own minReplicas; the lift in force is recorded in annotations (None = remove)."""
    metrics = [_external(DEMAND_METRIC, tenant, rule)]
    if rule.mode == "ExternalMetric":
        metrics.append(_external(FORECAST_METRIC, tenant, rule))
    minimum = floor if rule.mode == "Floor" else rule.min_replicas
    annotations = lift_annotations(lift if rule.mode == "Floor" else LiftState())
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": rule.name, "namespace": namespace,
                     "labels": {**owned_labels(tenant), RULE_LABEL: rule.name},
                     "annotations": annotations},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": rule.target_ref.kind, "name": rule.target_ref.name},
            "minReplicas": max(1, min(minimum, rule.max_replicas)),
            "maxReplicas": rule.max_replicas,
            "metrics": metrics,
        },
    }


def hpa_patch(observed: Mapping[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that brings ``observed`` in line, or None when nothing differs (steady state).
    Annotations with value None must be absent; the spec must contain the desired one (quantities
    compared by value, defaults the API server adds left alone)."""
    if observed is None:
        return None
    meta = observed.get("metadata") or {}
    have_ann = meta.get("annotations") or {}
    want_ann = desired["metadata"]["annotations"]
    ann_patch = {k: v for k, v in want_ann.items() if have_ann.get(k) != v}
    labels = desired["metadata"]["labels"]
    label_patch = {k: v for k, v in labels.items() if (meta.get("labels") or {}).get(k) != v}
    patch: dict[str, Any] = {}
    if ann_patch or label_patch:
        patch["metadata"] = {}
        if ann_patch:
            patch["metadata"]["annotations"] = ann_patch
        if label_patch:
            patch["metadata"]["labels"] = label_patch
    if not contains(observed.get("spec"), desired["spec"]):
        patch["spec"] = desired["spec"]
    return patch or None


def only_floor_differs(observed: Mapping[str, Any], desired: dict[str, Any]) -> bool:
    """True when ``observed`` differs from ``desired`` only in minReplicas and the lift annotations
    (the rule at work, not drift)."""
    meta = dict(observed.get("metadata") or {})
    ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in (LIFT, LIFT_UNTIL)}
    ann.update({k: v for k, v in desired["metadata"]["annotations"].items() if v is not None})
    spec = {**(observed.get("spec") or {}), "minReplicas": desired["spec"]["minReplicas"]}
    return hpa_patch({**observed, "metadata": {**meta, "annotations": ann}, "spec": spec}, desired) is None


# ------------------------------------------------------------------------------------------ status

def _sig(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def short_reason(reason: str) -> str:
    """The gate's sentence without its numbers, for condition messages that should not churn."""
    return reason.split(" (")[0]


def rule_status(rule: AutoscalingRule, fitted: FittedRule | None, fc: Forecast | None,
                decision: FloorDecision | None, note: str | None = None) -> dict[str, Any]:
    """One entry of status.autoscaling, numbers rounded to 3 significant digits."""
    entry: dict[str, Any] = {"name": rule.name, "mode": rule.mode}
    if fitted is not None:
        entry["model"] = fitted.model_name
        entry["lastRefit"] = iso(fitted.fitted_at)
        scores = fitted.scores.get(fitted.model_name or "")
        if scores is not None:
            entry["backtest"] = {
                "forecasts": scores.n,
                "pinball": _sig(scores.pinball),
                "pinballPersistence": _sig(scores.pinball_persistence),
                "mae": _sig(scores.mae),
                "maePersistence": _sig(scores.mae_persistence),
                "skill": _sig(scores.skill, 2),
                "risePrecision": _sig(scores.rise_precision, 2),
            }
    active = bool(fitted and fitted.active and fc is not None)
    reason = note or (fitted.reason if fitted else "Reactive: waiting for the first model")
    entry["gate"] = {"active": active, "reason": reason}
    if fc is not None:
        entry["forecast"] = {"peak": _sig(fc.median), "upper": _sig(fc.upper), "recent": _sig(fc.recent),
                             "at": iso(60.0 * round(fc.peak_at_s / 60.0))}
        entry["anomalyScore"] = round(fc.anomaly, 1)
    if decision is not None:
        entry["floor"] = decision.floor
        if decision.lift is not None:
            entry["liftUntil"] = iso(decision.lift_until_s)
    return {k: v for k, v in entry.items() if v is not None}


def _moved(old: float | None, new: float | None, tolerance: float) -> bool:
    if old is None or new is None:
        return old != new
    return abs(new - old) > tolerance * max(abs(old), 1e-9)


def publish(previous: Mapping[str, Any] | None, new: dict[str, Any], tolerance: float = 0.1) -> dict[str, Any]:
    """What to publish: ``new``, except that a forecast that moved by no more than ``tolerance`` keeps
    the previously published numbers and time, so steady state writes nothing."""
    if not previous or "forecast" not in new or "forecast" not in previous:
        return new
    old, cur = previous["forecast"], new["forecast"]
    if any(_moved(old.get(k), cur.get(k), tolerance) for k in ("peak", "upper", "recent")):
        return new
    if previous.get("floor") != new.get("floor") or previous.get("gate") != new.get("gate"):
        return new
    return {**new, "forecast": old}
