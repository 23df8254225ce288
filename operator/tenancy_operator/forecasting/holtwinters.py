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

from dataclasses import dataclass, field

import numpy as np

from .features import FeatureConfig, step_index, target_peaks
from .models import PeakForecast

__all__ = ["HWParams", "HWState", "HoltWinters", "holt_winters_filter", "holt_winters_state"]

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


_TAIL = 8


@dataclass
class HWState:
    """Holt-Winters filter state after the sample at absolute step ``last_step`` (``t / step_s``).

    ``season`` is indexed by absolute phase (``absolute step mod m``), so the state stays valid when
    the caller's history window slides forward (as a Prometheus ``query_range`` over the last 14 days
    does): one forecast then only filters the samples that arrived since the last one.
    """

    level: float
    trend: float
    season: list[float] = field(repr=False)
    last_step: int
    last_value: float
    tail: tuple[float, ...] = ()  # the last few samples filtered, newest last, to recognise the history


def holt_winters_state(y: np.ndarray, m: int, p: HWParams, first_step: int = 0) -> HWState:
    """Run the filter over ``y`` (whose first sample is at absolute step ``first_step``); final state."""
    lv, tr, sa = holt_winters_filter(y, m, p)
    n = len(y)
    season = [0.0] * m
    # The newest update of each phase is at one of the last m positions.
    for t in range(n - m, n):
        season[(first_step + t) % m] = float(sa[t])
    tail = tuple(float(v) for v in np.asarray(y, dtype=float)[-_TAIL:])
    return HWState(float(lv[-1]), float(tr[-1]), season, first_step + n - 1, float(y[-1]), tail)


def _advance(state: HWState, new: list[float], m: int, p: HWParams) -> None:
    a, b, g = p.alpha, p.beta, p.gamma
    lev, tr, season = state.level, state.trend, state.season
    t = state.last_step
    for v in new:
        t += 1
        j = t % m
        s_old = season[j]
        new_lev = a * (v - s_old) + (1.0 - a) * (lev + tr)
        tr = b * (new_lev - lev) + (1.0 - b) * tr
        lev = new_lev
        season[j] = g * (v - lev) + (1.0 - g) * s_old
    state.level, state.trend, state.last_step = lev, tr, t
    if new:
        state.last_value = float(new[-1])
        state.tail = (state.tail + tuple(float(v) for v in new))[-_TAIL:]


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
        self.state: HWState | None = None

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
        self.state = holt_winters_state(y, m, self.params, self._step(t0_s))
        self.fitted = True
        return self

    def _step(self, t0_s: float) -> int:
        return step_index(t0_s, self.cfg.step_s)

    def predict_batch(self, y: np.ndarray, t0_s: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median (point) and upper peak forecasts at every position in ``idx`` (one filter pass)."""
        lv, tr, sa = holt_winters_filter(np.asarray(y, dtype=float), self.m, self.params)
        pt = _peaks(lv, tr, sa, np.asarray(idx, dtype=np.int64), self.m, self.cfg)
        return pt, pt * self.upper_factor

    def predict(self, y: np.ndarray, t0_s: float = 0.0) -> PeakForecast:
        """One forecast from the latest sample of ``y`` (``t0_s`` is the time of ``y[0]``).

        Incremental: the filter state kept from the last call (or from :meth:`fit`) is advanced over
        the samples that arrived since, so a forecast costs microseconds, not a pass over 14 days.
        If ``y`` does not continue that state (a gap, an older window, rewritten history), the filter
        re-runs over ``y`` once.
        """
        y = np.asarray(y, dtype=float)
        n = len(y)
        first = self._step(t0_s)
        last = first + n - 1
        st = self.state
        ok = st is not None and first <= st.last_step <= last
        if ok:
            assert st is not None
            # The samples the state has already seen must be the ones at the same place in ``y``.
            end = st.last_step - first + 1
            k = min(len(st.tail), end)
            seen = y[end - k : end]
            ok = k > 0 and np.array_equal(seen, np.asarray(st.tail[-k:]), equal_nan=True)
        if ok:
            assert st is not None
            _advance(st, y[st.last_step - first + 1 :].tolist(), self.m, self.params)
        else:
            st = self.state = holt_winters_state(y, self.m, self.params, first)
        h = np.arange(self.cfg.horizon, self.cfg.horizon + self.cfg.window)
        season = st.season
        pts = [st.level + k * st.trend + season[(st.last_step + int(k)) % self.m] for k in h]
        med = max(max(pts), 0.0)
        return PeakForecast(median=float(med), upper=float(med * self.upper_factor), quantile=self.quantile, model=self.name)
