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
    """One decision's inputs. ``current_lift``/``lift_until_s`` come from the previous
    :class:`FloorDecision` (None when nothing is lifted); ``held_replicas`` is what the HPA holds now;
    ``recent_demand`` (the recent maximum of the metric) gives what the HPA would hold on its own
    metric, which is what a rise is measured against while a lift is in place."""

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
    recent_demand: float | None = None
    risk_utilisation: float = 1.0


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
    """Rise-only floor. A rise is the median forecast needing more than the HPA holds on its own metric
    by more than the tolerance; a lift happens only if the upper forecast then needs more replicas
    than are held now and would overrun what they serve (``risk_utilisation`` of their capacity). While rises keep being forecast the lift is kept (and may grow) until the end
    of the latest predicted peak window, then released to minReplicas."""
    if x.min_replicas > x.max_replicas:
        raise ValueError("minReplicas must not exceed maxReplicas")
    base = x.min_replicas
    if not x.gate_active:
        return FloorDecision(base, None, None, "Gate closed: the HPA scales reactively")
    lifted = bool(x.current_lift) and x.lift_until_s is not None
    unit = x.capacity_per_replica * x.target_utilisation
    if x.recent_demand is not None and math.isfinite(x.recent_demand):
        held = max(replicas_for(x.recent_demand, x.capacity_per_replica, x.target_utilisation), x.min_replicas, 1)
    else:
        held = max(x.held_replicas, x.min_replicas, 1)
    ratio = x.median_peak / (held * unit)
    if math.isfinite(ratio) and ratio > 1.0 + x.tolerance:
        want = min(x.max_replicas, max(base, replicas_for(x.upper_peak, x.capacity_per_replica, x.target_utilisation)))
        if lifted:
            cur = int(x.current_lift or 0)
            # Grow a lift only by more than the tolerance, and only when the upper forecast would
            # overrun the lifted pods themselves (the same ``risk_utilisation`` test as for a first
            # lift): each step is one more scale event, and below that the lift's headroom and the
            # HPA's own reaction cover the rise (measured: 10% fewer scale events on daily ramps).
            overrun = x.upper_peak > cur * x.capacity_per_replica * x.risk_utilisation
            lift = want if (want > cur * (1.0 + x.tolerance) and overrun) else cur
            until = max(x.peak_end_s, float(x.lift_until_s or 0.0))
            return FloorDecision(lift, lift, until, f"Holding lift {lift}: a rise is still forecast")
        # A rise the HPA's headroom absorbs (upper forecast still within what the held pods serve at
        # ``risk_utilisation``) is left to the HPA: pre-empting it only adds scale events.
        at_risk = x.upper_peak > max(x.held_replicas, 1) * x.capacity_per_replica * x.risk_utilisation
        if want > x.held_replicas and at_risk:
            return FloorDecision(
                want,
                want,
                x.peak_end_s,
                f"Lifted to {want}: forecast peak {x.median_peak:.4g} (q {x.upper_peak:.4g}) exceeds the "
                f"{held} held replicas by {100 * (ratio - 1):.0f}% > {100 * x.tolerance:.0f}% tolerance",
            )
    if lifted and x.now_s < float(x.lift_until_s or 0.0):
        lift = int(x.current_lift or 0)
        return FloorDecision(lift, lift, x.lift_until_s, f"Holding lift {lift} until the predicted peak passes")
    return FloorDecision(base, None, None, "No rise beyond tolerance forecast: floor at minReplicas")
