"""Walk-forward forecasts for every policy of the bench, aligned on the trace's decision minutes.

Why this exists: the simulator needs, for each minute of the test span, what each policy would
have forecast then, using only data it could have had (60 s metric delay, models refit on a
schedule on the last 14 days). Producing those arrays up front, vectorised, keeps a 7-day x
15-second simulation per policy to well under a second; the forecasts are causal because every
feature only looks backwards from its position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tenancy_operator.forecasting import (
    FeatureConfig,
    GateConfig,
    HoltWinters,
    QuantileGBM,
    cap_at_seen,
    linear_trend_peak,
    persistence_peak,
    ramp_hold,
    target_peaks,
    windowed_blend,
)

from .traces import MINUTES_PER_DAY, Trace

__all__ = ["PolicyForecasts", "build_forecasts", "ours_candidates", "DATA_AGE_MIN"]

DATA_AGE_MIN = 2  # at decision minute t the newest complete, delivered sample is minute t - 2
TRAIN_DAYS = 14
GATE_WINDOW = 7 * MINUTES_PER_DAY  # a week: every weekday once, so one holiday or one moved ramp cannot close the gate alone
FIRST_FIT_DAY = 7  # walk-forward starts after a week, so the gate has a week of backtests at day 14
GATE_EVERY = 60


@dataclass
class PolicyForecasts:
    cfg: FeatureConfig
    lead_min: int
    test_start: int  # first test decision minute
    positions: np.ndarray  # forecast positions (decision minute - DATA_AGE_MIN), backtest + test
    actual: np.ndarray
    persistence: np.ndarray
    median: dict[str, np.ndarray] = field(default_factory=dict)
    upper: dict[str, np.ndarray] = field(default_factory=dict)
    active: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    mase_scale: float = float("nan")
    fit_seconds: dict[str, list[float]] = field(default_factory=dict)

    def test_slice(self) -> slice:
        first = int(np.searchsorted(self.positions, self.test_start - DATA_AGE_MIN))
        return slice(first, len(self.positions))


def _walk_forward(model_factory, y: np.ndarray, t0: float, positions: np.ndarray, fit_days: list[int]) -> tuple[np.ndarray, np.ndarray, list[float]]:
    med = np.full(len(positions), np.nan)
    up = np.full(len(positions), np.nan)
    secs = []
    for k, d in enumerate(fit_days):
        end = d * MINUTES_PER_DAY - DATA_AGE_MIN + 1  # samples known at decision minute d*1440
        start = max(0, end - TRAIN_DAYS * MINUTES_PER_DAY)
        model = model_factory()
        t = time.perf_counter()
        model.fit(y[start:end], t0 + 60.0 * start)
        secs.append(time.perf_counter() - t)
        nxt = fit_days[k + 1] * MINUTES_PER_DAY if k + 1 < len(fit_days) else 10**12
        sel = (positions >= d * MINUTES_PER_DAY - DATA_AGE_MIN) & (positions < nxt - DATA_AGE_MIN)
        if sel.any():
            m, u = model.predict_batch(y, t0, positions[sel])
            med[sel], up[sel] = m, u
    return med, up, secs


def ours_candidates(pf: PolicyForecasts, y: np.ndarray, t0_s: float, tolerance: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each model's forecast as "ours" serves it: with the ramp hold, then capped at the highest load
    of the last fortnight plus a margin (the operator's BlendedModel and fit_rule do the same)."""
    cands = {}
    for k in ("qgbm", "holt_winters"):
        m, u, _ = ramp_hold(y, t0_s, pf.positions, pf.cfg, pf.median[k], pf.upper[k], tolerance,
                            persistence=pf.persistence)
        cands[k] = cap_at_seen(y, pf.positions, m, u, TRAIN_DAYS * MINUTES_PER_DAY)
    return cands


def build_forecasts(trace: Trace, start_delay_s: int, metric_delay_s: int = 60, window: int = 5,
                    quantile: float = 0.9, tolerance: float = 0.1, refit_every_days: int = 1,
                    gate: GateConfig | None = None) -> PolicyForecasts:
    lead = -(-(start_delay_s + metric_delay_s) // 60)
    cfg = FeatureConfig(horizon=lead + DATA_AGE_MIN, window=window)
    y = trace.y
    n = len(y)
    first_fit = FIRST_FIT_DAY
    fit_days = list(range(first_fit, n // MINUTES_PER_DAY, refit_every_days))
    if TRAIN_DAYS not in fit_days:
        fit_days = sorted(set(fit_days) | {TRAIN_DAYS})
    positions = np.arange(first_fit * MINUTES_PER_DAY - DATA_AGE_MIN, n - DATA_AGE_MIN, dtype=np.int64)
    ypad = np.concatenate([y, np.full(cfg.horizon + cfg.window, y[-1])])
    actual = target_peaks(ypad, positions, cfg)
    pf = PolicyForecasts(cfg, lead, TRAIN_DAYS * MINUTES_PER_DAY, positions, actual, persistence_peak(y, positions, cfg))
    # MASE scale: in-sample MAE of the naive (persistence) forecast of the same target.
    tr_pos = np.arange(MINUTES_PER_DAY, TRAIN_DAYS * MINUTES_PER_DAY - cfg.horizon - cfg.window, dtype=np.int64)
    pf.mase_scale = float(np.nanmean(np.abs(target_peaks(y, tr_pos, cfg) - persistence_peak(y, tr_pos, cfg))))

    lin = linear_trend_peak(y, positions, cfg)
    pf.median["linear"], pf.upper["linear"] = lin, lin
    for name, factory in (
        ("qgbm", lambda: QuantileGBM(cfg, quantile)),
        ("holt_winters", lambda: HoltWinters(cfg, quantile)),
    ):
        m, u, secs = _walk_forward(factory, y, trace.t0_s, positions, fit_days)
        pf.median[name], pf.upper[name], pf.fit_seconds[name] = m, u, secs
    pf.median["oracle"], pf.upper["oracle"] = actual, actual

    # Ours: an hourly blend of the two models, weights fitted on the last week of realised backtests;
    # each model's forecast carries the ramp hold (the operator's BlendedModel applies it the same way).
    cands = ours_candidates(pf, y, trace.t0_s, tolerance)
    dec = np.arange(0, len(positions), GATE_EVERY)
    med, up, act, pf.reasons = windowed_blend(actual, pf.persistence, cands, dec, cfg.horizon + cfg.window - 1,
                                              GATE_WINDOW, quantile, tolerance, gate)
    pf.median["ours"], pf.upper["ours"], pf.active["ours"] = med, up, act
    for k in ("linear", "qgbm", "holt_winters", "oracle"):
        pf.active[k] = np.ones(len(positions), dtype=bool)
    return pf
