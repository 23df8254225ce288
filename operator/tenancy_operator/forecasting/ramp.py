"""Ramp hold: the rise call for a daily ramp whose start moves from day to day, from the ramps seen.

Why this exists: on a steep morning ramp that starts at a jittered time (5-30 minutes either way)
and is missing on some weekdays, no peak forecaster can say *when* inside that spread today's ramp
comes; the median of "is the ramp in the next few minutes" stays under the rise threshold on every
morning, and the upper quantile of the next window's peak is a blur between night and day level. A
rise-only floor lifted only when the median calls the rise then comes too late (bench
jittered_ramps: about half of the reactive-to-oracle gap left). What is known is the spread: over
the last fortnight the ramp started between minute ``a`` and minute ``b`` of the day and reached
``R`` times the level before it. So on a day whose type ramped (the same weekday one or two weeks
ago did), from the earliest start seen until today's ramp is observed (or the latest start seen has
passed), this raises the served median just past the rise threshold and the upper quantile to the
plateau seen: the floor lifts, sized for the ramp, at the earliest plausible time, and hands back to
the HPA once the ramp is there. The cost is the hold before the ramp (up to the spread), paid in
replica-hours; the gate still judges the served forecast (its rise calls must come true).

A ramp is a *lasting* steep rise: the 3-minute mean reaches ``1 + rise`` times the mean of the 30
minutes before, and every 10-minute mean of the next two hours stays there. Bursts, spikes and
flash crowds that fall back within two hours are not ramps; neither is a slow daily swell. Pure
numpy, causal (position ``i`` only reads ``y[: i + 1]``), stateless: nothing to fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import FeatureConfig, rolling_max

__all__ = ["RampHoldConfig", "day_onsets", "ramp_hold"]


@dataclass(frozen=True)
class RampHoldConfig:
    rise: float = 0.5
    """A ramp takes the level to at least ``1 + rise`` times the level before it."""
    pre: int = 30
    """Minutes before an onset whose mean is the level it rose from."""
    sustain: int = 120
    """Minutes after an onset over which every 10-minute mean must stay risen (a plateau, not a burst)."""
    lookback_days: int = 14
    cluster_min: int = 75
    """Onsets within this many minutes of the most recent one form today's expected spread."""
    min_onsets: int = 5
    """Ramps needed in that spread (and one on the same weekday a week or two ago): a week of
    weekdays. With 3, flash crowds that happened to fall near the same hour on 3 of 14 days held
    (development seed 16 of flash_crowd, 92 test minutes); with 5, none of seeds 1-40."""
    early: int = 2
    """Minutes before the earliest onset seen that the target window may start and still be held."""
    late: int = 15
    """Minutes after the latest onset seen that the hold ends when no ramp came."""
    median_margin: float = 3.0
    """The held median is persistence x (1 + ``median_margin`` x tolerance), capped at the plateau:
    past the rise threshold (with room for the HPA's rounding up) without paying a plateau-sized
    median error on the hold."""


def _mean(c: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """Mean of y[lo:hi] from the cumulative sum ``c`` (len(y) + 1)."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


def day_onsets(y: np.ndarray, start: int, cfg: RampHoldConfig, upto: int, day: int = 1440,
               c: np.ndarray | None = None) -> tuple[int, float] | None:
    """(minute of day, plateau ratio) of the first lasting steep rise of the day that starts at
    ``y[start]``, using only ``y[:upto]``; None when there was none (or the day is not known)."""
    y = np.asarray(y, dtype=float)
    c = np.concatenate(([0.0], np.cumsum(y))) if c is None else c
    lo = max(start, cfg.pre)
    hi = min(start + day, upto - cfg.sustain - 10)
    if hi <= lo:
        return None
    m = np.arange(lo, hi)
    pre = np.maximum(_mean(c, m - cfg.pre, m), 1e-9)
    now = _mean(c, m, m + 3)
    cand = np.flatnonzero(now >= (1.0 + cfg.rise) * pre)
    for j in cand[:50]:
        o = int(m[j])
        tens = _mean(c, np.arange(o + 10, o + cfg.sustain), np.arange(o + 20, o + cfg.sustain + 10))
        if tens.min() >= (1.0 + cfg.rise) * pre[j]:
            peak = float(_mean(c, np.arange(o, o + 30), np.arange(o + 5, o + 35)).max())
            return o - start, peak / float(pre[j])
    return None


def ramp_hold(y: np.ndarray, t0_s: float, idx: np.ndarray, fcfg: FeatureConfig, median: np.ndarray,
              upper: np.ndarray, tolerance: float, cfg: RampHoldConfig | None = None,
              persistence: np.ndarray | None = None,
              cache: dict[int, tuple[int, float] | None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, upper, held) for forecasts made at positions ``idx`` of ``y`` (``y[0]`` at Unix time
    ``t0_s``): where a ramp is due and not yet seen today (module docstring), the median is raised to
    persistence x (1 + margin x tolerance) and the upper to the plateau the recent ramps reached,
    never lowered. ``held`` marks those positions. ``cache`` (kept by the caller between calls on
    the same, growing series) keeps each whole past day's ramp by its day since the epoch: the
    operator's forecast otherwise re-reads 14 days for every decision (about 1.7 ms)."""
    cfg = cfg or RampHoldConfig()
    y = np.asarray(y, dtype=float)
    idx = np.asarray(idx, dtype=np.int64)
    med = np.array(median, dtype=float, copy=True)
    up = np.array(upper, dtype=float, copy=True)
    held = np.zeros(len(idx), dtype=bool)
    day = fcfg.day
    if fcfg.step_s != 60 or len(idx) == 0:
        return med, up, held
    c = np.concatenate(([0.0], np.cumsum(y)))
    off = int(round(t0_s / 60.0)) % day  # minute of day of y[0]
    pers = rolling_max(y, idx, fcfg.window, {}) if persistence is None else np.asarray(persistence, dtype=float)
    tgt = idx + fcfg.horizon  # first minute of each target window
    dnum = (tgt + off) // day  # day number (in days since the epoch-aligned midnight before y[0])
    onsets: dict[int, tuple[int, float] | None] = {}
    epoch_day = (int(round(t0_s / 60.0)) - off) // day  # day number since the epoch of y's first day
    keep = cache if cache is not None else {}

    def onset(d: int, upto: int) -> tuple[int, float] | None:
        if d not in onsets:
            start = d * day - off
            key = epoch_day + d
            if start - cfg.pre >= 0 and key in keep:  # a whole day with its level before: same answer
                onsets[d] = keep[key]
            else:
                onsets[d] = day_onsets(y, start, cfg, upto, day, c) if start >= 0 else None
                if start - cfg.pre >= 0:
                    keep[key] = onsets[d]
        return onsets[d]

    for d in np.unique(dnum).tolist():
        sel = np.flatnonzero(dnum == d)
        first = int(idx[sel].min())
        start_d = d * day - off
        # only whole past days whose plateau check was over by the first forecast of this group
        past = {k: onset(k, first + 1) for k in range(d - cfg.lookback_days, d)
                if (k + 1) * day - off + cfg.sustain + 10 <= first + 1}
        if not (past.get(d - 7) or past.get(d - 14)):
            continue  # this weekday did not ramp in the last two weeks
        seen = [(k, v) for k, v in sorted(past.items()) if v is not None]
        if len(seen) < cfg.min_onsets:
            continue
        centre = seen[-1][1][0]
        near = [v for _, v in seen if abs(v[0] - centre) <= cfg.cluster_min]
        if len(near) < cfg.min_onsets:
            continue
        a = min(v[0] for v in near)
        b = max(v[0] for v in near)
        ratio = max(v[1] for v in near)
        i0 = start_d + a - cfg.early - fcfg.horizon - fcfg.window + 1  # first position held
        if i0 - cfg.pre < 0 or i0 > len(y):
            continue  # (the hold's level is read before its first position: causal where it applies)
        pre = float(_mean(c, i0 - cfg.pre, i0))
        if pre <= 0:
            continue
        for j in sel.tolist():
            i = int(idx[j])
            m = int(tgt[j]) - start_d
            if i < i0 or m > b + cfg.late or i >= len(y):
                continue
            # today's ramp already observed (3-minute mean risen) since the hold began: stop
            lo = max(i0, 3)
            if i + 1 - 3 >= lo and float(_mean(c, np.arange(lo, i - 1), np.arange(lo + 3, i + 2)).max()) >= (1.0 + cfg.rise) * pre:
                continue
            plateau = pre * ratio
            base = pers[j] if np.isfinite(pers[j]) else pre
            med[j] = max(med[j], min(plateau, base * (1.0 + cfg.median_margin * tolerance)))
            up[j] = max(up[j], plateau)
            held[j] = True
    if cache is not None and len(cache) > 2 * cfg.lookback_days:
        for k in sorted(cache)[: len(cache) - 2 * cfg.lookback_days]:
            del cache[k]
    return med, up, held
