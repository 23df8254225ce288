"""What the autoscaling part keeps per rule between passes: the metric series, the fitted model, its
refit task and the rule's gauges; and how the series is read and the model refit.

Split from :mod:`.autoscaling_part`, which runs the pass (forecast, floor, HPA, status) over this.
Models live in memory only: a restarted operator refits every rule, one fit at a time per event loop,
in a worker thread, while the previous model (if any) keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import kopf
import numpy as np
from prometheus_client import Gauge

from ..api.tenant import AutoscalingRule
from ..backends import prometheus
from ..forecasting import FeatureConfig
from ..reconcile import autoscaling as auto
from ..reconcile import rule_forecast as rf
from .loop_slots import LoopSemaphore

__all__ = ["SETTINGS", "RETRY_FETCH_S", "RuleState", "rule_state", "cached_rules", "forget", "history", "refit",
           "append_new", "needs_refit"]

log = logging.getLogger(__name__)


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


SETTINGS = rf.Settings(refit_interval_s=_float("TENANCY_FORECAST_REFIT_INTERVAL", 3600.0),
                       model_refit_s=_float("TENANCY_FORECAST_MODEL_REFIT_INTERVAL", 86400.0))
RETRY_FETCH_S = 30.0
"""After a failed history read or fit, wait this long before the next attempt."""
_L = ("tenant", "rule")
FORECAST_PEAK = Gauge("tenancy_autoscaling_forecast_peak", "Forecast peak demand over the rule's window",
                      [*_L, "quantile"])
RECENT = Gauge("tenancy_autoscaling_recent_demand", "Recent maximum of the rule's demand (what a reactive HPA sees)", _L)
FLOOR = Gauge("tenancy_autoscaling_floor_replicas", "minReplicas the forecast asks for (Floor: what the HPA holds)", _L)
GATE = Gauge("tenancy_autoscaling_gate_active", "1 while the predictability gate lets the forecast act", _L)
ANOMALY_SCORE = Gauge("tenancy_autoscaling_anomaly_score", "Anomaly score in [0, 1] of the newest realised window", _L)
FORECAST_DEMAND = Gauge(auto.FORECAST_METRIC, "Demand the forecast floor stands for (0 when none); "
                        "the HPA of an ExternalMetric rule reads it through an adapter", _L)
REFIT_SECONDS = Gauge("tenancy_autoscaling_refit_seconds", "Duration of the rule's last refit", _L)
FORECAST_MAE = Gauge("tenancy_autoscaling_forecast_mae",
                     "Mean absolute error of the median forecast on the last refit's backtest", _L)
FORECAST_SKILL = Gauge("tenancy_autoscaling_forecast_skill",
                       "1 - pinball loss / persistence's on the last backtest (above 0: beats the recent maximum)", _L)
TARGET_REPLICAS = Gauge("tenancy_autoscaling_target_replicas", "Replicas the rule's target holds (spec.replicas)", _L)
_GAUGES = (RECENT, FLOOR, GATE, ANOMALY_SCORE, FORECAST_DEMAND, REFIT_SECONDS, FORECAST_MAE, FORECAST_SKILL,
           TARGET_REPLICAS)


@dataclass
class RuleState:
    """What survives between passes for one rule: its series, model and what status last said."""

    key: tuple[str, str, str]
    cfg: FeatureConfig
    t0: float = 0.0
    y: np.ndarray | None = None
    fitted: rf.FittedRule | None = None
    task: asyncio.Task | None = None
    last_attempt: float = 0.0
    error: str | None = None
    residuals: np.ndarray = field(default_factory=lambda: np.array([]))
    naive_residuals: np.ndarray = field(default_factory=lambda: np.array([]))
    scored_upto: int = -1
    """Absolute sample index (from the epoch, in steps) of the newest residual already recorded."""
    lift: auto.LiftState = field(default_factory=auto.LiftState)
    published: dict[str, Any] | None = None
    created: bool = False
    target_utilisation: float = 0.7
    """The rule's HPA target (a share), read on every pass: the next refit sizes the ramp hold by it."""

    @property
    def last_ts(self) -> float | None:
        return None if self.y is None or not len(self.y) else self.t0 + SETTINGS.step_s * (len(self.y) - 1)


_states: dict[tuple[str, str], RuleState] = {}
_fit_slot = LoopSemaphore(1)
"""One model fit at a time per event loop (keyed by loop: an id() of a closed loop could be reused)."""


def rule_state(tenant: str, rule: AutoscalingRule) -> RuleState:
    key = (rule.metric.prometheus, rule.lead_time, rule.window)
    st = _states.get((tenant, rule.name))
    if st is None or st.key != key:
        if st is not None and st.task is not None:
            st.task.cancel()
        st = RuleState(key, rf.feature_config(rule.lead_time, rule.window, SETTINGS.step_s),
                       created=st.created if st else False)
        _states[(tenant, rule.name)] = st
    st.target_utilisation = rule.target_utilization / 100.0
    return st


def cached_rules(tenant: str) -> list[str]:
    """Names of the tenant's rules with a cached state (a series, a model or a refit task)."""
    return [rule for t, rule in _states if t == tenant]


def forget(tenant: str, rule: str | None = None) -> None:
    """Drop cached models and metric series of a tenant's rule (or all its rules)."""
    for key in [k for k in _states if k[0] == tenant and (rule is None or k[1] == rule)]:
        st = _states.pop(key)
        if st.task is not None:
            st.task.cancel()
        for g in _GAUGES:
            try:
                g.remove(*key)
            except KeyError:
                pass
        for q in ("0.5", f"{SETTINGS.quantile:g}"):
            try:
                FORECAST_PEAK.remove(*key, q)
            except KeyError:
                pass


@kopf.on.cleanup()
async def _close(**_: Any) -> None:
    for st in _states.values():
        if st.task is not None:
            st.task.cancel()
    await prometheus.close()


# ------------------------------------------------------------------------------------------ data

async def history(query: str, now: float) -> tuple[float, np.ndarray]:
    step = SETTINGS.step_s
    start = math.floor((now - SETTINGS.history_s) / step) * step
    points = await prometheus.query_range(query, start, now, step)
    if not points:
        raise prometheus.PrometheusError(f"the query returned no data over the last {SETTINGS.history_s // 86400} days")
    t0 = points[0][0]
    n = int(round((points[-1][0] - t0) / step)) + 1
    return t0, rf.regularize(points, t0, step, n)


async def refit(st: RuleState, tenant: str, rule: str) -> None:
    st.last_attempt = time.time()
    try:
        t0, y = await history(st.key[0], time.time())
        async with _fit_slot.hold():
            settings = replace(SETTINGS, target_utilisation=st.target_utilisation)
            fitted = await asyncio.to_thread(rf.fit_rule, y, t0, st.cfg, settings, None, st.fitted)
    except prometheus.PrometheusError as exc:
        st.error = str(exc)
        log.warning("autoscaling %s/%s: history unavailable: %s", tenant, rule, exc, extra={"tenant": tenant})
        return
    except Exception as exc:  # a model bug must not take the operator down; say so in status
        st.error = f"refit failed: {exc}"
        log.exception("autoscaling %s/%s: refit failed", tenant, rule, extra={"tenant": tenant})
        return
    if st.y is not None and st.last_ts is not None and st.last_ts > t0 + SETTINGS.step_s * (len(y) - 1):
        # Passes appended newer samples while the fit ran: keep them.
        extra = int(round((st.last_ts - (t0 + SETTINGS.step_s * (len(y) - 1))) / SETTINGS.step_s))
        y = np.concatenate([y, st.y[-extra:]])
    st.t0, st.y, st.fitted, st.error = t0, y, fitted, None
    st.residuals = fitted.residuals[-SETTINGS.anomaly.window:]
    st.naive_residuals = fitted.naive_residuals[-SETTINGS.anomaly.window:]
    REFIT_SECONDS.labels(tenant, rule).set(fitted.fit_seconds)
    how = "models refit" if fitted.models_fitted_at == fitted.fitted_at else "backtest re-scored"
    log.info("autoscaling %s/%s: refit (%s) on %d samples in %.2fs: %s", tenant, rule, how, fitted.samples,
             fitted.fit_seconds, fitted.reason, extra={"tenant": tenant})


async def append_new(st: RuleState, now: float) -> None:
    """The samples since the last pass (usually zero or one)."""
    last = st.last_ts
    if last is None or st.y is None:
        return
    step = SETTINGS.step_s
    points = await prometheus.query_range(st.key[0], last + step, now, step)
    if not points:
        return
    n = int(round((points[-1][0] - last) / step))
    if n <= 0:
        return
    new = rf.regularize(points, last + step, step, n, carry=float(st.y[-1]))
    y = np.concatenate([st.y, new])
    keep = SETTINGS.history_s // step + 1
    if len(y) > keep:
        st.t0 += step * (len(y) - keep)
        y = y[-keep:]
    st.y = y


def needs_refit(st: RuleState, now: float) -> bool:
    if st.task is not None and not st.task.done():
        return False
    if st.fitted is None:
        return st.last_attempt == 0.0 or now - st.last_attempt >= RETRY_FETCH_S
    due = now - st.fitted.fitted_at >= SETTINGS.refit_interval_s or _hold_outdated(st)
    return due and now - st.last_attempt >= RETRY_FETCH_S


def _hold_outdated(st: RuleState) -> bool:
    """The served model holds ramps sized for another target utilisation than the rule's now (its
    `targetUtilization` changed): re-score (cheap) rather than serve it until the hourly refit."""
    model = st.fitted.model if st.fitted is not None else None
    if model is None or model.hold_tolerance is None:
        return False
    return model.hold_cfg != rf.hold_config(st.target_utilisation)
