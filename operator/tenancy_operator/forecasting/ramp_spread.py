"""What the past days' ramps say about today's: each day's first lasting steep rise
(:func:`day_onsets`) and the times of day today's hold waits at (:func:`hold_spread`), with the
settings of the whole ramp hold (:class:`RampHoldConfig`; :mod:`.ramp` applies them to today).

A ramp is a *lasting* steep rise: the 3-minute mean reaches ``1 + rise`` times the mean of the 30
minutes before, and every 10-minute mean of the next two hours stays there. Bursts, spikes and
flash crowds that fall back within two hours are not ramps; neither is a slow daily swell. Pure
numpy, causal (reads only ``y[:upto]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HoldSpread", "RampHoldConfig", "cum_mean", "day_onsets", "hold_spread"]


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
    split_gap: int = 45
    """Onsets of the spread more than this many minutes (of the day) apart from every onset of
    another group are a group of their own: a day whose pattern moved (one day, or the start of a
    lasting move), not jitter (a jitter of +-30 minutes over a week of ramps leaves no such gap)."""
    early: int = 2
    """Minutes before the earliest onset seen that the first held forecast's target window starts: the
    horizon already covers the pods' start (until 2026-12-06 the hold began when the window's *end*
    reached that minute, ``window - 1`` minutes sooner than any pod needs, paid on every held day)."""
    late: int = 15
    """Minutes after the latest onset seen that the hold ends when no ramp came, at most: the hold
    waits past the latest onset no longer than the spread is wide, and at least ``late_min``
    minutes. A week of ramps within 3 minutes of each other says today's comes within a few minutes
    of them too; waiting 15 for it on the one day it moved (by an hour) cost more replica-hours than
    the rest of the week's holds together (bench hour_shift, development seeds 3 and 4)."""
    late_min: int = 5
    release: int = 45
    """Minutes after the hold ends without a ramp (the spread passed: a day without it, or moved)
    during which the served median is kept at the rise threshold (persistence x (1 + tolerance)).
    The models still expect the ramp they saw at this time every day, and their median a little over
    the threshold kept the hold's plateau-sized lift in place long after the hold (bench hour_shift
    development seed 3: 34 minutes at 45 replicas for a load of 10 on the day that moved an hour)."""
    came_share: float = 0.85
    """A steep rise earlier today, before the hold would start, counts as today's ramp come early (the
    day moved) when the load of the last 5 minutes is this share of the plateau ratio seen above the
    level before that rise, and it never fell back since: on the bench's days that moved an hour
    earlier that share was 0.90-0.97 at the hold's start; a lasting level shift (up to 2x) before a
    ramp of 2.4x or more stays under it."""
    came_base: int = 120
    """Minutes before a rise whose median is the level it rose from, for :attr:`came_share`."""
    catch_span: int = 75
    """Minutes before the hold's earliest wait and after its release during which a steep rise, on a
    day whose ramp has not come yet, is caught as today's ramp come at another time (a day moved by
    an hour: the clock change, an event)."""
    catch: int = 10
    """Minutes after such a rise began that the served forecast is lifted to most of the plateau seen
    (:attr:`plateau_share`), while every minute since it stays risen: the ramp is known to go there,
    the HPA would chase it minute by minute. After that the HPA and the models have the risen load."""
    catch_ratio_max: float = 20.0
    """No catch when the ramps seen rose more than this many times the level before them (a night near
    no load): a minute's blip there is no sign of the ramp, and the ratio times it a day's pods."""
    plateau_share: float = 0.75
    """Share of the plateau seen that the held and the caught upper are: at the HPA's usual target
    utilisation (70%) the pods for 75% of it serve 1.07x the plateau at full utilisation, so the ramp is
    served while the HPA scales the rest on the load itself; a rule whose target is higher holds a share
    with the same margin, up to the whole plateau (``reconcile.rule_forecast.hold_config``). The plateau
    seen is the largest ratio of the fortnight over a level read before the rise, which already
    overshoots a day's plateau by a few percent, and the HPA keeps such an excess for hours (within its
    tolerance it does not scale down). Until 2026-12-07 the upper was the whole ratio, then 85% of it
    (1.2x the plateau at full utilisation). From 85% to 75% on development seeds: jittered_ramps (1-5,
    1001-1005) the same under-provisioned minutes on all 20 runs, replica-hours over the better
    baseline's a median +0.54% -> +0.28% (30 s pod start) and +0.52% -> +0.34% (120 s); east_ramps
    (1001-1003, 120 s) +0.79% -> +0.48%; ramps, holidays and hour_shift within half a point either way
    (where the climb takes several minutes the HPA scales a step more after the smaller hold)."""
    midnight: int = 180
    """When the ramps of the last fortnight came a median of less than this many minutes from midnight
    UTC, the hold's days start at noon UTC instead: a day boundary in the middle of the ramps' spread
    splits one weekday's ramp between two days."""
    median_margin: float = 3.0
    """The held median is persistence x (1 + ``median_margin`` x tolerance), capped at the plateau:
    past the rise threshold (with room for the HPA's rounding up) without paying a plateau-sized
    median error on the hold."""


def cum_mean(c: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """Mean of y[lo:hi] from the cumulative sum ``c`` (len(y) + 1)."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


def day_onsets(y: np.ndarray, start: int, cfg: RampHoldConfig, upto: int, day: int = 1440,
               c: np.ndarray | None = None) -> tuple[int, float] | None:
    """(minute of day, plateau ratio) of the first lasting steep rise of the day that starts at
    ``y[start]``, using only ``y[:upto]``; None when there was none (or the day is not known).

    A rise is a minute whose 3-minute mean is ``1 + rise`` times the mean of the ``pre`` minutes
    before it (the minute read is that crossing, a minute or two before the first risen sample of a
    step). It is the day's whose first risen sample its run of risen minutes begins with: a step at
    00:00 crosses at 23:59 and is the new day's (at minute 0), and a run that began yesterday (a ramp
    at 23:50, whose level the new day's first minutes still read as risen) is no ramp of today's;
    either was read on both days, so a weekday after a late ramp looked ramped."""
    y = np.asarray(y, dtype=float)
    c = np.concatenate(([0.0], np.cumsum(y))) if c is None else c
    lo = max(start - 2, cfg.pre + 1)
    hi = min(start + day, upto - cfg.sustain - 10)
    if hi <= lo:
        return None
    m = np.arange(lo - 1, hi)  # (m[0] only says whether a run was already on at lo)
    pre = np.maximum(cum_mean(c, m - cfg.pre, m), 1e-9)
    thr = (1.0 + cfg.rise) * pre
    risen = cum_mean(c, m, m + 3) >= thr
    began = np.maximum.accumulate(np.where(risen & ~np.concatenate(([True], risen[:-1])), np.arange(len(m)), -1))
    for j in (np.flatnonzero(risen[1:]) + 1)[:50].tolist():
        r = int(began[j])
        if r < 1:
            continue  # a run already on before the day (yesterday's ramp)
        first = int(m[r]) + int(np.argmax(y[m[r] : m[r] + 3] >= thr[r]))  # the run's first risen sample
        if not start <= first < start + day:
            continue
        o = int(m[j])
        tens = cum_mean(c, np.arange(o + 10, o + cfg.sustain), np.arange(o + 20, o + cfg.sustain + 10))
        if tens.min() >= thr[j]:
            peak = float(cum_mean(c, np.arange(o, o + 30), np.arange(o + 5, o + 35)).max())
            return max(o, start) - start, peak / float(pre[j])
    return None


@dataclass(frozen=True)
class HoldSpread:
    """Where today's hold waits for the ramp: ``windows`` as (earliest, latest minute of day) of each
    time the recent ramps came at, earliest first, never overlapping; ``ratio`` the plateau the
    recent ramps reached over the level before them (the largest)."""

    windows: tuple[tuple[int, int], ...]
    ratio: float

    @property
    def earliest(self) -> int:
        return self.windows[0][0]


def hold_spread(seen: list[tuple[int, float]], cfg: RampHoldConfig | None = None) -> HoldSpread | None:
    """The times of day today's hold waits at (:class:`HoldSpread`), from the past days' ramps ``seen``
    as (minute of day, plateau ratio), oldest first; None when fewer than ``cfg.min_onsets`` ramps
    support it.

    The onsets within ``cluster_min`` of the latest one are split into groups where their minutes of
    the day leave a gap over ``split_gap``. When the latest ramp's group has only that ramp (a day
    that moved, once or for good: not known yet), the hold waits at every group's time. When it
    has two or more, the pattern the latest days follow is known, and the hold does not keep paying
    for the other groups: a single other ramp (a day that moved once) is left out; a group whose
    ramps all came before the latest group's (a lasting move of the pattern) is moved by the
    difference of the two groups' medians, so it keeps the spread and the count but at the new time;
    a group interleaved with it in time (two times that alternate, such as one weekday's) stays, as
    a window of its own. So after a lasting move by an hour the mornings are held from about the new
    time (bench hour_shift: +3.3-3.9% replica-hours when they were held across the whole hour), and on
    the first day after a move the hold waits at the old time and at the new one, not across the
    hour between them (until 2026-12-06 it did: an hour of plateau-sized lift on the day after a
    day moved earlier, or on the second day of a later lasting move)."""
    cfg = cfg or RampHoldConfig()
    if not seen:
        return None
    centre = seen[-1][0]
    near = [(k, v) for k, v in enumerate(seen) if abs(v[0] - centre) <= cfg.cluster_min]
    order = sorted(near, key=lambda kv: kv[1][0])
    groups: list[list[tuple[int, tuple[int, float]]]] = [[order[0]]]
    for kv in order[1:]:
        if kv[1][0] - groups[-1][-1][1][0] > cfg.split_gap:
            groups.append([])
        groups[-1].append(kv)
    last = len(seen) - 1
    mine = next(g for g in groups if any(k == last for k, _ in g))
    if len(mine) == 1:
        parts = [[v for _, v in g] for g in groups]
    else:
        parts = [[v for _, v in mine]]
        first_mine = min(k for k, _ in mine)
        mid = float(np.median([v[0] for _, v in mine]))
        for g in groups:
            if g is mine or len(g) == 1:
                continue
            if max(k for k, _ in g) < first_mine:
                shift = int(round(mid - float(np.median([v[0] for _, v in g]))))
                parts[0] += [(v[0] + shift, v[1]) for _, v in g]
            else:
                parts.append([v for _, v in g])
    used = [v for part in parts for v in part]
    if len(used) < cfg.min_onsets:
        return None
    windows: list[tuple[int, int]] = []
    for a, b in sorted((min(v[0] for v in part), max(v[0] for v in part)) for part in parts):
        if windows and a <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], b))
        else:
            windows.append((a, b))
    return HoldSpread(tuple(windows), max(v[1] for v in used))
