"""An emulated HorizontalPodAutoscaler replaying a 1-minute demand trace at 15-second ticks.

Why this exists: the bench must show what a floor policy does to the *real* HPA algorithm, not to
an idealised one. The emulation follows the controller's v2 logic: a sync every 15 s; the metric it
reads is 60 s old; desired = ceil(metric / target-per-pod) unless the usage ratio is within the
tolerance (then it keeps the current count); scale-up takes the new recommendation at once, limited
by the default policy (max of +100% and +4 pods per period); scale-down takes the highest
recommendation of the last 300 s (stabilisation window); the result is clamped to
[minReplicas, maxReplicas], where minReplicas is what the floor policy wrote. New pods serve only
after the start delay. Capacity is ready pods x capacityPerReplica.

The policy is called once per simulated minute with the HPA's current replica count and returns the
minReplicas to write. Metrics: under-provisioned minutes (ticks where demand > ready capacity, in
minutes), unserved demand share, replica-hours (all pods, ready or not), scale events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["HPAConfig", "SimResult", "simulate"]


@dataclass(frozen=True)
class HPAConfig:
    sync_s: int = 15
    target_utilisation: float = 0.7
    tolerance: float = 0.1
    metric_delay_s: int = 60
    scale_down_window_s: int = 300
    start_delay_s: int = 30
    capacity_per_replica: float = 50.0
    min_replicas: int = 2
    max_replicas: int = 200


@dataclass(frozen=True)
class SimResult:
    upm: float
    unserved_share: float
    replica_hours: float
    scale_events: int
    replicas: np.ndarray  # desired replicas per tick
    under: np.ndarray | None = None  # per tick: demand above ready capacity (for diagnostics)


FloorPolicy = Callable[[int, int], int]  # (minute index into the test span, current replicas) -> minReplicas


def simulate(demand: np.ndarray, cfg: HPAConfig, policy: FloorPolicy | None, warm_demand: float | None = None) -> SimResult:
    """Replay ``demand`` (1-minute values); ``policy(minute, replicas)`` returns the floor each minute."""
    d = np.asarray(demand, dtype=float).tolist()
    n_min = len(d)
    ticks_per_min = 60 // cfg.sync_s
    n_ticks = n_min * ticks_per_min
    per_pod = cfg.capacity_per_replica * cfg.target_utilisation
    start0 = d[0] if warm_demand is None else warm_demand
    replicas = max(cfg.min_replicas, math.ceil(start0 / per_pod))
    ready = replicas
    pending: deque[tuple[float, int]] = deque()  # (ready_at_s, count)
    recs: deque[tuple[float, int]] = deque()
    floor = cfg.min_replicas
    cap = cfg.capacity_per_replica
    tol = cfg.tolerance
    delay_ticks = cfg.metric_delay_s // cfg.sync_s
    upm_ticks = 0
    unserved = 0.0
    total = 0.0
    pod_ticks = 0
    events = 0
    out = np.empty(n_ticks, dtype=np.int32)
    under = np.zeros(n_ticks, dtype=bool)
    for k in range(n_ticks):
        now = k * cfg.sync_s
        minute = k // ticks_per_min
        if k % ticks_per_min == 0 and policy is not None:
            floor = min(max(int(policy(minute, replicas)), cfg.min_replicas), cfg.max_replicas)
        while pending and pending[0][0] <= now:
            ready += pending.popleft()[1]
        # HPA sync: metric is the demand as it was metric_delay_s ago.
        mk = k - delay_ticks
        metric = d[mk // ticks_per_min] if mk >= 0 else start0
        ratio = metric / (replicas * per_pod)
        proposal = replicas if abs(ratio - 1.0) <= tol else max(1, math.ceil(metric / per_pod - 1e-9))
        recs.append((now, proposal))
        while recs and recs[0][0] <= now - cfg.scale_down_window_s:
            recs.popleft()
        desired = replicas
        if proposal > desired:
            desired = proposal
        down = max(r for _, r in recs)
        if desired > down:
            desired = down
        up_limit = max(2 * replicas, replicas + 4)
        desired = min(desired, up_limit, cfg.max_replicas)
        desired = max(desired, floor)
        if desired != replicas:
            events += 1
            if desired > replicas:
                pending.append((now + cfg.start_delay_s, desired - replicas))
            else:
                drop = replicas - desired
                while drop and pending:  # unready pods go first
                    t_r, c = pending.pop()
                    take = min(c, drop)
                    drop -= take
                    if c > take:
                        pending.append((t_r, c - take))
                ready -= drop
            replicas = desired
        out[k] = replicas
        pod_ticks += replicas
        dem = d[minute]
        capacity = ready * cap
        total += dem
        if dem > capacity + 1e-9:
            upm_ticks += 1
            unserved += dem - capacity
            under[k] = True
    return SimResult(
        upm=upm_ticks / ticks_per_min,
        unserved_share=unserved / total if total else 0.0,
        replica_hours=pod_ticks * cfg.sync_s / 3600.0,
        scale_events=events,
        replicas=out,
        under=under,
    )
