"""Rolling backtests, forecast-quality scores and the predictability gate.

Why this exists: a forecast is only allowed to move an HPA while it has recently been *useful*:
better than persistence (the recent maximum, which is what a reactive HPA assumes) and precise
when it says a rise is coming. Without that gate a model trained on yesterday would keep lifting
floors on a tenant whose traffic has become a random walk. The verdict carries a reason sentence
that goes straight into the Tenant's status, so a person can see why a rule is or is not acting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BacktestScores",
    "GateConfig",
    "GateVerdict",
    "pinball_loss",
    "mase",
    "score_backtest",
    "evaluate_gate",
    "rolling_origins",
]


def pinball_loss(actual: np.ndarray, predicted: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss at quantile ``q``, ignoring NaN pairs."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    if not ok.any():
        return float("nan")
    d = a[ok] - p[ok]
    return float(np.mean(np.maximum(q * d, (q - 1.0) * d)))


def mase(actual: np.ndarray, predicted: np.ndarray, scale: float) -> float:
    """Mean absolute error divided by ``scale`` (the naive forecast's in-sample MAE)."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    if not ok.any() or scale <= 0:
        return float("nan")
    return float(np.mean(np.abs(a[ok] - p[ok])) / scale)


@dataclass(frozen=True)
class BacktestScores:
    """How a model did on forecasts whose outcome is already known."""

    n: int
    pinball: float
    pinball_persistence: float
    mae: float
    mae_persistence: float
    predicted_rises: int
    actual_rises: int
    true_rises: int
    predicted_rise_events: int = 0
    true_rise_events: int = 0

    @property
    def skill(self) -> float:
        """1 - pinball / pinball(persistence): above 0 means better than the recent maximum."""
        if not np.isfinite(self.pinball_persistence) or self.pinball_persistence <= 0:
            return float("nan")
        return 1.0 - self.pinball / self.pinball_persistence

    @property
    def median_skill(self) -> float:
        """1 - MAE(median) / MAE(persistence): the median model as a point forecast against the recent max."""
        if not np.isfinite(self.mae_persistence) or self.mae_persistence <= 0:
            return float("nan")
        return 1.0 - self.mae / self.mae_persistence

    @property
    def rise_precision(self) -> float:
        return self.true_rises / self.predicted_rises if self.predicted_rises else float("nan")

    @property
    def event_precision(self) -> float:
        """Share of predicted rise *events* (runs of consecutive rise forecasts) in which a rise came.

        Per minute, one wrong call stretched over many minutes (a holiday morning, a moved ramp)
        outweighs many right ones; people, and the floor rule, act on events.
        """
        if not self.predicted_rise_events:
            return float("nan")
        return self.true_rise_events / self.predicted_rise_events

    @property
    def rise_recall(self) -> float:
        return self.true_rises / self.actual_rises if self.actual_rises else float("nan")


def score_backtest(
    actual: np.ndarray,
    median: np.ndarray,
    upper: np.ndarray,
    persistence: np.ndarray,
    quantile: float,
    tolerance: float,
    merge_gap: int = 5,
) -> BacktestScores:
    """Score realised forecasts.

    A predicted rise is a median above ``persistence * (1 + tolerance)``; it counts as true when the
    realised peak rose by more than half the tolerance (a rise did come, even if a little smaller:
    without that slack, noise around the threshold makes precision a coin flip). Actual rises, for
    recall, are realised peaks above ``persistence * (1 + tolerance)``. Predicted rises less than
    ``merge_gap`` forecasts apart form one event, true when any of its forecasts was.
    """
    a, md, up, pe = (np.asarray(v, dtype=float) for v in (actual, median, upper, persistence))
    ok = np.isfinite(a) & np.isfinite(md) & np.isfinite(up) & np.isfinite(pe)
    a, md, up, pe = a[ok], md[ok], up[ok], pe[ok]
    thr = pe * (1.0 + tolerance)
    pred_rise = md > thr
    act_rise = a > thr
    came = a > pe * (1.0 + 0.5 * tolerance)
    n_ev, n_true_ev = _rise_events(pred_rise, came, merge_gap)
    return BacktestScores(
        n=int(ok.sum()),
        pinball=pinball_loss(a, up, quantile),
        pinball_persistence=pinball_loss(a, pe, quantile),
        mae=float(np.mean(np.abs(a - md))) if len(a) else float("nan"),
        mae_persistence=float(np.mean(np.abs(a - pe))) if len(a) else float("nan"),
        predicted_rises=int(pred_rise.sum()),
        actual_rises=int(act_rise.sum()),
        true_rises=int((pred_rise & came).sum()),
        predicted_rise_events=n_ev,
        true_rise_events=n_true_ev,
    )


def _rise_events(pred: np.ndarray, came: np.ndarray, merge_gap: int) -> tuple[int, int]:
    at = np.flatnonzero(pred)
    if len(at) == 0:
        return 0, 0
    starts = np.concatenate(([0], np.flatnonzero(np.diff(at) > merge_gap) + 1))
    hits = np.add.reduceat(came[at].astype(np.int64), starts)
    return int(len(starts)), int((hits > 0).sum())


@dataclass(frozen=True)
class GateConfig:
    """Thresholds a model's recent backtest must clear before its forecasts may act."""

    min_samples: int = 360
    min_skill: float = 0.05
    min_rise_precision: float = 0.4
    min_predicted_rises: int = 3
    precision_basis: str = "event"  # "event" (runs of rise forecasts) or "minute"
    # The median decides whether a rise is coming, so it must be about as good as persistence as a
    # point forecast too (MAE at most 10% worse): an upper quantile alone beats persistence's pinball
    # on almost any series (persistence is no 0.9-quantile), which let Holt-Winters act on a random
    # walk; its median there is 20-30% worse than persistence.
    min_median_skill: float | None = -0.1


@dataclass(frozen=True)
class GateVerdict:
    active: bool
    reason: str
    scores: BacktestScores


def evaluate_gate(scores: BacktestScores, cfg: GateConfig = GateConfig(), model: str = "forecast") -> GateVerdict:
    """Decide whether the forecast may act; the reason is written for a person reading status."""
    s = scores
    if s.n < cfg.min_samples:
        return GateVerdict(False, f"Reactive: only {s.n} backtested forecasts, need {cfg.min_samples}", s)
    if not np.isfinite(s.skill) or s.skill < cfg.min_skill:
        return GateVerdict(
            False,
            f"Reactive: {model} does not beat persistence on recent backtests "
            f"(pinball {s.pinball:.3g} vs {s.pinball_persistence:.3g}, skill {s.skill:.2f} < {cfg.min_skill:.2f})",
            s,
        )
    if cfg.min_median_skill is not None and not (s.median_skill >= cfg.min_median_skill):
        return GateVerdict(
            False,
            f"Reactive: {model}'s median does not beat persistence on recent backtests "
            f"(MAE {s.mae:.3g} vs {s.mae_persistence:.3g})",
            s,
        )
    # Scores built without event counts (older callers) fall back to per-minute counting.
    by_event = cfg.precision_basis == "event" and (s.predicted_rise_events > 0 or s.predicted_rises == 0)
    n_pred = s.predicted_rise_events if by_event else s.predicted_rises
    if n_pred < cfg.min_predicted_rises:
        return GateVerdict(
            False,
            f"Reactive: {model} predicted {n_pred} {'rise events' if by_event else 'rises'} in the backtest "
            f"window, too few to trust (need {cfg.min_predicted_rises})",
            s,
        )
    prec = s.event_precision if by_event else s.rise_precision
    hit, tot = (s.true_rise_events, s.predicted_rise_events) if by_event else (s.true_rises, s.predicted_rises)
    what = "rise events" if by_event else "predicted rises"
    if prec < cfg.min_rise_precision:
        return GateVerdict(
            False,
            f"Reactive: {model} rise precision {prec:.2f} < {cfg.min_rise_precision:.2f} "
            f"({hit} of {tot} {what} happened)",
            s,
        )
    return GateVerdict(
        True,
        f"Predictive: {model} beats persistence (skill {s.skill:.2f}, pinball {s.pinball:.3g} vs "
        f"{s.pinball_persistence:.3g}) with rise precision {prec:.2f} ({hit} of {tot} {what}) over {s.n} forecasts",
        s,
    )


def rolling_origins(n: int, first_train: int, step: int, horizon_end: int) -> Iterator[tuple[int, int]]:
    """(train_end, test_end) pairs for a walk-forward backtest: fit on [0, train_end), test after."""
    if first_train <= 0 or step <= 0:
        raise ValueError("first_train and step must be positive")
    t = first_train
    while t + horizon_end < n:
        yield t, min(t + step, n - horizon_end)
        t += step
