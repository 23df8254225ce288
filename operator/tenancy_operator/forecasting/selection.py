"""Gated choice between forecasters: the model that acts is the one that backtests best *and* passes
the predictability gate.

Why this exists: no single model wins everywhere. Holt-Winters adapts its level within minutes and
does well after holidays and lasting level shifts; the quantile gradient-boosting model reads
yesterday's and last week's shape around "now" and wins on pattern shifts and steep ramps. Choosing
per evaluation window on recent backtests (and falling back to the reactive HPA when no candidate
clears the gate) keeps the better of the two without having to know the trace in advance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .backtest import BacktestScores, GateConfig, GateVerdict, evaluate_gate, score_backtest

__all__ = ["Choice", "choose_forecaster", "windowed_choice"]


@dataclass(frozen=True)
class Choice:
    """The model to use (best recent pinball among candidates) and the gate's verdict on it."""

    model: str
    verdict: GateVerdict

    @property
    def active(self) -> bool:
        return self.verdict.active


def choose_forecaster(scores: Mapping[str, BacktestScores], gate: GateConfig | None = None) -> Choice:
    """Best-pinball candidate that passes the gate; if none passes, the best one with its refusal."""
    gate = gate or GateConfig()
    if not scores:
        raise ValueError("no candidate forecasters")
    verdicts = {name: evaluate_gate(s, gate, name) for name, s in scores.items()}
    ranked = sorted(scores, key=lambda k: (not np.isfinite(scores[k].pinball), scores[k].pinball))
    for name in ranked:
        if verdicts[name].active:
            return Choice(name, verdicts[name])
    return Choice(ranked[0], verdicts[ranked[0]])


def windowed_choice(
    actual: np.ndarray,
    persistence: np.ndarray,
    candidates: Mapping[str, tuple[np.ndarray, np.ndarray]],
    decision_positions: np.ndarray,
    realise_lag: int,
    window: int,
    quantile: float,
    tolerance: float,
    gate: GateConfig | None = None,
) -> list[Choice]:
    """Replay the choice at each decision position over aligned forecast arrays.

    Arrays are indexed by forecast position; at decision position ``p`` only forecasts made at
    ``q <= p - realise_lag`` have a known outcome, and the last ``window`` of those are scored.
    """
    out = []
    for p in np.asarray(decision_positions, dtype=np.int64):
        hi = int(p) - realise_lag + 1
        lo = max(0, hi - window)
        if hi <= lo:
            sl = slice(0, 0)
        else:
            sl = slice(lo, hi)
        scores = {
            name: score_backtest(actual[sl], med[sl], up[sl], persistence[sl], quantile, tolerance)
            for name, (med, up) in candidates.items()
        }
        out.append(choose_forecaster(scores, gate))
    return out
