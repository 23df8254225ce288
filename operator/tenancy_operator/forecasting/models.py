"""Peak-demand forecasters: scikit-learn quantile models and the simple baselines they must beat.

Why this exists: the operator lifts an HPA's floor only on a forecast of the *peak* demand over
``[now + lead, now + lead + window]``. A median model decides whether a rise is coming at all; an
upper-quantile model (q = 0.9 by default) sizes the lift, so that under-provisioning is rare without
paying for the worst case. Persistence (the recent maximum) is what a reactive HPA assumes and is the
bar the predictability gate holds every model to; seasonal-naive and linear-trend are the classic
baselines (Holt-Winters lives in :mod:`.holtwinters`).

Single predictions run with native thread pools pinned to one thread: under CPU contention,
oversubscribed OpenMP threads made one prediction about 100 times slower.

scikit-learn is imported when a model is made, not with this module: with SciPy it is about 70 MB
of the operator's RSS, which a fleet without predictive autoscaling never needs (bench/scale/RESULTS.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

from .features import (
    FeatureConfig,
    build_features,
    feature_names,
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


class _FlatTrees:
    """A fitted HistGradientBoostingRegressor's trees as flat arrays, for one row at a time.

    scikit-learn's predict pays input validation and one native call per tree (150 of them), about
    1 ms per model per row; walking all trees at once with numpy takes a tenth of that. Same
    arithmetic (identity link for the quantile loss): predictions equal ``est.predict``.
    """

    def __init__(self, est: HistGradientBoostingRegressor) -> None:
        feats, thr, left, right, leaf, value, miss_left, roots = [], [], [], [], [], [], [], []
        off = 0
        for per_iter in est._predictors:
            for pred in per_iter:
                nodes = pred.nodes
                roots.append(off)
                feats.append(nodes["feature_idx"].astype(np.int64))
                thr.append(nodes["num_threshold"].astype(float))
                left.append(nodes["left"].astype(np.int64) + off)
                right.append(nodes["right"].astype(np.int64) + off)
                leaf.append(nodes["is_leaf"].astype(bool))
                value.append(nodes["value"].astype(float))
                miss_left.append(nodes["missing_go_to_left"].astype(bool))
                off += len(nodes)
        self.feature = np.concatenate(feats)
        self.threshold = np.concatenate(thr)
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.is_leaf = np.concatenate(leaf)
        self.value = np.concatenate(value)
        self.missing_left = np.concatenate(miss_left)
        self.roots = np.array(roots, dtype=np.int64)
        self.baseline = float(np.asarray(est._baseline_prediction).ravel()[0])

    def predict_one(self, x: np.ndarray) -> float:
        node = self.roots.copy()
        while True:
            open_ = ~self.is_leaf[node]
            if not open_.any():
                break
            at = node[open_]
            v = x[self.feature[at]]
            go_left = np.where(np.isnan(v), self.missing_left[at], v <= self.threshold[at])
            node[open_] = np.where(go_left, self.left[at], self.right[at])
        return self.baseline + float(self.value[node].sum())


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
        max_bins: int = 127,
        dense_rise_threshold: float | None = 1.0,
        dense_median: bool = False,
    ) -> None:
        self.cfg = cfg
        self.quantile = quantile
        self.train_stride = train_stride
        self.dense_rise_threshold = dense_rise_threshold
        self.dense_median = dense_median
        self.scale = 1.0
        params = dict(
            loss="quantile",
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            early_stopping=False,
            random_state=random_state,
            max_bins=max_bins,
        )
        # Imported here, not with the module: see the module docstring.
        from sklearn.ensemble import HistGradientBoostingRegressor

        self._median = HistGradientBoostingRegressor(quantile=0.5, **params)
        self._upper = HistGradientBoostingRegressor(quantile=quantile, **params)
        self.fitted = False
        self._flat: tuple[_FlatTrees, _FlatTrees] | None = None

    def training_positions(self, n: int) -> np.ndarray:
        start = min(self.cfg.day, max(n // 4, 60))
        stop = n - self.cfg.horizon - self.cfg.window + 1
        return np.arange(start, stop, self.train_stride, dtype=np.int64)

    def _training_rows(self, y: np.ndarray, t0_s: float) -> tuple[np.ndarray, np.ndarray]:
        idx, X, _ = self._training_rows_marked(y, t0_s)
        return idx, X

    def _training_rows_marked(self, y: np.ndarray, t0_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every ``train_stride``-th position, plus every position where a seasonal reference (the
        same time one day or one week ago, at today's level) shows a rise near the target window.

        Those few minutes around daily ramps decide under-provisioning; at a uniform stride they are
        a handful of rows among thousands and the trees size ramps badly (overshooting mid-ramp).
        The extra rows are chosen from the features alone, never from the target, so the quantiles
        the trees learn for given features stay unbiased. They train only the upper model, which
        sizes lifts; the median model, which decides whether a rise comes at all, keeps the uniform
        rows (with the extra ramp rows it learnt to trust yesterday's ramp even on a holiday).
        Returns positions, features and a mask of the uniform-stride rows.
        """
        dense = self.training_positions(len(y))
        if self.train_stride <= 1 or self.dense_rise_threshold is None or len(dense) == 0:
            return dense, build_features(y, t0_s, dense, self.cfg, self.scale), np.ones(len(dense), dtype=bool)
        stop = dense[-1] + 1
        every = np.arange(dense[0], stop, dtype=np.int64)
        X = build_features(y, t0_s, every, self.cfg, self.scale)
        names = feature_names(self.cfg)
        ref = np.zeros(len(every))
        for tag in ("day", "week"):
            # only references that match today's level: a holiday's flat day is no ramp to learn from
            rise = np.nan_to_num(X[:, names.index(f"{tag}_local_rise")], nan=0.0)
            growth = np.nan_to_num(X[:, names.index(f"{tag}_growth")], nan=1.0)
            ref = np.maximum(ref, np.where(np.abs(growth) < 0.25, rise, 0.0))
        uniform = (every - dense[0]) % self.train_stride == 0
        keep = uniform | (ref > self.dense_rise_threshold)
        return every[keep], X[keep], uniform[keep]

    def fit(self, y: np.ndarray, t0_s: float) -> QuantileGBM:
        y = np.asarray(y, dtype=float)
        idx = self.training_positions(len(y))
        if len(idx) < 100:
            raise ValueError(f"need more history to fit: {len(y)} samples give {len(idx)} training rows")
        self.scale = float(max(np.median(y), self.cfg.level_floor))
        idx, X, uniform = self._training_rows_marked(y, t0_s)
        target = relative_target(y, idx, self.cfg)
        ok = np.isfinite(target)
        X, target, uniform = X[ok], target[ok], uniform[ok]
        X[:, np.isnan(X).all(axis=0)] = 0.0  # e.g. week-ago features with under a week of history
        # One native thread: on a shared 2-core machine OpenMP oversubscription made a refit 10x slower.
        with single_threaded():
            med_rows = slice(None) if self.dense_median else uniform
            self._median.fit(X[med_rows], target[med_rows])
            self._upper.fit(X, target)
        self._flat = (_FlatTrees(self._median), _FlatTrees(self._upper))
        self.fitted = True
        return self

    def predict_batch(self, y: np.ndarray, t0_s: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and upper peak forecasts for every position in ``idx`` (vectorised, causal)."""
        y = np.asarray(y, dtype=float)
        idx = np.asarray(idx, dtype=np.int64)
        X = build_features(y, t0_s, idx, self.cfg, self.scale)
        level = recent_level(y, idx, self.cfg)
        # One native thread, as for fit: with OpenMP's threads, predictions were several times slower
        # whenever the other core was busy (a day of positions 0.14 s instead of 0.02 s; one bench run
        # of a week of refits and re-scores 79 s instead of 31 s, on a loaded 2-core machine).
        with single_threaded():
            rel_m, rel_u = self._median.predict(X), self._upper.predict(X)
        med = peak_from_relative(rel_m, level, self.cfg)
        up = peak_from_relative(rel_u, level, self.cfg)
        return med, np.maximum(up, med)

    def predict(self, y: np.ndarray, t0_s: float) -> PeakForecast:
        """One forecast from the latest sample of ``y``, on a single native thread."""
        y = np.asarray(y, dtype=float)
        idx = np.array([len(y) - 1], dtype=np.int64)
        with single_threaded():
            X = build_features(y, t0_s, idx, self.cfg, self.scale)
            level = recent_level(y[-self.cfg.level_span :], np.array([self.cfg.level_span - 1]), self.cfg)
            if self._flat is not None:
                rel_m = np.array([self._flat[0].predict_one(X[0])])
                rel_u = np.array([self._flat[1].predict_one(X[0])])
            else:
                rel_m, rel_u = self._median.predict(X), self._upper.predict(X)
            med = float(peak_from_relative(rel_m, level, self.cfg)[0])
            up = float(peak_from_relative(rel_u, level, self.cfg)[0])
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
