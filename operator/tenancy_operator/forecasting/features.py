"""Feature rows for peak-demand forecasting, built from a regularly sampled metric series.

Why this exists: every model in this package (and every backtest) must see exactly the same view
of the past, or a backtest would measure a different thing from what runs in the operator. The
features answer "what happened just now, and what happened around this time one day and one week
ago", all causal (position ``i`` only ever looks at ``y[: i + 1]``).

Everything is expressed relative to the current level ``L`` (mean of the last few samples), so a
lasting level shift or a growing tenant does not push the trees outside the range they were trained
on. The target is the peak of ``y`` over ``[i + horizon, i + horizon + window)``, also relative to
``L``; :func:`peak_from_relative` maps a model output back to demand units.

Missing history (less than a week, say) becomes NaN, which scikit-learn's histogram gradient
boosting handles natively.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "FeatureConfig",
    "feature_names",
    "build_features",
    "relative_target",
    "target_peaks",
    "peak_from_relative",
    "recent_level",
    "rolling_max",
    "step_index",
]

_BATCH_THRESHOLD = 48


@dataclass(frozen=True)
class FeatureConfig:
    """Shape of the problem: sample step, forecast horizon and window, and which lags to use.

    ``horizon`` counts steps from the last observed sample to the start of the target window, so it
    already includes the metric delay; ``window`` is the width of the target window in steps.
    """

    step_s: int = 60
    horizon: int = 4
    window: int = 5
    lags: tuple[int, ...] = (0, 1, 2, 3, 5, 10, 15, 30, 60)
    rolling: tuple[int, ...] = (5, 15, 60)
    level_span: int = 5
    local_peak_halfwidth: int = 30
    level_floor: float = 1e-3
    # Day-of-week terms. Off by default: with two weeks of history each weekday is two examples, so
    # the trees memorise single days (one Thursday that was a holiday made every later Thursday's
    # 08:00 ramp a coin flip); the week-ago features carry the weekly pattern without that.
    day_of_week: bool = False

    @property
    def day(self) -> int:
        return 86400 // self.step_s

    @property
    def week(self) -> int:
        return 7 * self.day

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.window < 1:
            raise ValueError("horizon and window must be at least one step")
        if self.horizon + self.window + self.local_peak_halfwidth > self.day:
            raise ValueError("horizon + window + local_peak_halfwidth must fit inside one day")


def step_index(t_s: float, step_s: int) -> int:
    """The number of whole steps of ``step_s`` seconds since the epoch nearest to Unix time ``t_s``,
    a half step rounding up. (Python's ``round`` rounds half to even: samples 30 s past the minute
    fell on the minute before or after by the parity of the first one, so a window sliding by a
    minute moved its day boundaries and seasonal phase by one step every other minute.)"""
    return math.floor(t_s / step_s + 0.5)


def feature_names(cfg: FeatureConfig) -> list[str]:
    names = ["level_abs_rel"]
    names += [f"lag_{k}" for k in cfg.lags]
    for w in cfg.rolling:
        names += [f"rmax_{w}", f"rmean_{w}", f"rstd_{w}"]
    for tag in ("day", "week"):
        names += [f"{tag}_rise", f"{tag}_local_rise", f"{tag}_growth", f"{tag}_at_target", f"{tag}_at_target_abs"]
    names += ["any_rise", "any_at_target"]
    names += ["tod_sin", "tod_cos"]
    if cfg.day_of_week:
        names += ["dow_sin", "dow_cos"]
    return names


def _cums(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c1 = np.concatenate(([0.0], np.cumsum(y)))
    c2 = np.concatenate(([0.0], np.cumsum(y * y)))
    return c1, c2


def _window_mean_std(c1: np.ndarray, c2: np.ndarray, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of y[e - width + 1 : e + 1]; NaN where the window starts before the series."""
    starts = ends - width + 1
    ok = (starts >= 0) & (ends + 1 < len(c1))
    s = np.clip(starts, 0, len(c1) - 1)
    e = np.clip(ends + 1, 0, len(c1) - 1)
    n = np.maximum(e - s, 1)
    m = (c1[e] - c1[s]) / n
    v = np.maximum((c2[e] - c2[s]) / n - m * m, 0.0)
    return np.where(ok, m, np.nan), np.where(ok, np.sqrt(v), np.nan)


def rolling_max(y: np.ndarray, ends: np.ndarray, width: int, cache: dict | None = None) -> np.ndarray:
    """max(y[e - width + 1 : e + 1]) for each end ``e``; NaN where that reaches outside ``y``."""
    ends = np.asarray(ends, dtype=np.int64)
    out = np.full(ends.shape, np.nan)
    ok = (ends - width + 1 >= 0) & (ends < len(y))
    if not ok.any():
        return out
    if ok.sum() <= _BATCH_THRESHOLD:
        for j in np.flatnonzero(ok):
            e = int(ends[j])
            out[j] = y[e - width + 1 : e + 1].max()
        return out
    full = None if cache is None else cache.get(width)
    if full is None:
        full = sliding_window_view(y, width).max(axis=1)
        if cache is not None:
            cache[width] = full
    out[ok] = full[ends[ok] - width + 1]
    return out


def recent_level(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The current level L at each position: mean of the last ``level_span`` samples."""
    c1, c2 = _cums(np.asarray(y, dtype=float))
    m, _ = _window_mean_std(c1, c2, np.asarray(idx, dtype=np.int64), cfg.level_span)
    return m


def _time_terms(t0_s: float, idx: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    # Time of the middle of the target window; day of week with 1970-01-01 (a Thursday) -> 3.
    t = t0_s + (idx + cfg.horizon + cfg.window / 2.0) * cfg.step_s
    tod = np.mod(t, 86400.0) / 86400.0
    dow = (np.floor(t / 86400.0) + 3.0) % 7.0
    two_pi = 2.0 * math.pi
    cols = [np.sin(two_pi * tod), np.cos(two_pi * tod)]
    if cfg.day_of_week:
        cols += [np.sin(two_pi * dow / 7.0), np.cos(two_pi * dow / 7.0)]
    return np.stack(cols, axis=1)


def build_features(y: np.ndarray, t0_s: float, idx: np.ndarray, cfg: FeatureConfig, scale: float) -> np.ndarray:
    """Feature matrix, one row per position in ``idx`` (the index of the last observed sample).

    ``t0_s`` is the Unix time of ``y[0]``; ``scale`` is a typical demand level (fixed at fit time)
    used only for the absolute-level feature.
    """
    y = np.asarray(y, dtype=float)
    idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    c1, c2 = _cums(y) if len(idx) > _BATCH_THRESHOLD else _cums(y[: int(idx.max()) + 1])
    cache: dict = {}
    level, _ = _window_mean_std(c1, c2, idx, cfg.level_span)
    lev = np.maximum(np.nan_to_num(level, nan=cfg.level_floor), cfg.level_floor)
    cols: list[np.ndarray] = [level / max(scale, cfg.level_floor)]
    for k in cfg.lags:
        j = idx - k
        v = np.where(j >= 0, y[np.clip(j, 0, None)], np.nan)
        cols.append(v / lev - 1.0)
    for w in cfg.rolling:
        mx = rolling_max(y, idx, w, cache)
        m, s = _window_mean_std(c1, c2, idx, w)
        cols += [mx / lev - 1.0, m / lev - 1.0, s / lev]
    h, win, hw = cfg.horizon, cfg.window, cfg.local_peak_halfwidth
    sc = max(scale, cfg.level_floor)
    rises, targets = [], []
    for period in (cfg.day, cfg.week):
        base, _ = _window_mean_std(c1, c2, idx - period, cfg.level_span)
        base = np.where(idx - period - cfg.level_span + 1 >= 0, base, np.nan)
        bden = np.maximum(np.nan_to_num(base, nan=cfg.level_floor), cfg.level_floor)
        at_target = rolling_max(y, idx - period + h + win - 1, win, cache)
        local = rolling_max(y, idx - period + h + win - 1 + hw, win + 2 * hw, cache)
        cols += [at_target / bden - 1.0, local / bden - 1.0, lev / bden - 1.0, at_target / lev - 1.0, at_target / sc]
        rises.append(at_target / bden - 1.0)
        targets.append(at_target / lev - 1.0)
    # "Either reference shows a rise": lets a tree say "yesterday was a Sunday, last week was not".
    cols += [np.fmax(rises[0], rises[1]), np.fmax(targets[0], targets[1])]
    X = np.column_stack(cols + [_time_terms(t0_s, idx, cfg)])
    return X


def target_peaks(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The true peak over ``[i + horizon, i + horizon + window)``; NaN past the end of ``y``."""
    idx = np.asarray(idx, dtype=np.int64)
    return rolling_max(np.asarray(y, dtype=float), idx + cfg.horizon + cfg.window - 1, cfg.window, {})


def relative_target(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    lev = np.maximum(np.nan_to_num(recent_level(y, idx, cfg), nan=cfg.level_floor), cfg.level_floor)
    return target_peaks(y, idx, cfg) / lev - 1.0


def peak_from_relative(rel: np.ndarray, level: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    lev = np.maximum(np.nan_to_num(level, nan=cfg.level_floor), cfg.level_floor)
    return np.maximum(lev * (1.0 + np.asarray(rel, dtype=float)), 0.0)
