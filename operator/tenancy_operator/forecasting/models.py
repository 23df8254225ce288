"""Peak-demand forecasters: scikit-learn quantile models and the simple baselines they must beat.

Why this exists: the operator lifts an HPA's floor only on a forecast of the *peak* demand over
``[now + lead, now + lead + window]``. A median model decides whether a rise is coming at all; an
upper-quantile model (q = 0.9 by default) sizes the lift, so that under-provisioning is rare without
paying for the worst case. Persistence (the recent maximum) is what a reactive HPA assumes and is the
bar the predictability gate holds every model to; seasonal-naive and linear-trend are the classic
baselines (Holt-Winters lives in :mod:`.holtwinters`).

Single predictions run with native thread pools pinned to one thread: under CPU contention,
oversubscribed OpenMP threads made one prediction about 100 times slower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from .features import (
    FeatureConfig,
    build_features,
    peak_from_relative,
    recent_level,
    relative_target,
    rolling_max,
)

__all__ = [
    "PeakForecast",
    "QuantileGBM",
    "single_threaded",
    "persistence_peak",
    "seasonal_naive_peak",
    "linear_trend_peak",
]

_controller: ThreadpoolController | None = None


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Pin BLAS/OpenMP pools to one thread for the duration (cheap after the first call)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=1):
        yield


@dataclass(frozen=True)
class PeakForecast:
    """One forecast of peak demand over the target window, in demand units."""

    median: float
    upper: float
    quantile: float
    model: str


class QuantileGBM:
    """Two histogram gradient-boosting models (median and ``quantile``) on relative peak targets."""

    name = "quantile-gbm"

    def __init__(
        self,
        cfg: FeatureConfig,
        quantile: float = 0.9,
        *,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        train_stride: int = 3,
        random_state: int = 0,
    ) -> None:
        self.cfg = cfg
        self.quantile = quantile
        self.train_stride = train_stride
        self.scale = 1.0
        params = dict(
            loss="quantile",
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            early_stopping=False,
            random_state=random_state,
        )
        self._median = HistGradientBoostingRegressor(quantile=0.5, **params)
        self._upper = HistGradientBoostingRegressor(quantile=quantile, **params)
        self.fitted = False

    def training_positions(self, n: int) -> np.ndarray:
        start = min(self.cfg.day, max(n // 4, 60))
        stop = n - self.cfg.horizon - self.cfg.window + 1
        return np.arange(start, stop, self.train_stride, dtype=np.int64)

    def fit(self, y: np.ndarray, t0_s: float) -> QuantileGBM:
        y = np.asarray(y, dtype=float)
        idx = self.training_positions(len(y))
        if len(idx) < 100:
            raise ValueError(f"need more history to fit: {len(y)} samples give {len(idx)} training rows")
        self.scale = float(max(np.median(y), self.cfg.level_floor))
        X = build_features(y, t0_s, idx, self.cfg, self.scale)
        target = relative_target(y, idx, self.cfg)
        ok = np.isfinite(target)
        X = X[ok]
        X[:, np.isnan(X).all(axis=0)] = 0.0  # e.g. week-ago features with under a week of history
        self._median.fit(X, target[ok])
        self._upper.fit(X, target[ok])
        self.fitted = True
        return self

    def predict_batch(self, y: np.ndarray, t0_s: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and upper peak forecasts for every position in ``idx`` (vectorised, causal)."""
        y = np.asarray(y, dtype=float)
        idx = np.asarray(idx, dtype=np.int64)
        X = build_features(y, t0_s, idx, self.cfg, self.scale)
        level = recent_level(y, idx, self.cfg)
        med = peak_from_relative(self._median.predict(X), level, self.cfg)
        up = peak_from_relative(self._upper.predict(X), level, self.cfg)
        return med, np.maximum(up, med)

    def predict(self, y: np.ndarray, t0_s: float) -> PeakForecast:
        """One forecast from the latest sample of ``y``, on a single native thread."""
        y = np.asarray(y, dtype=float)
        idx = np.array([len(y) - 1], dtype=np.int64)
        with single_threaded():
            X = build_features(y, t0_s, idx, self.cfg, self.scale)
            level = recent_level(y[-self.cfg.level_span :], np.array([self.cfg.level_span - 1]), self.cfg)
            med = float(peak_from_relative(self._median.predict(X), level, self.cfg)[0])
            up = float(peak_from_relative(self._upper.predict(X), level, self.cfg)[0])
        return PeakForecast(median=med, upper=max(up, med), quantile=self.quantile, model=self.name)


def persistence_peak(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The recent maximum (over one target window): what a reactive HPA effectively assumes."""
    return rolling_max(np.asarray(y, dtype=float), np.asarray(idx, dtype=np.int64), cfg.window, {})


def seasonal_naive_peak(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig, period: int | None = None) -> np.ndarray:
    """The peak over the same window one period (default one day) earlier."""
    p = cfg.day if period is None else period
    ends = np.asarray(idx, dtype=np.int64) - p + cfg.horizon + cfg.window - 1
    return rolling_max(np.asarray(y, dtype=float), ends, cfg.window, {})


def linear_trend_peak(y: np.ndarray, idx: np.ndarray, cfg: FeatureConfig, span: int = 15) -> np.ndarray:
    """Least-squares line through the last ``span`` samples, extrapolated over the target window."""
    y = np.asarray(y, dtype=float)
    idx = np.asarray(idx, dtype=np.int64)
    x = np.arange(span, dtype=float) - (span - 1)  # ..., -1, 0 at the latest sample
    xc = x - x.mean()
    denom = float((xc * xc).sum())
    starts = idx - span + 1
    ok = starts >= 0
    rows = np.where(ok[:, None], starts[:, None] + np.arange(span)[None, :], 0)
    w = y[rows]
    mean = w.mean(axis=1)
    slope = (w * xc[None, :]).sum(axis=1) / denom
    at_now = mean + slope * (0.0 - x.mean())
    h_lo, h_hi = cfg.horizon, cfg.horizon + cfg.window - 1
    peak = np.maximum(at_now + slope * h_lo, at_now + slope * h_hi)
    return np.where(ok, np.maximum(peak, 0.0), np.nan)
