"""The AutoscalingReady part: an HPA per autoscaling rule, fed by forecasts (issue 7).

Per rule, every reconcile pass: read the HPAs we own (one list call), the rule's target, and the
few new samples of the rule's metric since the last pass (one small Prometheus range query); make
one forecast with the cached model (milliseconds); decide the floor (reconcile/autoscaling.py); write
the HPA only if it differs; report status, metrics and conditions. Rules are refit on a schedule
(TENANCY_FORECAST_REFIT_INTERVAL seconds, default 3600) in a background task: the full history is read
in chunks and refit in a worker thread, one at a time, while the previous model keeps serving. A
refit fits the models once every TENANCY_FORECAST_MODEL_REFIT_INTERVAL seconds (default 86400) and
otherwise re-scores their backtest (rule_forecast.fit_rule with the rule's last fit). The per-rule
series, models, refits and gauges are in handlers/autoscaling_rules.py. Models live in memory only; a
restarted operator refits (the lift in force is recorded on the HPA).

One scaler per workload (issue 21): while anything else scales a rule's target (an HPA the rule did
not make, a KEDA ScaledObject, an earlier rule), the rule keeps no HPA (it deletes its own once, then
writes nothing) and AutoscalingReady is False `TargetAlreadyScaled` naming it (reconcile/scalers.py).
The HPA controller's own False ScalingActive/AbleToScale conditions on the rule's HPA are shown in
the rule's status, and make AutoscalingReady False when they stop the HPA altogether.

Modes: Observe keeps the HPA at the rule's own minReplicas and never writes it again unless it
drifts; Floor lifts minReplicas ahead of a predicted rise and releases the lift after the predicted
peak; ExternalMetric exports the floor's demand as `tenancy_autoscaling_forecast_demand`, which the
HPA reads through an adapter (docs/autoscaling.md). The gauges are in the default registry, served
with the operator's other metrics on TENANCY_METRICS_PORT (observability/metrics.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..api.tenant import AutoscalingRule, TenantSpec
from ..backends import kube, prometheus
from ..reconcile import autoscaling as auto
from ..reconcile import labels, scalers
from ..reconcile import rule_forecast as rf
from ..reconcile.status import PartResult
from . import autoscaling_rules as rules_state
from .autoscaling_rules import (
    ANOMALY_SCORE,
    FLOOR,
    FORECAST_DEMAND,
    FORECAST_MAE,
    FORECAST_PEAK,
    FORECAST_SKILL,
    GATE,
    RECENT,
    SETTINGS,
    TARGET_REPLICAS,
    RuleState,
    forget,
)

__all__ = ["ensure", "CONDITION", "ANOMALY", "SETTINGS", "forget"]

CONDITION = "AutoscalingReady"
ANOMALY = "AnomalyDetected"

STARTED_AT = time.time()
"""When this process started: a rule whose HPA is older was working before a restart."""
KEDA_RECHECK_S = 300.0
"""How long the answer to "does this cluster serve KEDA's ScaledObject?" is reused."""
_keda: tuple[float, bool] | None = None
"""(when checked, monotonic seconds; whether keda.sh/v1alpha1 serves scaledobjects)."""

_seen: set[str] = set()


# ------------------------------------------------------------------------------------------ the pass

@dataclass
class _RuleOutcome:
    entry: dict[str, Any]
    ok: bool = True
    reason: str = ""
    message: str = ""
    waiting: bool = False
    anomalous: bool = False
    stalled: bool = False
    """Waiting for someone to change the cluster (another scaler, a disabled HPA): no retry loop."""


def _owned(hpa: dict[str, Any], tenant: str) -> bool:
    return labels.tenant_of(hpa) == tenant


async def _apply_hpa(desired: dict[str, Any], observed: dict[str, Any] | None, st: RuleState, tenant: str,
                     logger: logging.Logger) -> tuple[str | None, str | None]:
    """(problem, repaired): writes the HPA only where it differs."""
    meta = desired["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    if observed is None:
        body = {**desired, "metadata": {**meta, "annotations": {k: v for k, v in meta["annotations"].items() if v}}}
        try:
            await kube.create(body)
        except kube.Conflict:
            live = await kube.get("HorizontalPodAutoscaler", name, namespace)
            if live is not None and not _owned(live, tenant):
                return f"HorizontalPodAutoscaler {name} exists and is not managed by this tenant", None
            observed = live
        else:
            logger.info("created HorizontalPodAutoscaler %s/%s", namespace, name)
            repaired = f"HorizontalPodAutoscaler/{name}" if st.created else None
            st.created = True
            return None, repaired
    st.created = True
    patch = auto.hpa_patch(observed, desired)
    if patch is None:
        return None, None
    await kube.merge_patch("HorizontalPodAutoscaler", name, namespace, patch)
    # A floor change is the rule at work; anything else put back someone's edit.
    floor_only = auto.only_floor_differs(observed, desired)
    logger.info("patched HorizontalPodAutoscaler %s/%s: minReplicas %s", namespace, name, desired["spec"]["minReplicas"])
    return None, None if floor_only else f"HorizontalPodAutoscaler/{name}"


async def _scaled_objects(namespace: str) -> list[dict[str, Any]]:
    """KEDA ScaledObjects in the namespace; none where KEDA is not installed (discovery, cached)."""
    global _keda
    if _keda is None or time.monotonic() - _keda[0] >= KEDA_RECHECK_S:
        _keda = (time.monotonic(), await kube.served("ScaledObject"))
    return await kube.list_objects("ScaledObject", namespace) if _keda[1] else []


async def _rule(tenant: str, namespace: str, rule: AutoscalingRule, observed: dict[str, Any] | None,
                others: list[str], now: float, logger: logging.Logger) -> tuple[_RuleOutcome, str | None]:
    st = rules_state.rule_state(tenant, rule)
    if rules_state.needs_refit(st, now):
        st.task = asyncio.create_task(rules_state.refit(st, tenant, rule.name))
    note: str | None = None
    try:
        await rules_state.append_new(st, now)
    except prometheus.PrometheusError as exc:
        note = f"Reactive: {exc}"
    fc = None
    if st.fitted is not None and st.y is not None and note is None:
        age = now - (st.last_ts or 0.0)
        if age > SETTINGS.stale_after_s:
            note = f"Reactive: the newest sample of the metric is {age / 60:.0f} min old"
        else:
            fc = rf.forecast(st.fitted, st.y, st.t0, SETTINGS, st.residuals, st.naive_residuals)
            pos = int(round(st.last_ts / SETTINGS.step_s)) if st.last_ts else -1
            if fc is not None and fc.residual is not None and fc.naive_residual is not None and pos > st.scored_upto:
                st.residuals = np.append(st.residuals, fc.residual)[-SETTINGS.anomaly.window:]
                st.naive_residuals = np.append(st.naive_residuals, fc.naive_residual)[-SETTINGS.anomaly.window:]
                st.scored_upto = pos
    elif st.fitted is None and st.error:
        note = f"Reactive: {st.error}"
    # A rule whose HPA predates this process was working before a restart: refitting its models is
    # not "not ready" (the HPA scales reactively meanwhile), or every restart would flap every Tenant.
    if st.fitted is None and note is None and auto.created_before(observed, STARTED_AT):
        note = "Reactive: refitting the models after an operator restart"
    waiting = st.fitted is None and note is None

    target = await kube.get(rule.target_ref.kind, rule.target_ref.name, namespace)
    held = int(((target or {}).get("spec") or {}).get("replicas") or 1)
    active = bool(st.fitted and st.fitted.active and fc is not None)
    lift = auto.read_lift(observed) if rule.mode == "Floor" else st.lift
    decision = auto.decide(rule, fc, active, held, lift, now, SETTINGS)
    st.lift = auto.LiftState(decision.lift, decision.lift_until_s)
    desired = auto.desired_hpa(tenant, namespace, rule, decision.floor, st.lift)
    problem, repaired = None, None
    if not others:
        problem, repaired = await _apply_hpa(desired, observed, st, tenant, logger)
    elif observed is not None:
        # Two HPAs on one target disable each other: the other scaler wins, ours goes until it is gone.
        await kube.delete("HorizontalPodAutoscaler", rule.name, namespace)
        logger.info("deleted HorizontalPodAutoscaler %s/%s: its target is also scaled by %s", namespace,
                    rule.name, ", ".join(others))
        st.created = False

    per_pod = rule.capacity_per_replica * rule.target_utilization / 100.0
    labels_ = (tenant, rule.name)
    GATE.labels(*labels_).set(1.0 if active else 0.0)
    TARGET_REPLICAS.labels(*labels_).set(held)
    verdict = st.fitted.verdict if st.fitted is not None else None
    if verdict is not None:
        FORECAST_MAE.labels(*labels_).set(verdict.scores.mae)
        FORECAST_SKILL.labels(*labels_).set(verdict.scores.skill)
    FLOOR.labels(*labels_).set(decision.floor)
    FORECAST_DEMAND.labels(*labels_).set(decision.floor * per_pod if decision.lift else 0.0)
    if fc is not None:
        FORECAST_PEAK.labels(*labels_, "0.5").set(fc.median)
        FORECAST_PEAK.labels(*labels_, f"{SETTINGS.quantile:g}").set(fc.upper)
        RECENT.labels(*labels_).set(fc.recent)
        ANOMALY_SCORE.labels(*labels_).set(fc.anomaly)

    entry = auto.publish(st.published, auto.rule_status(rule, st.fitted, fc, decision, note), SETTINGS.tolerance)
    st.published = entry
    hpa_problems = [] if others else scalers.hpa_problems(observed)
    entry = {**entry, **({"scaledBy": others} if others else {}), **({"hpaConditions": hpa_problems} if hpa_problems else {})}
    blocked = scalers.blocking(hpa_problems)
    out = _RuleOutcome(entry, waiting=waiting, anomalous=bool(fc and fc.anomaly > SETTINGS.anomaly_threshold))
    ref = f"{rule.target_ref.kind} {rule.target_ref.name}"
    if problem:
        out.ok, out.reason, out.message = False, "HPAConflict", f"{rule.name}: {problem}"
    elif others:
        out.ok, out.reason, out.stalled = False, "TargetAlreadyScaled", True
        out.message = (f"{rule.name}: {ref} is already scaled by {', '.join(others)}; the rule keeps no "
                       "HorizontalPodAutoscaler until that scaler is removed")
    elif target is None:
        # Someone has to deploy the workload: Stalled, and the next verify pass looks again (a retry
        # with backoff here was a write loop; the fuzz test's quiet window caught it).
        out.ok, out.reason, out.stalled = False, "TargetNotFound", True
        out.message = f"{rule.name}: {ref} not found in {namespace}; the rule waits for it (checked every verify pass)"
    elif blocked:
        out.ok, out.reason, out.stalled = False, blocked["reason"] or "HPANotScaling", True
        out.message = f"{rule.name}: its HPA has {blocked['type']}=False ({blocked['reason']}): {blocked['message']}"
    else:
        gate = entry["gate"]
        how = f"predictive ({st.fitted.model_name})" if active and st.fitted else auto.short_reason(gate["reason"])
        if waiting:
            how = "fitting the first model"
        out.message = f"{rule.name}: {rule.mode}, {how}"
        if rule.mode == "Floor" and decision.lift:
            out.message += f", minReplicas lifted to {decision.floor}"
        out.message += "".join(f"; its HPA has {p['type']}=False ({p['reason']})" for p in hpa_problems)
    return out, repaired


async def ensure(tenant: str, uid: str, namespace: str, spec: TenantSpec,
                 logger: logging.Logger) -> tuple[list[PartResult], dict[str, Any], list[str]]:
    """(parts, status fields, repaired). Parts: AutoscalingReady and, informational, AnomalyDetected."""
    rules = list(spec.autoscaling)
    had = bool(rules_state.cached_rules(tenant))
    if not rules and not had and tenant in _seen:
        return [], {"autoscaling": None}, []
    _seen.add(tenant)
    now = time.time()
    try:
        # Every HPA in the namespace (one list call): ours, and any other on a rule's target.
        live = await kube.list_objects("HorizontalPodAutoscaler", namespace)
        scaled = await _scaled_objects(namespace) if rules else []
    except kube.KubeError as exc:
        if not rules:
            return [], {"autoscaling": None}, []
        return [PartResult(CONDITION, False, "ApiError", f"API server said {exc}")], {}, []
    ours = [h for h in live if _owned(h, tenant) and auto.RULE_LABEL in (h["metadata"].get("labels") or {})]
    foreign = [h for h in live if h not in ours]
    by_name = {h["metadata"]["name"]: h for h in ours}
    repaired: list[str] = []
    wanted = {r.name for r in rules}
    for name, hpa in by_name.items():
        if name not in wanted and _owned(hpa, tenant):
            await kube.delete("HorizontalPodAutoscaler", name, namespace)
            logger.info("deleted HorizontalPodAutoscaler %s/%s (its rule is gone)", namespace, name)
    for cached in rules_state.cached_rules(tenant):
        if cached not in wanted:
            forget(tenant, cached)
    if not rules:
        return [], {"autoscaling": None}, []

    outcomes: list[_RuleOutcome] = []
    for i, rule in enumerate(rules):
        others = scalers.other_scalers(rule, rules[:i], foreign, scaled)
        try:
            out, fixed = await _rule(tenant, namespace, rule, by_name.get(rule.name), others, now, logger)
        except kube.KubeError as exc:
            if exc.status == 422:
                # The API server refused the HPA this rule makes (an averageValue it cannot hold, say):
                # asking again gets the same answer, so Stalled until someone edits the rule, never a
                # retry loop (the fuzz test's quiet window caught one).
                out = _RuleOutcome({"name": rule.name, "mode": rule.mode}, False, "InvalidSpec",
                                   f"{rule.name}: the API server refused its HorizontalPodAutoscaler ({exc.message}); "
                                   "edit the rule", stalled=True)
            else:
                out = _RuleOutcome({"name": rule.name, "mode": rule.mode}, False, "ApiError",
                                   f"{rule.name}: API server said {exc}")
            fixed = None
        except ValueError as exc:
            # A rule the forecaster cannot shape (the CRD's CEL refuses these at apply; an object stored
            # before that rule existed still arrives): Stalled until someone edits it, never a retry loop.
            out, fixed = _RuleOutcome({"name": rule.name, "mode": rule.mode}, False, "InvalidSpec",
                                      f"{rule.name}: {exc}", stalled=True), None
        outcomes.append(out)
        if fixed:
            repaired.append(fixed)

    failing = [o for o in outcomes if not o.ok]
    waiting = [o for o in outcomes if o.ok and o.waiting]
    message = "; ".join(o.message for o in outcomes)
    if failing:
        part = PartResult(CONDITION, False, failing[0].reason, message, stalled=all(o.stalled for o in failing))
    elif waiting:
        part = PartResult(CONDITION, False, "FittingModels", message)
    else:
        predictive = any(o.entry.get("gate", {}).get("active") for o in outcomes)
        part = PartResult(CONDITION, True, "Predictive" if predictive else "Reactive", message)
    anomalous = [o.entry["name"] for o in outcomes if o.anomalous]
    anomaly = PartResult(ANOMALY, bool(anomalous), "AnomalyScoreHigh" if anomalous else "NoAnomaly",
                         (f"anomaly score above {SETTINGS.anomaly_threshold:g} for: {', '.join(anomalous)}"
                          if anomalous else f"every rule's anomaly score is at most {SETTINGS.anomaly_threshold:g}"),
                         informational=True)
    return [part, anomaly], {"autoscaling": [o.entry for o in outcomes]}, repaired
