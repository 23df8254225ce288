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
passed), this raises the served median just past the rise threshold and the upper quantile to most
of the plateau seen: the floor lifts, sized for the ramp, at the earliest plausible time, and hands
back to the HPA once the ramp is there. The cost is the hold before the ramp (up to the spread), paid in
replica-hours; the gate still judges the served forecast (its rise calls must come true). The hold
waits past the latest start seen no longer than the spread is wide (at least 5 minutes, at most
15), then, like a weekend morning, keeps the models from calling the rise they expect at that time
for a while; after a lasting move of the ramp's time the spread follows the new time, and on the
day after a day moved the hold waits at both times, not across the hour between them
(:func:`hold_spread`). A ramp that came before the hold (the day moved earlier) is not held again.
A ramp that comes outside the hold, up to ``catch_span`` minutes before it or after its release (a
day moved by an hour), before any other steep rise that day, is caught as it comes: from its first
risen minute in the data, for ``catch`` minutes while it stays risen, the upper is most of the
plateau seen over the level before it, where the HPA would chase the climb (:func:`_catch_moved`).

A ramp is a *lasting* steep rise (:func:`.ramp_spread.day_onsets`). Days start at midnight UTC, or
at noon UTC when the recent ramps came near midnight (a tenant east of UTC+7 opening in the morning:
:attr:`~.ramp_spread.RampHoldConfig.midnight`, :func:`_near_midnight`), so that a day boundary does
not split a ramp's spread. Pure numpy, causal (position ``i`` only reads ``y[: i + 1]``),
stateless: nothing to fit.
"""

from __future__ import annotations

import numpy as np

from .features import FeatureConfig, rolling_max, step_index
from .ramp_spread import HoldSpread, RampHoldConfig, cum_mean, day_onsets, hold_spread

__all__ = ["HoldSpread", "RampHoldConfig", "carried_days", "day_onsets", "hold_spread", "ramp_hold"]


def ramp_hold(y: np.ndarray, t0_s: float, idx: np.ndarray, fcfg: FeatureConfig, median: np.ndarray,
              upper: np.ndarray, tolerance: float, cfg: RampHoldConfig | None = None,
              persistence: np.ndarray | None = None,
              cache: dict[int, tuple[int, float] | None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, upper, held) for forecasts made at positions ``idx`` of ``y`` (``y[0]`` at Unix time
    ``t0_s``): where a ramp is due and not yet seen today (module docstring), the median is raised to
    persistence x (1 + margin x tolerance) and the upper to most of the plateau the recent ramps
    reached (``plateau_share``), never lowered there. Between the hold's windows
    (:class:`HoldSpread`), for ``release`` minutes after the last one when no ramp came, over the
    spread on a weekday that did not ramp one and two weeks ago (a weekend) while the other days
    did, and over it on a day whose ramp came before the hold, the median is lowered to at most the
    rise threshold (persistence x (1 + tolerance)): no rise is called from the ramp the models
    expect at that time. A ramp that comes outside the hold is
    caught as it comes (:func:`_catch_moved`). ``held`` marks the held and caught positions.

    ``cache`` (kept by the caller between calls on the same, growing series) keeps each whole past
    day's ramp by the minute since the epoch the day starts at: the operator's forecast otherwise
    re-reads 14 days for every decision (about 1.7 ms), and a day the series no longer reaches (two
    weeks ago this morning, in 14 days of history) stays known. A day neither holds whole, with the
    ``pre`` minutes before it, is unknown: it makes no day type quiet. Where the days start is
    decided for each position from the midnight-UTC days whose ramps were known by then, so a batch
    (a backtest) holds as the positions were served one by one. Positions that read a value that is
    not finite are served as given (fill gaps first, as the operator's ``regularize`` does): one NaN
    would poison every window mean after it."""
    cfg = cfg or RampHoldConfig()
    y = np.asarray(y, dtype=float)
    idx = np.asarray(idx, dtype=np.int64)
    med = np.array(median, dtype=float, copy=True)
    up = np.array(upper, dtype=float, copy=True)
    held = np.zeros(len(idx), dtype=bool)
    day = fcfg.day
    if fcfg.step_s != 60 or len(idx) == 0:
        return med, up, held
    pers = rolling_max(y, idx, fcfg.window, {}) if persistence is None else np.asarray(persistence, dtype=float)
    bad = ~np.isfinite(y)
    if bad.any():  # a gap poisons every window mean after it: positions that read it are served as given
        gap = int(np.argmax(bad))
        ok = idx < gap
        if ok.any():
            med[ok], up[ok], held[ok] = ramp_hold(y[:gap], t0_s, idx[ok], fcfg, med[ok], up[ok], tolerance, cfg,
                                                  pers[ok], cache)
        return med, up, held
    c = np.concatenate(([0.0], np.cumsum(y)))
    keep = cache if cache is not None else {}
    utc = _Days(y, c, t0_s, 0, day, cfg, keep)
    noon = _Days(y, c, t0_s, day // 2, day, cfg, keep)
    tgt = idx + fcfg.horizon  # first minute of each target window
    # The clock is decided from the midnight days whose plateau check is over (as the hold reads
    # yesterday's ramp): positions with the same such days get the same clock, in a batch as served.
    over = (idx + 1 - cfg.sustain - 10 + utc.off) // day  # midnight days before this one are over
    for k in np.unique(over).tolist():
        mine = over == k
        days = noon if _near_midnight(utc, noon, int(k), cfg) else utc
        dnum = (tgt + days.off) // day  # the day of each target window (0: the day y[0] is in)
        for d in np.unique(dnum[mine]).tolist():
            start_d = days.start(d)
            in_day = mine & (dnum == d)
            # Yesterday's ramp is known once its plateau check is over, ``sustain + 10`` minutes into
            # today: positions from then on are held with it (as served at that time), earlier ones without.
            known = idx + 1 >= start_d + cfg.sustain + 10
            for part in (in_day & ~known, in_day & known):
                sel = np.flatnonzero(part)
                if len(sel) == 0:
                    continue
                past = days.past(range(d - cfg.lookback_days, d), int(idx[sel].min()))
                plan = _day_plan(past, d, cfg)
                if plan is not None:
                    _hold_day(plan, sel, y, c, idx, tgt, pers, start_d, fcfg, tolerance, cfg, med, up, held)
    if keep:
        oldest = max(keep) - 2 * cfg.lookback_days * day
        for k in [k for k in keep if k < oldest]:
            del keep[k]
    return med, up, held


class _Days:
    """The hold's days of a series ``y`` (cumulative sum ``c``) whose first sample is at Unix time
    ``t0_s``: each starts ``day_start`` minutes after midnight UTC; day ``d`` starts at
    ``y[start(d)]`` (day 0 holds ``y[0]``). Each day's ramp is read once (:func:`day_onsets`) and kept
    in ``keep`` by the minute since the epoch at which the day starts (:meth:`key`)."""

    def __init__(self, y: np.ndarray, c: np.ndarray, t0_s: float, day_start: int, day: int,
                 cfg: RampHoldConfig, keep: dict[int, tuple[int, float] | None]) -> None:
        m0 = step_index(t0_s, 60)
        self.y, self.c, self.day, self.cfg, self.keep = y, c, day, cfg, keep
        self.off = (m0 - day_start) % day  # minutes from day 0's start to y[0]
        self.m0 = m0 - self.off  # minute since the epoch at which day 0 starts
        self.read: dict[int, tuple[int, float] | None] = {}

    def start(self, d: int) -> int:
        return d * self.day - self.off

    def key(self, d: int) -> int:
        return self.m0 + d * self.day

    def onset(self, d: int, upto: int) -> tuple[int, float] | None:
        if d not in self.read:
            if self.key(d) in self.keep:  # a whole day seen before, also one this series no longer reaches
                self.read[d] = self.keep[self.key(d)]
            else:
                self.read[d] = day_onsets(self.y, self.start(d), self.cfg, upto, self.day, self.c)
                # kept when read whole, or when a ramp was found in the part the series holds (what
                # :meth:`past` knows of such a day): a later, shorter series may no longer reach it
                if self.start(d) - self.cfg.pre >= 0 or self.read[d] is not None:
                    self.keep[self.key(d)] = self.read[d]
        return self.read[d]

    def past(self, ks: range, first: int) -> dict[int, tuple[int, float] | None]:
        """The ramps (or None) of the days ``ks`` known to a forecast made at position ``first``: whole
        past days whose plateau check was over by then, that the series holds with the ``pre``
        minutes before them or the cache holds. A day that starts less than ``pre`` minutes into the
        series, or before it, is known only when a ramp was found in the part the series holds after
        its first ``pre`` minutes, which no rise can be read in (a ramp there would read as none); any
        other day is unknown, not quiet. (Until 2026-12-07 a day that started before the series was
        unknown unless cached: a fortnight's first refit, whose series starts at the first minute of
        day ``d - 14``, kept no ramp of it, and on a weekday whose last week was a holiday the later
        refits that morning, from a series starting hours into that day with its ramp in it, did not
        hold; bench holidays, report seed 5004, 4 minutes short at the test week's first ramp.)"""
        cfg, out = self.cfg, {}
        for k in ks:
            start, cached = self.start(k), self.key(k) in self.keep
            if self.start(k + 1) + cfg.sustain + 10 > first + 1:
                continue
            found = self.onset(k, first + 1)
            if start >= cfg.pre or cached or found is not None:
                out[k] = found
        return out


def _near_midnight(utc: _Days, noon: _Days, over: int, cfg: RampHoldConfig) -> bool:
    """Whether the hold's days start at noon UTC for positions by which the midnight-UTC days
    before day ``over`` have ended with their plateau checks (so the answer is the same for all of
    them): when the ramps of that fortnight came at a median of less than ``cfg.midnight`` minutes
    from midnight, and read in noon days they come at the same time (within ``cluster_min``). So a
    ramp jittering across midnight (a tenant at UTC+8 opening at 8:00, or at UTC+10 at 10:00) is one
    day's ramp, not yesterday's late one or none; but where a noon day's first lasting rise is
    something else in the local night (a nightly job), the days stay at midnight."""
    first = utc.start(over) + cfg.sustain + 10 - 1  # the first position that knows day over - 1
    half = utc.day // 2

    def from_midnight(m: int) -> int:  # a minute of a midnight-UTC day as minutes from midnight, -720..720
        return m if m <= half else m - utc.day

    at = [from_midnight(m) for m, _ in filter(None, utc.past(range(over - cfg.lookback_days, over), first).values())]
    if len(at) < cfg.min_onsets or float(np.median(np.abs(at))) >= cfg.midnight:
        return False
    k = (first + noon.off) // noon.day
    at_noon = [from_midnight((m + half) % utc.day)
               for m, _ in filter(None, noon.past(range(k - cfg.lookback_days, k), first).values())]
    return len(at_noon) >= cfg.min_onsets and abs(float(np.median(at_noon)) - float(np.median(at))) <= cfg.cluster_min


def _day_plan(past: dict[int, tuple[int, float] | None], d: int,
              cfg: RampHoldConfig) -> tuple[bool, HoldSpread] | None:
    """(quiet, spread) for day ``d`` from the past days' ramps ``past`` (day -> ramp, or None for a
    day without one; a day missing is unknown); None when the day is neither held nor lowered. A day
    whose weekday ramped one or two weeks ago is held over the spread; one whose weekday ramped
    neither week while the others did (a weekend) is *quiet*."""
    ramped = bool(past.get(d - 7) or past.get(d - 14))
    quiet = not ramped and all(k in past and past[k] is None for k in (d - 7, d - 14))
    if not (ramped or quiet):
        return None
    spread = hold_spread([v for _, v in sorted(past.items()) if v is not None], cfg)
    return None if spread is None else (quiet, spread)


def _came_early(y: np.ndarray, c: np.ndarray, lo: int, end: int, ratio: float, cfg: RampHoldConfig) -> bool:
    """Whether today's ramp already came between ``lo`` and ``end`` (exclusive; the first held
    position): a steep rise (its 3-minute mean ``1 + rise`` times the ``pre`` minutes before, and
    times the median of the ``came_base`` minutes before: a dip to no load is not the level it rose
    from) that the load of the 5 minutes before ``end`` is at least ``max(1 + rise, came_share x
    ratio)`` times above that median, and whose 10-minute means never fell back under ``1 + rise``
    times it since: a ramp that came and lasted, not a blip at night, nor a smaller lasting shift.
    Reads ``y[lo - came_base : end]`` only."""
    lo = max(lo, cfg.came_base, cfg.pre)
    hi = end - 2  # a rise starting at end - 3 is the last whose 3-minute mean is in the data
    if hi <= lo:
        return False
    m = np.arange(lo, hi)
    three = cum_mean(c, m, m + 3)
    now = float(cum_mean(c, end - 5, end))
    need = max(1.0 + cfg.rise, cfg.came_share * ratio)
    for j in np.flatnonzero(three >= (1.0 + cfg.rise) * cum_mean(c, m - cfg.pre, m))[:100].tolist():
        o = int(m[j])
        base = float(np.median(y[o - cfg.came_base : o]))
        if base <= 0 or three[j] < (1.0 + cfg.rise) * base or now < need * base:
            continue
        k = np.arange(o, end - 9)  # every whole 10-minute window from the rise to the end
        if len(k) == 0 or float(cum_mean(c, k, k + 10).min()) >= (1.0 + cfg.rise) * base:
            return True
    return False


def _hold_day(plan: tuple[bool, HoldSpread], sel: np.ndarray, y: np.ndarray, c: np.ndarray,
              idx: np.ndarray, tgt: np.ndarray, pers: np.ndarray, start_d: int, fcfg: FeatureConfig,
              tolerance: float, cfg: RampHoldConfig, med: np.ndarray, up: np.ndarray, held: np.ndarray) -> None:
    """Apply day ``plan`` (:func:`_day_plan`) to the positions ``idx[sel]`` of the day starting at
    ``y[start_d]``, in place on ``med``, ``up`` and ``held`` (see :func:`ramp_hold`)."""
    quiet, spread = plan
    i0 = start_d + spread.earliest - cfg.early - fcfg.horizon  # first position held: its window starts `early` before
    # each window waits past its latest ramp no longer than it is wide (late_min..late minutes)
    waits = [(a - cfg.early, b + min(cfg.late, max(cfg.late_min, b - a))) for a, b in spread.windows]
    if not quiet and spread.ratio <= cfg.catch_ratio_max:
        _catch_moved(sel, y, c, idx, pers, start_d, [(a - fcfg.horizon, b) for a, b in waits], tolerance,
                     spread.ratio, cfg, med, up, held)
    if i0 - cfg.pre < 0 or i0 > len(y):
        return  # (the hold's level is read before its first position: causal where it applies)
    pre = float(cum_mean(c, i0 - cfg.pre, i0))
    if pre <= 0:
        return
    live = sel[(idx[sel] >= i0) & (tgt[sel] - start_d <= waits[-1][1] + cfg.release) & (idx[sel] < len(y))]
    if len(live) == 0:
        return  # (a served forecast outside the morning: nothing to read today's data for)
    # Today's ramp came before the hold (the day moved earlier) and the level is still risen: holding
    # would raise the upper to the plateau ratio times the plateau; treat the spread like a quiet one.
    quiet = quiet or _came_early(y, c, start_d, i0, spread.ratio, cfg)
    lo = max(i0, 3)
    for j in live.tolist():
        if held[j]:
            continue  # caught: today's ramp came at another time (_catch_moved)
        i = int(idx[j])
        m = int(tgt[j]) - start_d
        # today's ramp already observed (3-minute mean risen) since the hold began: stop
        if i + 1 - 3 >= lo and float(cum_mean(c, np.arange(lo, i - 1), np.arange(lo + 3, i + 2)).max()) >= (1.0 + cfg.rise) * pre:
            continue
        base = pers[j] if np.isfinite(pers[j]) else pre
        if quiet or not any(a <= m <= b for a, b in waits):
            # a quiet day, or between the windows / after the last without a ramp: no rise called from it
            med[j] = min(med[j], base * (1.0 + tolerance))
            continue
        plateau = pre * spread.ratio
        med[j] = max(med[j], min(plateau, base * (1.0 + cfg.median_margin * tolerance)))
        up[j] = max(up[j], plateau * cfg.plateau_share, med[j])  # never under the median it holds
        held[j] = True


def _catch_moved(sel: np.ndarray, y: np.ndarray, c: np.ndarray, idx: np.ndarray, pers: np.ndarray, start_d: int,
                 waits: list[tuple[int, int]], tolerance: float, ratio: float, cfg: RampHoldConfig,
                 med: np.ndarray, up: np.ndarray, held: np.ndarray) -> None:
    """Lift the positions ``idx[sel]`` of a ramp day (starting at ``y[start_d]``) whose last ``catch``
    minutes hold the start of today's ramp come at another time: a steep rise outside the hold's
    ``waits`` (first, last data minute of day of each window the hold serves), from ``catch_span``
    minutes before the first to ``catch_span`` after the last one's release. The rise starts at
    minute ``o`` when ``y[o]`` is ``1 + rise`` times the level before it (the mean of the ``pre``
    minutes before it, or the median of the ``came_base`` minutes before it when that mean is under
    80 % of it: a dip is not the level) and ``1 + rise / 2`` times the highest of those ``pre``
    minutes (noise is no rise), and ``y[o - 1]`` was not; every minute from ``o`` to the
    position must stay there. Nothing is caught after a steep rise earlier in the span, nor once a
    ramp came earlier today and lasted (:func:`_came_early`), nor when ``ratio`` is over
    ``catch_ratio_max`` (checked by the caller). The median is raised as in the hold and the upper
    to ``plateau_share`` x ``ratio`` times the level."""
    lo_day, hi_day = waits[0][0] - cfg.catch_span, waits[-1][1] + cfg.release + cfg.catch_span
    span_lo = max(start_d + lo_day, cfg.pre + 1)
    span = np.arange(span_lo, min(len(y), start_d + hi_day + 1))
    # minutes 1 + rise times the mean before them, once for all positions (the level is at least that
    # mean); each position reads only those up to itself
    starts = span[y[span] >= (1.0 + cfg.rise) * cum_mean(c, span - cfg.pre, span)] if len(span) else span
    if len(starts) == 0:
        return
    # the first steep rise of the span (3-minute mean 1 + rise times the mean before it, from some
    # load), also once: a rise at ``o`` is not today's ramp when one came before it (at o - 3 or sooner)
    three = span[span + 3 <= len(y)]
    before = cum_mean(c, three - cfg.pre, three)
    steep = three[(cum_mean(c, three, three + 3) >= (1.0 + cfg.rise) * before) & (before > 0)]
    first_steep = int(steep[0]) if len(steep) else len(y)
    for j in sel.tolist():
        i = int(idx[j])
        if held[j] or not (span_lo + 1 <= i < len(y)) or i - start_d > hi_day:
            continue
        for o in starts[(starts >= i + 1 - cfg.catch) & (starts <= i)].tolist():
            if any(a <= o - start_d <= b for a, b in waits):
                continue  # inside a window the hold serves: the hold has it
            level = float(cum_mean(c, o - cfg.pre, o))
            usual = float(np.median(y[max(0, o - cfg.came_base) : o]))
            level = usual if level < 0.8 * usual else level  # a dip is not the level it rose from
            need = (1.0 + cfg.rise) * level
            noise = (1.0 + cfg.rise / 2) * float(y[o - cfg.pre : o].max())  # a minute noise reaches
            if not (level > 0 and y[o - 1] < need and float(y[o : i + 1].min()) >= need and y[o] >= noise):
                continue  # (written so that a NaN in the data is no rise)
            if first_steep <= o - 3 or _came_early(y, c, start_d, o, ratio, cfg):
                break  # a steep rise came before this one today: this is not the ramp
            base = pers[j] if np.isfinite(pers[j]) else level
            plateau = level * ratio * cfg.plateau_share
            med[j] = max(med[j], min(plateau, base * (1.0 + cfg.median_margin * tolerance)))
            up[j] = max(up[j], plateau)
            held[j] = True
            break


def carried_days(cache: dict[int, tuple[int, float] | None], t0_s: float,
                 cfg: RampHoldConfig | None = None) -> dict[int, tuple[int, float] | None]:
    """The entries of a :func:`ramp_hold` cache (minute since the epoch at which a day starts -> its
    ramp) for the days a series whose first sample is at ``t0_s`` does not hold whole with the
    ``cfg.pre`` minutes before them: what a refit carries over. The days it holds whole
    :func:`ramp_hold` reads again from the series."""
    cfg = cfg or RampHoldConfig()
    return {start: onset for start, onset in cache.items() if start < step_index(t0_s, 60) + cfg.pre}
