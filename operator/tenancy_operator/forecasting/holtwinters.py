"""Additive Holt-Winters with a daily season, written in numpy/plain Python (no statsmodels).

Why this exists: Holt-Winters is the classical baseline the quantile models must beat, and it is
also a useful member of the gated choice: it adapts its level within minutes, so it is hard to beat
right after holidays and lasting level shifts, where tree models only see unfamiliar ratios.

The filter is causal. After it runs, the forecast of ``y[i + h]`` made at ``i`` is
``level[i] + h * trend[i] + season_at[i + h - m]`` (``season_at[j]`` is the seasonal term of ``j``'s
phase as last updated at ``j``), so peaks over a window are vectorised over all positions at once.
Smoothing constants come from a small grid, scored on the peak target itself; the upper quantile is
the point forecast scaled by the empirical quantile of the relative peak residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import FeatureConfig, target_peaks
from .models import PeakForecast

__all__ = ["HWParams", "HoltWinters", "holt_winters_filter"]

DEFAULT_GRID: tuple[tuple[float, float, float], ...] = (
    (0.1, 0.0, 0.1),
    (0.3, 0.0, 0.1),
    (0.3, 0.0, 0.3),
    (0.6, 0.0, 0.3),
    (0.6, 0.01, 0.1),
)


@dataclass(frozen=True)
class HWParams:
    alpha: float
    beta: float
    gamma: float


def holt_winters_filter(y: np.ndarray, m: int, p: HWParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run additive Holt-Winters over ``y``; return (level, trend, season_at), each of length n."""
    yl = np.asarray(y, dtype=float).tolist()
    n = len(yl)
    if n < 2 * m:
        raise ValueError(f"Holt-Winters needs at least two seasons ({2 * m} samples), got {n}")
    l0 = sum(yl[:m]) / m
    season = [v - l0 for v in yl[:m]]
    levels = [l0] * n
    trends = [0.0] * n
    s_at = season + [0.0] * (n - m)
    a, b, g = p.alpha, p.beta, p.gamma
    lev, tr = l0, 0.0
    for t in range(m, n):
        j = t - m * (t // m)
        s_old = season[j]
        v = yl[t]
        new_lev = a * (v - s_old) + (1.0 - a) * (lev + tr)
        tr = b * (new_lev - lev) + (1.0 - b) * tr
        lev = new_lev
        s_new = g * (v - lev) + (1.0 - g) * s_old
        season[j] = s_new
        s_at[t] = s_new
        levels[t] = lev
        trends[t] = tr
    return np.array(levels), np.array(trends), np.array(s_at)


def _peaks(levels: np.ndarray, trends: np.ndarray, s_at: np.ndarray, idx: np.ndarray, m: int, cfg: FeatureConfig) -> np.ndarray:
    h = np.arange(cfg.horizon, cfg.horizon + cfg.window)
    pos = idx[:, None] + h[None, :] - m
    ok = pos[:, 0] >= 0
    pos = np.clip(pos, 0, None)
    pts = levels[idx][:, None] + h[None, :] * trends[idx][:, None] + s_at[pos]
    return np.where(ok, np.maximum(pts.max(axis=1), 0.0), np.nan)


class HoltWinters:
    """Holt-Winters peak forecaster with an empirical upper quantile."""

    name = "holt-winters"

    def __init__(self, cfg: FeatureConfig, quantile: float = 0.9, grid: tuple[tuple[float, float, float], ...] = DEFAULT_GRID) -> None:
        self.cfg = cfg
        self.quantile = quantile
        self.grid = grid
        self.m = cfg.day
        self.params = HWParams(*grid[0])
        self.upper_factor = 1.0
        self.fitted = False

    def fit(self, y: np.ndarray, t0_s: float = 0.0) -> HoltWinters:
        y = np.asarray(y, dtype=float)
        n, m = len(y), self.m
        idx = np.arange(max(2 * m, n // 2), n - self.cfg.horizon - self.cfg.window + 1, 2, dtype=np.int64)
        if len(idx) < 50:
            raise ValueError("not enough history to fit Holt-Winters")
        actual = target_peaks(y, idx, self.cfg)
        best: tuple[float, HWParams, np.ndarray] | None = None
        for a, b, g in self.grid:
            p = HWParams(a, b, g)
            lv, tr, sa = holt_winters_filter(y, m, p)
            pred = _peaks(lv, tr, sa, idx, m, self.cfg)
            err = float(np.nanmean(np.abs(actual - pred)))
            if best is None or err < best[0]:
                best = (err, p, pred)
        assert best is not None
        _, self.params, pred = best
        rel = actual / np.maximum(pred, self.cfg.level_floor) - 1.0
        self.upper_factor = float(1.0 + max(np.nanquantile(rel, self.quantile), 0.0))
        self.fitted = True
        return self

    def predict_batch(self, y: np.ndarray, t0_s: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median (point) and upper peak forecasts at every position in ``idx`` (one filter pass)."""
        lv, tr, sa = holt_winters_filter(np.asarray(y, dtype=float), self.m, self.params)
        pt = _peaks(lv, tr, sa, np.asarray(idx, dtype=np.int64), self.m, self.cfg)
        return pt, pt * self.upper_factor

    def predict(self, y: np.ndarray, t0_s: float = 0.0) -> PeakForecast:
        med, up = self.predict_batch(y, t0_s, np.array([len(y) - 1]))
        return PeakForecast(median=float(med[0]), upper=float(up[0]), quantile=self.quantile, model=self.name)
