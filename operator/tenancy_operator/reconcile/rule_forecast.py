"""Forecasts for one autoscaling rule, the pure part: the series, the blended model and its gate, the
forecast with its peak timing and anomaly score.

Why this exists: the handler (handlers/autoscaling_part.py) reads Prometheus and caches fitted rules;
everything between "a 1-minute series" and "a forecast the floor rule can act on" happens here, from
plain numbers, so the unit tests and the e2e exercise the same code. What the forecast does to the
HPA (floor, desired object, status) is in :mod:`.autoscaling`.

Time is a regular 1-minute series ``y`` whose first sample is at Unix time ``t0``; the forecast
made from its last sample covers ``[now + leadTime, now + leadTime + window]``: the model horizon is
the lead in steps plus one step for the age of the newest sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..api.common import parse_duration
from ..forecasting import (
    AnomalyConfig,
    BacktestScores,
    BlendedModel,
    FeatureConfig,
    GateConfig,
    GateVerdict,
    HoltWinters,
    QuantileGBM,
    RampHoldConfig,
    cap_at_seen,
    carried_days,
    choose_blend,
    consensus_scores,
    persistence_peak,
    ramp_hold,
    relative_residuals,
    scaled_residuals,
    score_backtest,
    target_peaks,
)

__all__ = [
    "Settings", "MODELS", "iso", "feature_config", "regularize", "Backtest", "FittedRule", "fit_rule", "rolling_cuts", "Forecast",
    "forecast", "peak_timing", "with_note",
]

MODELS = ("quantile-gbm", "holt-winters")


USUAL_TARGET_UTILISATION = 0.7
"""The target utilisation the hold's default ``plateau_share`` is sized for (the CRD's default 70)."""


@dataclass(frozen=True)
class Settings:
    step_s: int = 60
    history_s: int = 14 * 86400
    """How much history a refit reads (and how much the in-memory series keeps)."""
    backtest_s: int = 7 * 86400
    """The most recent span held out at each refit (at most half the history): models fit before it
    and are scored on it. A week: every weekday once, so that a rise that comes on weekdays only,
    and not on every one, is called often enough for the gate to judge it (4 days held out 1-2 such
    rises: "too few to trust", and on the development seeds of the bench's jittered_ramps the rule
    stayed reactive: 40 % and 64 % of the reactive-to-oracle gap closed at 30 s and 120 s pod start,
    100 % and 100 % with a week, 2026-12-06)."""
    backtest_origins: int = 3
    """Rolling origins across the held-out span: the models are refit at each origin and forecast
    only until the next, so the gate and the blend judge forecasts as they would have been served,
    not one model stretched over a week. Each origin costs one fit per model, once a day
    (:attr:`model_refit_s`)."""
    refit_interval_s: float = 3600.0
    """How often a rule is refit: the history read again, the backtest re-scored with the newest
    outcomes, the blend and the gate decided again."""
    model_refit_s: float = 86400.0
    """How often a refit also refits the models (each backtest origin, then the final fit on all the
    history); the refits between only re-score: the backtest positions the models forecast at the
    last model refit keep those forecasts, newer positions are forecast by the final models, which
    were fit before those outcomes. A refit that fits the models costs up to 8 model fits (seconds);
    a re-score, predictions only. Models a day old lose little: their features read the live series
    (yesterday's and last week's shape around "now", the current level)."""
    quantile: float = 0.9
    tolerance: float = 0.1
    """The HPA's tolerance: a rise is a forecast more than this share above what the HPA holds."""
    ramp_hold: bool = True
    """Each model's forecast carries the ramp hold (forecasting/ramp.py): on a day type that ramped,
    the rise is called from the earliest ramp start seen until today's ramp is observed."""
    target_utilisation: float = USUAL_TARGET_UTILISATION
    """The rule's HPA target utilisation (a share, 0-1]: the hold's upper grows with it over the usual
    0.7 (:func:`hold_config`), so the pods it holds serve the whole plateau at full utilisation while
    the HPA scales the rest on the load."""
    seen_cap: bool = True
    """Each model's forecast (after the hold) is capped at 1.2x the highest load of the history
    (forecasting/seen.py): a model extrapolating a day type it has not seen does not size a lift
    past anything the last fortnight reached."""
    stale_after_s: float = 300.0
    """Newest sample older than this: the data is stale and the rule falls back to reactive."""
    anomaly_threshold: float = 0.9
    gate: GateConfig = field(default_factory=GateConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)


def hold_config(target_utilisation: float) -> RampHoldConfig:
    """The ramp hold's settings for a rule whose HPA targets ``target_utilisation`` (a share, 0-1]:
    the held pods serve the plateau with the margin the default share has at the usual target (75%
    of the plateau at 0.7: 1.07x it at full utilisation), so above 0.7 the share grows with the
    target, up to the whole plateau (from a target of 0.94 on the margin shrinks to none at 1.0); at
    or below 0.7 the default."""
    if target_utilisation <= USUAL_TARGET_UTILISATION:
        return RampHoldConfig()
    share = RampHoldConfig.plateau_share * target_utilisation / USUAL_TARGET_UTILISATION
    return RampHoldConfig(plateau_share=min(share, 1.0))


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


@dataclass(frozen=True)
class Backtest:
    """The raw backtest forecasts of a model refit (before the ramp hold and the seen cap), kept so
    that the refits until the next one re-score them instead of refitting. ``raw[name]`` is
    (median, upper) per held-out position; position ``k``'s newest sample is at ``first_s + k * step``.
    ``trained_to_s`` is the newest sample the final models were fit on."""

    first_s: float
    raw: dict[str, tuple[np.ndarray, np.ndarray]]
    trained_to_s: float


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
    models: dict[str, Any] = field(default_factory=dict)
    """Every candidate's final model (fit on all the history), the blend's or not: a re-score
    forecasts the newest backtest positions with them."""
    backtest: Backtest | None = None
    models_fitted_at: float | None = None
    """When the models were last fit (a re-score keeps this from the refit that fit them)."""

    @property
    def active(self) -> bool:
        return bool(self.verdict and self.verdict.active)


def _no_model(cfg: FeatureConfig, reason: str, now_s: float, secs: float, n: int) -> FittedRule:
    return FittedRule(cfg, None, None, None, reason, {}, np.array([]), np.array([]), now_s, secs, n)


def _backtest_positions(n: int, cfg: FeatureConfig, settings: Settings) -> np.ndarray:
    """Held-out positions: the last ``settings.backtest_s`` (at most half the history, so that the
    first origin's model has as much to learn from as it is scored on) whose target window is
    already observed."""
    split = n - min(settings.backtest_s // cfg.step_s, n // 2)
    return np.arange(split, n - cfg.horizon - cfg.window + 1, dtype=np.int64)


def fit_rule(y: np.ndarray, t0_s: float, cfg: FeatureConfig, settings: Settings = Settings(),
             now_s: float | None = None, previous: FittedRule | None = None) -> FittedRule:
    """Backtest each candidate on the held-out recent span from ``settings.backtest_origins`` rolling
    origins, fit the blend's weights there, gate the blend on the same backtest (falling back to the
    better-calibrated single model that passes), then refit the models on all the history.

    With ``previous`` (the last refit of the same rule) younger than ``settings.model_refit_s``, the
    models are not refit: the backtest is re-scored (:attr:`Settings.model_refit_s`). CPU-bound (a
    model refit: one fit per origin and model plus the final fits; a re-score: predictions): run it
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
    positions = _backtest_positions(n, cfg, settings)
    if _can_rescore(previous, cfg, settings, now_s):
        assert previous is not None and previous.backtest is not None and previous.models_fitted_at is not None
        raw = _rescored(previous, y, t0_s, positions)
        return _judged(y, t0_s, cfg, settings, positions, raw, previous.models, previous.backtest,
                       previous.models_fitted_at, now_s, started, _hold_cache(previous, t0_s))
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    models: dict[str, Any] = {}
    errors: dict[str, str] = {}
    origins = rolling_cuts(int(positions[0]), n, settings.backtest_origins)
    for name in MODELS:
        try:
            models[name] = _make(name, cfg, settings.quantile).fit(y, t0_s)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        med, up = np.full(len(positions), np.nan), np.full(len(positions), np.nan)
        for cut, nxt in zip(origins[:-1], origins[1:], strict=True):
            sel = (positions >= cut) & (positions < nxt)
            try:
                model = _make(name, cfg, settings.quantile).fit(y[:cut], t0_s) if sel.any() else None
            except ValueError:  # too little history before an early origin (Holt-Winters: two days)
                continue  # those positions stay unscored for this model; the later origins score it
            if model is not None:
                med[sel], up[sel] = model.predict_batch(y, t0_s, positions[sel])
        raw[name] = (med, up)
    if not raw:
        return _no_model(cfg, "Reactive: no model could be fitted (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")",
                         now_s, time.perf_counter() - started, n)
    kept = Backtest(t0_s + cfg.step_s * float(positions[0]),
                    {k: (m.astype(np.float32), u.astype(np.float32)) for k, (m, u) in raw.items()},
                    t0_s + cfg.step_s * (n - 1))
    return _judged(y, t0_s, cfg, settings, positions, raw, models, kept, now_s, now_s, started, _hold_cache(previous, t0_s))


def _hold_cache(previous: FittedRule | None, t0_s: float) -> dict:
    """The ramp onsets the previous refit's model knew, of the days this series (first sample at
    ``t0_s``) no longer holds whole: the hold asks whether the same weekday ramped two weeks ago, a
    morning 14 days of history no longer reach by then (without it a weekday that skipped its ramp a
    week ago was not held: bench jittered_ramps). The days the series holds are read again from it,
    so a day first read live (across a scrape gap, say) is read again from the re-fetched history. A
    new dict: the previous model may still be serving while this refit runs."""
    cache = getattr(previous.model, "hold_cache", None) if previous is not None else None
    return carried_days(cache, t0_s) if cache else {}


def _can_rescore(previous: FittedRule | None, cfg: FeatureConfig, settings: Settings, now_s: float) -> bool:
    """Whether ``previous`` can be re-scored: its models are younger than ``settings.model_refit_s``,
    every candidate fitted, and it saw (95 % of) the whole history window. A young rule (its history
    still growing) or one whose model failed to fit refits its models every time, as before."""
    return (previous is not None and previous.backtest is not None and set(previous.models) == set(MODELS)
            and previous.models_fitted_at is not None and previous.cfg == cfg
            and previous.samples >= 0.95 * (settings.history_s // cfg.step_s)
            and 0.0 <= now_s - previous.models_fitted_at < settings.model_refit_s)


def _rescored(previous: FittedRule, y: np.ndarray, t0_s: float,
              positions: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw backtest forecasts without fitting: kept ones where the last model refit made them, the
    final models' where the target window lies wholly after what they were fit on, none between."""
    bt, cfg = previous.backtest, previous.cfg
    assert bt is not None
    times = t0_s + cfg.step_s * positions.astype(float)
    k = np.rint((times - bt.first_s) / cfg.step_s).astype(np.int64)
    fresh = times + cfg.step_s * cfg.horizon > bt.trained_to_s
    raw = {}
    for name, model in previous.models.items():
        med, up = np.full(len(positions), np.nan), np.full(len(positions), np.nan)
        if name in bt.raw:
            km, ku = bt.raw[name]
            kept = (k >= 0) & (k < len(km)) & ~fresh
            med[kept], up[kept] = km[k[kept]], ku[k[kept]]
        if fresh.any():
            med[fresh], up[fresh] = model.predict_batch(y, t0_s, positions[fresh])
        raw[name] = (med, up)
    return raw


def _judged(y: np.ndarray, t0_s: float, cfg: FeatureConfig, settings: Settings, positions: np.ndarray,
            raw: dict[str, tuple[np.ndarray, np.ndarray]], models: dict[str, Any], backtest: Backtest,
            models_fitted_at: float, now_s: float, started: float, hold_cache: dict) -> FittedRule:
    """Score the raw backtest forecasts as served (ramp hold, seen cap), choose the blend and gate it,
    and serve the blend with the final models."""
    n = len(y)
    hold = hold_config(settings.target_utilisation)
    actual = target_peaks(y, positions, cfg)
    persist = persistence_peak(y, positions, cfg)
    scores: dict[str, BacktestScores] = {}
    preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (med, up) in raw.items():
        if settings.ramp_hold:
            med, up, _ = ramp_hold(y, t0_s, positions, cfg, med, up, settings.tolerance, hold, persistence=persist,
                                   cache=hold_cache)
        if settings.seen_cap:
            med, up = cap_at_seen(y, positions, med, up, settings.history_s // cfg.step_s)
        preds[name] = (med, up)
        scores[name] = score_backtest(actual, med, up, persist, settings.quantile, settings.tolerance)
    # The blend, or the better-calibrated single model that passes when the blend does not.
    blend, verdict, (med, up) = choose_blend(actual, persist, preds, settings.quantile, settings.tolerance, settings.gate)
    scores[blend.label] = verdict.scores
    model = BlendedModel(blend, tuple(models[name] for name in blend.names),
                         settings.tolerance if settings.ramp_hold else None, hold_cache, hold_cfg=hold,
                         seen_span=settings.history_s // cfg.step_s if settings.seen_cap else None)
    residuals = scaled_residuals(actual, med, up)
    naive = relative_residuals(actual, persist)
    both = np.isfinite(residuals) & np.isfinite(naive)
    keep = settings.anomaly.window + settings.anomaly.sustain  # all the anomaly score reads
    return FittedRule(cfg, blend.label, model, verdict, verdict.reason, scores, residuals[both][-keep:],
                      naive[both][-keep:], now_s, time.perf_counter() - started, n, models, backtest,
                      models_fitted_at)


def rolling_cuts(split: int, n: int, origins: int) -> list[int]:
    """Origins ``split = c0 < c1 < ... < n`` splitting the held-out span into ``origins`` equal parts:
    the model fit on ``y[:c_k]`` forecasts positions in ``[c_k, c_{k+1})``."""
    k = max(1, min(int(origins), n - split))
    return [split + (j * (n - split)) // k for j in range(k)] + [n]


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
    med, up = fitted.model.predict_batch(y, t0_s, idx)  # the GBM predicts on one native thread itself
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


def with_note(fitted: FittedRule | None, note: str) -> FittedRule | None:
    return None if fitted is None else replace(fitted, reason=note)
