"""Anomaly scores in [0, 1] from forecast residuals, using robust (median/MAD) statistics.

Why this exists: a tenant's metric that suddenly leaves what its forecaster expects (a spike, a
lasting level shift) is worth an Event, an ``AnomalyDetected`` condition and a metric that an
alert ("anomaly score > 0.9") can fire on. Residuals are relative (actual / expected - 1) so one
threshold fits tenants of any size; the median and MAD of a trailing window of past residuals make
the score immune to the very outliers it is looking for, and a logistic squashes the robust z-score
into [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AnomalyConfig", "relative_residuals", "scaled_residuals", "robust_z", "robust_z_series", "score_from_z",
    "anomaly_score", "anomaly_scores", "consensus_score", "consensus_scores",
]

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class AnomalyConfig:
    """``z_center`` is the robust z-score that maps to 0.5; 0.9 is reached at z_center + 2.2 * z_width
    (6.7 by default). ``sustain`` is how many consecutive forecasts must all be surprised for
    :func:`consensus_scores` to score high: a spike or a level shift surprises every forecast whose
    window covers its onset (about ``window`` of them), an expected daily ramp that comes a minute
    early or late surprises one or two."""

    window: int = 1440
    min_history: int = 60
    refresh: int = 60
    z_center: float = 4.5
    z_width: float = 1.0
    min_mad: float = 0.01
    sustain: int = 4


def relative_residuals(actual: np.ndarray, expected: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    return a / np.maximum(e, floor) - 1.0


def scaled_residuals(actual: np.ndarray, median: np.ndarray, upper: np.ndarray, min_rel_spread: float = 0.05) -> np.ndarray:
    """(actual - median) / (upper - median): residuals in units of the model's own uncertainty.

    A steep daily ramp whose exact minute wobbles is uncertain *and known to be*, so the quantile
    model widens its band there; dividing by that band keeps such expected misses from scoring as
    anomalies while a spike on a quiet plateau still stands out.
    """
    a = np.asarray(actual, dtype=float)
    m = np.asarray(median, dtype=float)
    u = np.asarray(upper, dtype=float)
    spread = np.maximum(u - m, min_rel_spread * np.maximum(np.abs(m), 1e-3))
    return (a - m) / spread


def robust_z(history: np.ndarray, value: float, min_mad: float = 0.01) -> float:
    """|value - median| / (1.4826 * MAD) of ``history`` (NaNs ignored)."""
    h = np.asarray(history, dtype=float)
    h = h[np.isfinite(h)]
    if len(h) == 0 or not math.isfinite(value):
        return 0.0
    med = float(np.median(h))
    mad = max(float(np.median(np.abs(h - med))), min_mad)
    return abs(value - med) / (_MAD_TO_SIGMA * mad)


def score_from_z(z: np.ndarray | float, cfg: AnomalyConfig = AnomalyConfig()) -> np.ndarray | float:
    zz = np.asarray(z, dtype=float)
    out = 1.0 / (1.0 + np.exp(-(zz - cfg.z_center) / cfg.z_width))
    return float(out) if np.ndim(out) == 0 else out


def anomaly_score(history: np.ndarray, residual: float, cfg: AnomalyConfig = AnomalyConfig()) -> float:
    """Score of one new residual against the trailing history of residuals."""
    h = np.asarray(history, dtype=float)[-cfg.window :]
    if np.isfinite(h).sum() < cfg.min_history:
        return 0.0
    return float(score_from_z(robust_z(h, residual, cfg.min_mad), cfg))


def anomaly_scores(residuals: np.ndarray, cfg: AnomalyConfig = AnomalyConfig()) -> np.ndarray:
    """Scores for a whole residual series, each against the trailing window before it.

    The median and MAD are refreshed every ``cfg.refresh`` samples (what a periodic job would do),
    which keeps a week of 1-minute residuals to a few milliseconds.
    """
    return np.asarray(score_from_z(robust_z_series(residuals, cfg), cfg))


def consensus_score(
    history: np.ndarray,
    residual: float,
    naive_history: np.ndarray,
    naive_residual: float,
    cfg: AnomalyConfig = AnomalyConfig(),
) -> float:
    """Score of one new value that must surprise both the forecaster and persistence (see
    :func:`consensus_scores`; ``sustain`` is left to the caller, who keeps the recent scores)."""
    h = np.asarray(history, dtype=float)[-cfg.window :]
    hn = np.asarray(naive_history, dtype=float)[-cfg.window :]
    if np.isfinite(h).sum() < cfg.min_history or np.isfinite(hn).sum() < cfg.min_history:
        return 0.0
    z = min(robust_z(h, residual, cfg.min_mad), robust_z(hn, naive_residual, cfg.min_mad))
    return float(score_from_z(z, cfg))


def consensus_scores(
    model_residuals: np.ndarray, naive_residuals: np.ndarray, cfg: AnomalyConfig = AnomalyConfig()
) -> np.ndarray:
    """Scores from the smaller of two robust z-scores: against the forecaster and against persistence.

    An anomaly is demand that neither the seasonal forecaster nor "the recent past continues" saw
    coming. Either alone misfires: persistence is surprised by every expected daily ramp, and the
    forecaster is surprised *the day after* a spike or a level shift, when its day-ago features
    still expect the anomaly to repeat but demand merely carries on as it was. A spike, and the
    onset or end of a level shift, surprise both.
    """
    z = np.minimum(robust_z_series(model_residuals, cfg), robust_z_series(naive_residuals, cfg))
    zs = z.copy()
    for k in range(1, max(1, cfg.sustain)):  # the smallest z of the last ``sustain`` forecasts
        zs[k:] = np.minimum(zs[k:], z[:-k])
        zs[:k] = 0.0
    return np.asarray(score_from_z(zs, cfg))


def robust_z_series(residuals: np.ndarray, cfg: AnomalyConfig = AnomalyConfig()) -> np.ndarray:
    """Robust z-score of each residual against the trailing ``cfg.window`` before it (0 while short)."""
    r = np.asarray(residuals, dtype=float)
    z = np.zeros(len(r))
    for start in range(0, len(r), cfg.refresh):
        past = r[max(0, start - cfg.window) : start]
        past = past[np.isfinite(past)]
        if len(past) < cfg.min_history:
            continue
        med = float(np.median(past))
        mad = max(float(np.median(np.abs(past - med))), cfg.min_mad)
        seg = r[start : start + cfg.refresh]
        z[start : start + cfg.refresh] = np.where(np.isfinite(seg), np.abs(seg - med) / (_MAD_TO_SIGMA * mad), 0.0)
    return z
