"""Walk-forward forecasts for every policy of the bench, aligned on the trace's decision minutes.

Why this exists: the simulator needs, for each minute of the test span, what each policy would
have forecast then, using only data it could have had (60 s metric delay, models refit on a
schedule on the last 14 days). Producing those arrays up front, vectorised, keeps a 7-day x
15-second simulation per policy to well under a second; the forecasts are causal because every
feature only looks backwards from its position.

"ours" is the operator's own code path: the operator's refit (:func:`fit_rule`: rolling-origin
backtests, blend, gate, fallback, final fit; between model refits a re-score of the backtest) on the
last fortnight, then the fitted :class:`BlendedModel` forecasts every minute until the next refit and
that refit's gate verdict says whether the floor may act, which holds the lift until the operator's
:func:`peak_timing` says the peak is over, as in handlers/autoscaling_part.py. The one difference:
the operator refits hourly (re-scores, and fits the models once a day), the bench every
``rescore_hours`` (3 by default: a re-score costs 0.03 s on an idle machine and 0.2 s on a loaded
one, and a run has a week of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tenancy_operator.forecasting import (
    FeatureConfig,
    linear_trend_peak,
    persistence_peak,
    target_peaks,
)
from tenancy_operator.reconcile.rule_forecast import Settings, fit_rule, peak_timing

from .traces import MINUTES_PER_DAY, Trace

__all__ = ["PolicyForecasts", "build_forecasts", "DATA_AGE_MIN"]

DATA_AGE_MIN = 2  # at decision minute t the newest complete, delivered sample is minute t - 2
TRAIN_DAYS = 14


@dataclass
class PolicyForecasts:
    cfg: FeatureConfig
    test_start: int  # first test decision minute
    positions: np.ndarray  # forecast positions (decision minute - DATA_AGE_MIN) of the test span
    actual: np.ndarray
    persistence: np.ndarray
    peak_end_s: np.ndarray
    """When each position's predicted peak is over (seconds after the decision): the operator's
    :func:`peak_timing`, which bounds how long a lift is held."""
    median: dict[str, np.ndarray] = field(default_factory=dict)
    upper: dict[str, np.ndarray] = field(default_factory=dict)
    active: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    mase_scale: float = float("nan")

    def test_slice(self) -> slice:
        first = int(np.searchsorted(self.positions, self.test_start - DATA_AGE_MIN))
        return slice(first, len(self.positions))


def _walk_forward_rule(y: np.ndarray, t0: float, positions: np.ndarray, cfg: FeatureConfig, settings: Settings,
                       rescore_hours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list]:
    """The operator's refits (:func:`fit_rule`, each given the one before) every ``rescore_hours``
    through the test span: a refit fits the models when the last model refit is
    ``settings.model_refit_s`` old and re-scores otherwise, as the operator's hourly refits do. Each
    refit's model serves until the next one, its gate verdict deciding whether the floor may act (no
    model: reactive, nothing acts). Returns median, upper, active, the reason of each refit that fit
    models, and (decision minute, first sample of its series, final models by name) of each of those:
    the plain models the baselines serve are the same fits."""
    med = np.full(len(positions), np.nan)
    up = np.full(len(positions), np.nan)
    active = np.zeros(len(positions), dtype=bool)
    reasons, fits = [], []
    step = 60 * rescore_hours
    decisions = list(range(TRAIN_DAYS * MINUTES_PER_DAY, int(positions[-1]) + DATA_AGE_MIN + 1, step))
    fitted = None
    for k, minute in enumerate(decisions):
        end = minute - DATA_AGE_MIN + 1  # samples known at this decision minute
        start = max(0, end - settings.history_s // 60)
        fitted = fit_rule(y[start:end], t0 + 60.0 * start, cfg, settings, now_s=t0 + 60.0 * minute, previous=fitted)
        if fitted.models_fitted_at == t0 + 60.0 * minute:
            reasons.append(f"minute {minute}: {fitted.reason}")
            fits.append((minute, start, fitted.models))
        nxt = decisions[k + 1] if k + 1 < len(decisions) else 10**12
        sel = (positions >= minute - DATA_AGE_MIN) & (positions < nxt - DATA_AGE_MIN)
        if fitted.model is not None and sel.any():
            # from the series the operator holds: the last fortnight (the filter of Holt-Winters
            # starts from its first sample; the features only look back from each position)
            med[sel], up[sel] = fitted.model.predict_batch(y[start:], t0 + 60.0 * start, positions[sel] - start)
            active[sel] = fitted.active
    return med, up, active, reasons, fits


def _baseline(name: str, fits: list, y: np.ndarray, t0: float, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One plain model's forecasts: each model refit's final fit of ``name`` (on the last fortnight)
    serving until the next model refit."""
    med = np.full(len(positions), np.nan)
    up = np.full(len(positions), np.nan)
    for k, (minute, start, models) in enumerate(fits):
        nxt = fits[k + 1][0] if k + 1 < len(fits) else 10**12
        sel = (positions >= minute - DATA_AGE_MIN) & (positions < nxt - DATA_AGE_MIN)
        if name in models and sel.any():
            med[sel], up[sel] = models[name].predict_batch(y[start:], t0 + 60.0 * start, positions[sel] - start)
    return med, up


def build_forecasts(trace: Trace, start_delay_s: int, metric_delay_s: int = 60, window: int = 5,
                    quantile: float = 0.9, tolerance: float = 0.1, refit_every_days: int = 1,
                    rescore_hours: int = 3, settings: Settings | None = None) -> PolicyForecasts:
    lead = -(-(start_delay_s + metric_delay_s) // 60)
    cfg = FeatureConfig(horizon=lead + DATA_AGE_MIN, window=window)
    settings = settings or Settings(quantile=quantile, tolerance=tolerance, model_refit_s=86400.0 * refit_every_days)
    y = trace.y
    n = len(y)
    positions = np.arange(TRAIN_DAYS * MINUTES_PER_DAY - DATA_AGE_MIN, n - DATA_AGE_MIN, dtype=np.int64)
    ypad = np.concatenate([y, np.full(cfg.horizon + cfg.window, y[-1])])
    actual = target_peaks(ypad, positions, cfg)
    peak_end = np.array([peak_timing(y, trace.t0_s, cfg, int(p))[1] - trace.t0_s - 60.0 * (p + DATA_AGE_MIN)
                         for p in positions])
    pf = PolicyForecasts(cfg, TRAIN_DAYS * MINUTES_PER_DAY, positions, actual,
                         persistence_peak(y, positions, cfg), peak_end)
    # MASE scale: in-sample MAE of the naive (persistence) forecast of the same target.
    tr_pos = np.arange(MINUTES_PER_DAY, TRAIN_DAYS * MINUTES_PER_DAY - cfg.horizon - cfg.window, dtype=np.int64)
    pf.mase_scale = float(np.nanmean(np.abs(target_peaks(y, tr_pos, cfg) - persistence_peak(y, tr_pos, cfg))))

    lin = linear_trend_peak(y, positions, cfg)
    pf.median["linear"], pf.upper["linear"] = lin, lin
    pf.median["oracle"], pf.upper["oracle"] = actual, actual
    med, up, act, pf.reasons, fits = _walk_forward_rule(y, trace.t0_s, positions, cfg, settings, rescore_hours)
    for name, model in (("qgbm", "quantile-gbm"), ("holt_winters", "holt-winters")):
        pf.median[name], pf.upper[name] = _baseline(model, fits, y, trace.t0_s, positions)
    pf.median["ours"], pf.upper["ours"], pf.active["ours"] = med, up, act
    for k in ("linear", "qgbm", "holt_winters", "oracle"):
        pf.active[k] = np.ones(len(positions), dtype=bool)
    return pf
