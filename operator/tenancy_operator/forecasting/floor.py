"""The rise-only Floor rule: when, and how far, a forecast lifts an HPA's minReplicas.

Why this exists: the HPA's scale-down stabilisation window already holds capacity after a peak, so
a floor that merely restates current capacity costs replica-hours for nothing (measured at +6% to
+8% against +1% to +2% for a rise-only floor). The rule therefore lifts only when the median
forecast says the HPA is about to need more than it holds by more than its tolerance, sizes the lift
from the upper quantile, keeps it until the predicted peak has passed, and then hands control back
to the HPA (floor = the rule's own minReplicas). It is a pure function: the caller stores the
returned lift and passes it back next time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FloorInput", "FloorDecision", "decide_floor", "replicas_for"]


@dataclass(frozen=True)
class FloorInput:
    median_peak: float
    upper_peak: float
    capacity_per_replica: float
    target_utilisation: float
    held_replicas: int
    tolerance: float
    min_replicas: int
    max_replicas: int
    now_s: float
    peak_end_s: float
    current_lift: int | None = None
    lift_until_s: float | None = None
    gate_active: bool = True


@dataclass(frozen=True)
class FloorDecision:
    floor: int
    lift: int | None
    lift_until_s: float | None
    reason: str


def replicas_for(demand: float, capacity_per_replica: float, target_utilisation: float) -> int:
    """Replicas an HPA at ``target_utilisation`` settles on for ``demand``."""
    if capacity_per_replica <= 0 or not 0 < target_utilisation <= 1:
        raise ValueError("capacityPerReplica must be > 0 and target utilisation in (0, 1]")
    return max(0, math.ceil(demand / (capacity_per_replica * target_utilisation) - 1e-9))


def decide_floor(x: FloorInput) -> FloorDecision:
    if x.min_replicas > x.max_replicas:
        raise ValueError("minReplicas must not exceed maxReplicas")
    base = x.min_replicas
    active_lift = x.current_lift if (x.current_lift and x.lift_until_s is not None and x.now_s < x.lift_until_s) else None
    if not x.gate_active:
        return FloorDecision(base, None, None, "Gate closed: the HPA scales reactively")
    held = max(x.held_replicas, x.min_replicas, 1)
    ratio = x.median_peak / (held * x.capacity_per_replica * x.target_utilisation)
    if math.isfinite(ratio) and ratio > 1.0 + x.tolerance:
        want = min(x.max_replicas, max(base, replicas_for(x.upper_peak, x.capacity_per_replica, x.target_utilisation)))
        if want > held:
            lift = max(want, active_lift or 0)
            until = max(x.peak_end_s, x.lift_until_s or 0.0) if active_lift else x.peak_end_s
            return FloorDecision(
                lift,
                lift,
                until,
                f"Lifted to {lift}: forecast peak {x.median_peak:.4g} (q {x.upper_peak:.4g}) exceeds the "
                f"{held} held replicas by {100 * (ratio - 1):.0f}% > {100 * x.tolerance:.0f}% tolerance",
            )
    if active_lift:
        return FloorDecision(active_lift, active_lift, x.lift_until_s, f"Holding lift {active_lift} until the predicted peak passes")
    return FloorDecision(base, None, None, "No rise beyond tolerance forecast: floor at minReplicas")
