"""Forecast-fed autoscaling, the pure part: fit, forecast, floor, the desired HPA and the status.

Why this exists: the handler (handlers/autoscaling_part.py) only does I/O and caching; every decision
(which model, whether the gate lets it act, how far to lift minReplicas and until when, what the HPA
should look like, what goes into status and when status is worth a write) is made here, from plain
numbers and dicts, so the unit tests and the e2e exercise the same code.

Time is a regular 1-minute series ``y`` whose first sample is at Unix time ``t0``; the forecast
made from its last sample covers ``[now + leadTime, now + leadTime + window]``: the model horizon is
the lead in steps plus one step for the age of the newest sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..api.tenant import AutoscalingRule
from ..forecasting import (
    AnomalyConfig,
    BacktestScores,
    BlendedModel,
    FeatureConfig,
    FloorDecision,
    FloorInput,
    GateConfig,
    GateVerdict,
    HoltWinters,
    QuantileGBM,
    consensus_scores,
    decide_floor,
    fit_blend,
    gate_blend,
    persistence_peak,
    relative_residuals,
    scaled_residuals,
    score_backtest,
    single_threaded,
    target_peaks,
)
from .credentials import parse_duration
from .diff import contains
from .labels import owned_labels

__all__ = [
    "Settings", "feature_config", "regularize", "FittedRule", "fit_rule", "Forecast", "forecast",
    "peak_timing", "LiftState", "read_lift", "lift_annotations", "decide", "desired_hpa", "hpa_patch",
    "RULE_LABEL", "LIFT", "LIFT_UNTIL", "DEMAND_METRIC", "FORECAST_METRIC", "rule_status", "publish",
    "short_reason", "iso", "only_floor_differs",
]

RULE_LABEL = "tenancy.dev/autoscaling-rule"
LIFT = "tenancy.dev/floor-lift"
LIFT_UNTIL = "tenancy.dev/floor-lift-until"
DEMAND_METRIC = "tenancy_demand"
"""External metric an adapter serves from each rule's own PromQL query (what a reactive HPA reads)."""
FORECAST_METRIC = "tenancy_autoscaling_forecast_demand"
"""External metric (ExternalMetric mode): the demand the forecast floor stands for, 0 when none."""
MODELS = ("quantile-gbm", "holt-winters")


@dataclass(frozen=True)
class Settings:
    step_s: int = 60
    history_s: int = 14 * 86400
    """How much history a refit reads (and how much the in-memory series keeps)."""
    backtest_s: int = 4 * 86400
    """The most recent span held out at each refit: models fit before it and are scored on it."""
    refit_interval_s: float = 3600.0
    quantile: float = 0.9
    tolerance: float = 0.1
    """The HPA's tolerance: a rise is a forecast more than this share above what the HPA holds."""
    stale_after_s: float = 300.0
    """Newest sample older than this: the data is stale and the rule falls back to reactive."""
    anomaly_threshold: float = 0.9
    gate: GateConfig = field(default_factory=GateConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)


def iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feature_config(lead: str, window: str, step_s: int = 60) -> FeatureConfig:
    """Model shape for a rule: horizon = lead in steps + 1 (the newest sample is up to a step old)."""
    lead_s = parse_duration(lead).total_seconds()
    window_s = parse_duration(window).total_seconds()
    return FeatureConfig(step_s=step_s, horizon=max(1, math.ceil(lead_s / step_s - 1e-9)) + 1,
                         window=max(1, math.ceil(window_s / step_s - 1e-9)))


def regularize(points: Iterable[tuple[float, float]], start: float, step: float, n: int,
               carry: float | None = None) -> np.ndarray:
    """Samples at ``start + k * step`` for k < n, gaps carried forward. Leading gaps take ``carry`` (the
    value before ``start``) or else the first value; all NaN only when there is no point and no carry.
    Values that are not finite count as gaps."""
    y = np.full(n, np.nan)
    for ts, v in points:
        k = int(round((ts - start) / step))
        if 0 <= k < n and math.isfinite(v):
            y[k] = v
    ok = np.isfinite(y)
    if not ok.any():
        return np.full(n, np.nan if carry is None else float(carry))
    idx = np.where(ok, np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(ok))
    y = y[idx]
    y[:first] = y[first] if carry is None else float(carry)
    return y


def _make(name: str, cfg: FeatureConfig, q: float) -> Any:
    return QuantileGBM(cfg, q) if name == "quantile-gbm" else HoltWinters(cfg, q)


@dataclass
class FittedRule:
    """What a refit produced: the model that acts, its gate verdict and the backtest behind it."""

    cfg: FeatureConfig
    model_name: str | None
    model: Any
    verdict: GateVerdict | None
    reason: str
    scores: dict[str, BacktestScores]
    residuals: np.ndarray
    naive_residuals: np.ndarray
    """Residuals of persistence over the same backtest: an anomaly must surprise both (consensus score)."""
    fitted_at: float
    fit_seconds: float
    samples: int

    @property
    def active(self) -> bool:
        return bool(self.verdict and self.verdict.active)


def _no_model(cfg: FeatureConfig, reason: str, now_s: float, secs: float, n: int) -> FittedRule:
    return FittedRule(cfg, None, None, None, reason, {}, np.array([]), np.array([]), now_s, secs, n)


def fit_rule(y: np.ndarray, t0_s: float, cfg: FeatureConfig, settings: Settings = Settings(),
             now_s: float | None = None) -> FittedRule:
    """Backtest each candidate on the held-out recent span, fit the blend's weights there, gate the
    blend on the same backtest, then refit the models it uses on all the history. CPU-bound: run it
    in a thread."""
    started = time.perf_counter()
    now_s = time.time() if now_s is None else now_s
    y = np.asarray(y, dtype=float)
    n = len(y)
    need = 2 * cfg.day + cfg.horizon + cfg.window
    if n < need or not np.isfinite(y).all():
        have = f"{n * cfg.step_s / 86400:.1f} days" if np.isfinite(y).all() else "no data"
        return _no_model(cfg, f"Reactive: not enough history to forecast ({have}; need 3 days, 14 for the gate)",
                         now_s, time.perf_counter() - started, n)
    hold = min(settings.backtest_s // cfg.step_s, n // 3)
    split = n - hold
    positions = np.arange(split, n - cfg.horizon - cfg.window + 1, dtype=np.int64)
    actual = target_peaks(y, positions, cfg)
    persist = persistence_peak(y, positions, cfg)
    scores: dict[str, BacktestScores] = {}
    preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    errors: dict[str, str] = {}
    for name in MODELS:
        try:
            model = _make(name, cfg, settings.quantile).fit(y[:split], t0_s)
            med, up = model.predict_batch(y, t0_s, positions)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        preds[name] = (med, up)
        scores[name] = score_backtest(actual, med, up, persist, settings.quantile, settings.tolerance)
    if not scores:
        return _no_model(cfg, "Reactive: no model could be fitted (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")",
                         now_s, time.perf_counter() - started, n)
    blend = fit_blend(actual, preds, settings.quantile).trimmed()
    verdict, (med, up) = gate_blend(blend, actual, persist, preds, settings.quantile, settings.tolerance, settings.gate)
    scores[blend.label] = verdict.scores
    try:
        model = BlendedModel(blend, tuple(_make(name, cfg, settings.quantile).fit(y, t0_s) for name in blend.names))
    except ValueError as exc:  # pragma: no cover - it fitted on less data a moment ago
        return _no_model(cfg, f"Reactive: {blend.label} refit failed: {exc}", now_s, time.perf_counter() - started, n)
    residuals = scaled_residuals(actual, med, up)
    naive = relative_residuals(actual, persist)
    both = np.isfinite(residuals) & np.isfinite(naive)
    return FittedRule(cfg, blend.label, model, verdict, verdict.reason, scores,
                      residuals[both], naive[both], now_s, time.perf_counter() - started, n)


def peak_timing(y: np.ndarray, t0_s: float, cfg: FeatureConfig, idx: int) -> tuple[float, float]:
    """(when, until): the predicted peak's time and when it is over, from the seasonal reference (the
    same window one day and one week earlier). The peak is over after the last sample of the window
    whose reference is nearer the peak than the current level; without a reference, the window end."""
    step = cfg.step_s
    pos = idx + cfg.horizon + np.arange(cfg.window)
    start, end = t0_s + step * pos[0], t0_s + step * (pos[-1] + 1)
    refs = []
    for period in (cfg.day, cfg.week):
        j = pos - period
        refs.append(np.where(j >= 0, y[np.clip(j, 0, None)], np.nan))
    ref = np.fmax(refs[0], refs[1])
    if not np.isfinite(ref).any():
        return start, end
    level = float(np.mean(y[max(0, idx - cfg.level_span + 1): idx + 1]))
    top = int(np.nanargmax(ref))
    high = np.flatnonzero(np.nan_to_num(ref, nan=-np.inf) >= 0.5 * (ref[top] + level))
    last = int(high.max()) if len(high) else top
    return t0_s + step * pos[top], t0_s + step * (pos[last] + 1)


@dataclass(frozen=True)
class Forecast:
    median: float
    upper: float
    recent: float
    """The recent maximum (persistence): what a reactive HPA is sized for."""
    peak_at_s: float
    peak_end_s: float
    anomaly: float
    residual: float | None
    """The newest realised residual (to extend the anomaly history), None when nothing new."""
    naive_residual: float | None = None
    """The same window's residual of persistence (the second history of the consensus score)."""

    @property
    def rise(self) -> bool:
        return math.isfinite(self.median) and self.median > self.recent


def forecast(fitted: FittedRule, y: np.ndarray, t0_s: float, settings: Settings = Settings(),
             residuals: np.ndarray | None = None, naive_residuals: np.ndarray | None = None) -> Forecast | None:
    """The forecast from the newest sample, plus the anomaly score of the newest realised window (the
    forecast made ``horizon + window - 1`` samples ago against what happened). Cheap: a few ms."""
    if fitted.model is None:
        return None
    cfg = fitted.cfg
    y = np.asarray(y, dtype=float)
    last = len(y) - 1
    done = last - (cfg.horizon + cfg.window - 1)
    idx = np.array([done, last] if done >= cfg.day else [last], dtype=np.int64)
    with single_threaded():
        med, up = fitted.model.predict_batch(y, t0_s, idx)
    recent = float(persistence_peak(y, np.array([last]), cfg)[0])
    when, until = peak_timing(y, t0_s, cfg, last)
    score, resid, naive_resid = 0.0, None, None
    if len(idx) == 2:
        actual = target_peaks(y, idx[:1], cfg)
        r = float(scaled_residuals(actual, med[:1], up[:1])[0])
        rn = float(relative_residuals(actual, persistence_peak(y, idx[:1], cfg))[0])
        if math.isfinite(r) and math.isfinite(rn):
            resid, naive_resid = r, rn
            history = fitted.residuals if residuals is None else residuals
            naive_history = fitted.naive_residuals if naive_residuals is None else naive_residuals
            # The bench-validated score: both the model and persistence surprised, for `sustain` windows.
            keep = settings.anomaly.window + settings.anomaly.sustain
            score = float(consensus_scores(np.append(history, r)[-keep:], np.append(naive_history, rn)[-keep:],
                                           settings.anomaly)[-1])
    return Forecast(float(med[-1]), float(max(up[-1], med[-1])), recent, when, until, float(score), resid,
                    naive_resid)


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


def lift_annotations(state: LiftState) -> dict[str, str | None]:
    if state.lift is None or state.until_s is None:
        return {LIFT: None, LIFT_UNTIL: None}
    return {LIFT: str(state.lift), LIFT_UNTIL: iso(state.until_s)}


def decide(rule: AutoscalingRule, fc: Forecast | None, active: bool, held_replicas: int, lift: LiftState,
           now_s: float, settings: Settings = Settings()) -> FloorDecision:
    """The rise-only floor for this pass. Without a forecast (no model, stale data) a lift in force is
    held until its time is up, then released: the HPA goes on reacting either way."""
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


def with_note(fitted: FittedRule | None, note: str) -> FittedRule | None:
    return None if fitted is None else replace(fitted, reason=note)
