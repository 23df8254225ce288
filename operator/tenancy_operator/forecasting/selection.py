"""A blend of two forecasters, weighted on realised backtests, and the gate's verdict on the blend.

Why this exists: no single model wins everywhere. Holt-Winters adapts its level within minutes and
does well after holidays and lasting level shifts; the quantile gradient-boosting model reads
yesterday's and last week's shape around "now" and wins on pattern shifts and steep ramps. Picking
one per window (what this module did first) lost both ways on the hard days: the morning after a
holiday, the trees' median hedged (half its references showed no ramp) while Holt-Winters saw the
ramp coming, and the pick was still the trees, whose week of backtests was better overall.

A convex blend with weights fitted per quantile keeps what each model knows: the median weight
minimises the median's absolute error, the upper weight the upper quantile's pinball loss, both over
the same recent backtest. The grid includes 0 and 1, so "one model alone" is one of the choices, and
the blend then passes through the same predictability gate as any model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .backtest import BacktestScores, GateConfig, GateVerdict, evaluate_gate, pinball_loss, score_backtest
from .ramp import RampHoldConfig, ramp_hold
from .seen import cap_at_seen

__all__ = ["Blend", "BlendedModel", "calibration_error", "choose_blend", "fallback_model", "fit_blend", "fit_gated_blend",
           "gate_blend"]

WEIGHT_GRID = np.linspace(1.0, 0.0, 11)
"""Weights of the first model, from 1 down: on equal losses the first model (listed first) wins."""


@dataclass(frozen=True)
class Blend:
    """Weights of ``names[0]`` in the median and in the upper quantile (``names[1]`` gets the rest)."""

    names: tuple[str, ...]
    median_weight: float = 1.0
    upper_weight: float = 1.0

    def combine(self, first: tuple[np.ndarray, np.ndarray],
                second: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(median, upper) of the blend; the upper never below the median."""
        if second is None or len(self.names) == 1:
            return first
        wm, wu = self.median_weight, self.upper_weight
        med = wm * first[0] + (1.0 - wm) * second[0]
        up = wu * first[1] + (1.0 - wu) * second[1]
        return med, np.maximum(up, med)

    def uses(self, k: int) -> bool:
        """Whether model ``k`` carries any weight (a model at weight 0 need not be refitted)."""
        if len(self.names) == 1:
            return k == 0
        w = (self.median_weight, self.upper_weight)
        return any(x > 0 for x in w) if k == 0 else any(x < 1 for x in w)

    def trimmed(self) -> Blend:
        """The same blend without a model at weight 0 (a single model stands alone)."""
        used = [n for k, n in enumerate(self.names) if self.uses(k)]
        return self if len(used) == len(self.names) else Blend((used[0],))

    @property
    def label(self) -> str:
        """"quantile-gbm" alone, or "quantile-gbm 0.7/0.9 + holt-winters" (median/upper weights)."""
        used = self.trimmed().names
        if len(used) == 1:
            return used[0]
        return f"{self.names[0]} {self.median_weight:.1f}/{self.upper_weight:.1f} + {self.names[1]}"


def _best_weight(actual: np.ndarray, a: np.ndarray, b: np.ndarray, loss) -> float:
    ok = np.isfinite(actual) & np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return 1.0
    y, a, b = actual[ok], a[ok], b[ok]
    losses = [loss(y, w * a + (1.0 - w) * b) for w in WEIGHT_GRID]
    return float(WEIGHT_GRID[int(np.argmin(losses))])


def fit_blend(actual: np.ndarray, candidates: Mapping[str, tuple[np.ndarray, np.ndarray]],
              quantile: float, min_samples: int = 60) -> Blend:
    """Blend weights from realised forecasts of one or two candidates (in preference order).

    With fewer than ``min_samples`` comparable forecasts there is nothing to fit, and the first
    candidate stands alone.
    """
    names = tuple(candidates)
    if not 1 <= len(names) <= 2:
        raise ValueError(f"a blend takes one or two candidates, got {len(names)}")
    if len(names) == 1:
        return Blend(names)
    (m1, u1), (m2, u2) = (candidates[n] for n in names)
    actual = np.asarray(actual, dtype=float)
    if int((np.isfinite(actual) & np.isfinite(m1) & np.isfinite(m2)).sum()) < min_samples:
        return Blend(names)
    wm = _best_weight(actual, m1, m2, lambda y, p: float(np.mean(np.abs(y - p))))
    wu = _best_weight(actual, u1, u2, lambda y, p: pinball_loss(y, p, quantile))
    return Blend(names, wm, wu)


def fit_gated_blend(actual: np.ndarray, persistence: np.ndarray,
                    candidates: Mapping[str, tuple[np.ndarray, np.ndarray]], quantile: float, tolerance: float,
                    gate: GateConfig | None = None) -> Blend:
    """:func:`fit_blend`; but when the MAE-best median weight fails the gate on the same backtest, the
    median weight that catches the most realised rises among those that pass it and whose median beats
    persistence's MAE by the gate's ``min_skill`` (ties: lower MAE).

    Why: the floor uses the median for one thing, to call rises, and the MAE-best median can be one
    that never calls a rise. When a rise comes at a time that moves from day to day (a morning ramp
    jittered by 5-30 minutes, some weekdays without one), the trees' median of "is the ramp in the
    next few minutes" stays under the rise threshold on every morning and is still the MAE-best
    (16% better than persistence); Holt-Winters' seasonal term, an average of the mornings, does call
    them, but its median alone is 30-45% worse than persistence. The blend was then all trees, it
    failed the gate for too few rise calls, each model failed it alone, and the rule stayed reactive
    (bench jittered_ramps: 0% of the reactive-to-oracle gap closed). A blend that cannot act is worth
    nothing to the floor; among the weights that can, the gate bounds what wrong calls cost (rise
    precision; the median's MAE here must beat persistence's by the skill margin), and each realised rise caught in time is
    under-provisioning avoided, so the weight that catches most wins. The upper weight is not
    touched (it sizes lifts; pinball is its loss). When the MAE-best weight passes, nothing changes.
    """
    blend = fit_blend(actual, candidates, quantile)
    if len(blend.names) != 2:
        return blend
    cfg = gate or GateConfig()
    a = np.asarray(actual, dtype=float)
    (m1, u1), (m2, u2) = (candidates[n] for n in blend.names)
    up = blend.upper_weight * u1 + (1.0 - blend.upper_weight) * u2

    def scored(wm: float) -> tuple[BacktestScores, bool]:
        med = wm * m1 + (1.0 - wm) * m2
        s = score_backtest(a, med, np.maximum(up, med), persistence, quantile, tolerance)
        return s, evaluate_gate(s, cfg).active

    s, ok = scored(blend.median_weight)
    if ok or s.n < cfg.min_samples:
        return blend
    best: tuple[tuple[int, float], float] | None = None
    for wm in WEIGHT_GRID:
        s, ok = scored(float(wm))
        key = (-s.true_rise_events, s.mae)
        # A weight searched for its rise calls must also beat persistence as a point forecast by the
        # margin the upper quantile must (the gate's median slack is for the MAE-best weight): with
        # the slack, one of the eleven weights passed by chance on weak seasonality under a random
        # walk (bench weak: gate open 77-93% of the test week instead of 0%).
        ok = ok and s.median_skill >= cfg.min_skill
        if ok and (best is None or key < best[0]):
            best = (key, float(wm))
    return blend if best is None else Blend(blend.names, best[1], blend.upper_weight)


def gate_blend(blend: Blend, actual: np.ndarray, persistence: np.ndarray,
               candidates: Mapping[str, tuple[np.ndarray, np.ndarray]], quantile: float,
               tolerance: float, gate: GateConfig | None = None) -> tuple[GateVerdict, tuple[np.ndarray, np.ndarray]]:
    """The gate's verdict on the blend's own backtest, and the blended (median, upper) it scored."""
    parts = [candidates[n] for n in blend.names]
    med, up = blend.combine(parts[0], parts[1] if len(parts) > 1 else None)
    scores = score_backtest(actual, med, up, persistence, quantile, tolerance)
    return evaluate_gate(scores, gate or GateConfig(), blend.label), (med, up)


def calibration_error(actual: np.ndarray, upper: np.ndarray, quantile: float) -> float:
    """|share of realised peaks at or under the upper forecast - quantile|; inf with nothing to compare."""
    a, u = np.asarray(actual, dtype=float), np.asarray(upper, dtype=float)
    ok = np.isfinite(a) & np.isfinite(u)
    return float(abs(np.mean(a[ok] <= u[ok]) - quantile)) if ok.any() else float("inf")


def fallback_model(actual: np.ndarray, persistence: np.ndarray,
                   candidates: Mapping[str, tuple[np.ndarray, np.ndarray]], quantile: float, tolerance: float,
                   gate: GateConfig | None = None) -> tuple[str, GateVerdict] | None:
    """The better-calibrated single candidate that passes the gate alone, or None.

    Why: when the blend fails the gate (typically on a day type one model has not seen: one says a
    ramp comes, the other not, and the blend hedges half-way, so its rise calls are neither right
    nor early), a model that is right on its own should act rather than nobody. Among those that
    pass, the one whose upper quantile covers the realised peaks closest to ``quantile`` wins (ties:
    lower pinball); a model that passes only by over-forecasting is thereby the last choice.
    """
    passing = []
    for name, (m, u) in candidates.items():
        scores = score_backtest(actual, m, u, persistence, quantile, tolerance)
        verdict = evaluate_gate(scores, gate or GateConfig(), name)
        if verdict.active:
            passing.append((calibration_error(actual, u, quantile), scores.pinball, name, verdict))
    if not passing:
        return None
    _, _, name, verdict = min(passing, key=lambda t: (t[0], t[1]))
    return name, verdict


def choose_blend(actual: np.ndarray, persistence: np.ndarray,
                 candidates: Mapping[str, tuple[np.ndarray, np.ndarray]], quantile: float, tolerance: float,
                 gate: GateConfig | None = None) -> tuple[Blend, GateVerdict, tuple[np.ndarray, np.ndarray]]:
    """Fit the blend on the backtest and gate it; if the gate closes on the blend, fall back to the
    better-calibrated single model that passes (:func:`fallback_model`). Returns the blend that acts
    (possibly one model), its verdict, and the backtest (median, upper) it was judged on."""
    blend = fit_gated_blend(actual, persistence, candidates, quantile, tolerance, gate).trimmed()
    verdict, pair = gate_blend(blend, actual, persistence, candidates, quantile, tolerance, gate)
    if verdict.active or len(candidates) < 2:
        return blend, verdict, pair
    alone = fallback_model(actual, persistence, candidates, quantile, tolerance, gate)
    if alone is None:
        return blend, verdict, pair
    name, v = alone
    why = f"{v.reason}; fallback: the blend {blend.label} failed the gate, {name} is the better-calibrated model that passes"
    return Blend((name,)), GateVerdict(True, why, v.scores), candidates[name]


@dataclass
class BlendedModel:
    """Fitted models combined with a :class:`Blend`; predicts like one model (``predict_batch``).

    With ``hold_tolerance`` set, each model's forecast carries the ramp hold (:func:`.ramp.ramp_hold`,
    with that rise tolerance) before the blend, as the backtest that chose the blend scored them; with
    ``seen_span`` set, it is then capped at the highest load of that many last samples plus a margin
    (:func:`.seen.cap_at_seen`)."""

    blend: Blend
    models: tuple
    hold_tolerance: float | None = None
    hold_cache: dict = field(default_factory=dict, repr=False)
    hold_cfg: RampHoldConfig = field(default_factory=RampHoldConfig)
    seen_span: int | None = None

    def predict_batch(self, y: np.ndarray, t0_s: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [m.predict_batch(y, t0_s, idx) for m in self.models]
        if self.hold_tolerance is not None:
            parts = [ramp_hold(y, t0_s, idx, m.cfg, p[0], p[1], self.hold_tolerance, self.hold_cfg,
                               cache=self.hold_cache)[:2]
                     for m, p in zip(self.models, parts, strict=True)]
        if self.seen_span is not None:
            parts = [cap_at_seen(y, idx, p[0], p[1], self.seen_span) for p in parts]
        return self.blend.combine(parts[0], parts[1] if len(parts) > 1 else None)
