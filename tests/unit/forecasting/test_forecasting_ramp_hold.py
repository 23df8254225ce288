"""The ramp hold: on a day type that ramped, the rise is called from the earliest ramp start seen
until today's ramp is observed; never on bursts, never on a day type that did not ramp."""

import numpy as np
from tenancy_operator.forecasting import (
    FeatureConfig,
    RampHoldConfig,
    day_onsets,
    persistence_peak,
    ramp_hold,
)

DAY = 1440
T0 = 1704067200.0  # a Monday 00:00 UTC
CFG = FeatureConfig(horizon=5, window=5)


def _office(ramps: dict[int, int | None], days: int, night=100.0, plateau=300.0, seed=0) -> np.ndarray:
    """``ramps[d]``: minute of day d's ramp (a 2-minute climb to ``plateau`` lasting 8 hours), None: flat."""
    rng = np.random.default_rng(seed)
    y = np.full(days * DAY, night)
    for d in range(days):
        at = ramps.get(d)
        if at is not None:
            s = d * DAY + at
            y[s : s + 480] = plateau
            y[s] = y[s + 1] = (night + plateau) / 2
    return y * np.exp(rng.normal(0, 0.02, len(y)))


def _weekdays(days: int, times: list[int]) -> dict[int, int | None]:
    out, k = {}, 0
    for d in range(days):
        if d % 7 < 5:
            out[d] = times[k % len(times)]
            k += 1
    return out


def test_day_onsets_finds_a_lasting_ramp_and_ignores_a_burst():
    y = _office({0: 500}, 2)
    onset, ratio = day_onsets(y, 0, RampHoldConfig(), len(y))
    assert abs(onset - 500) <= 2 and 2.6 < ratio < 3.4
    burst = np.full(2 * DAY, 100.0)
    burst[500:530] = 300.0  # back down within the two hours a ramp must last
    assert day_onsets(burst, 0, RampHoldConfig(), len(burst)) is None
    # a ramp whose plateau is not over yet in the data is not judged
    assert day_onsets(y, 0, RampHoldConfig(), 520) is None


def _held(y, positions):
    med, up = np.asarray(y[positions], dtype=float), np.asarray(y[positions], dtype=float)
    pers = persistence_peak(y, positions, CFG)
    return ramp_hold(y, T0, positions, CFG, med, up, 0.1, persistence=pers)


def test_holds_from_the_earliest_ramp_seen_until_today_s_ramp_comes():
    days = 16
    ramps = _weekdays(days, [480, 500, 520, 490, 510])
    ramps[14] = 515  # Monday of week 3: the ramp comes late in the spread
    y = _office(ramps, days)
    day = 14 * DAY
    pos = np.arange(day + 400, day + 600)
    med, up, held = _held(y, pos)
    tgt_min = pos + CFG.horizon - day
    # nothing before the earliest start seen (480) minus the lead
    assert not held[tgt_min + CFG.window <= 480 - 3].any()
    # held from there until the ramp at 515 is in the data
    hold_pos = pos[held]
    assert hold_pos.min() - day + CFG.horizon + CFG.window >= 478 - 1
    assert hold_pos.max() - day < 515 + 3
    assert held[(tgt_min >= 480) & (pos - day < 512)].all()
    # the median is past the rise threshold (persistence + 10%), the upper at the plateau
    pers = persistence_peak(y, pos, CFG)
    assert np.all(med[held] > 1.1 * pers[held])
    assert np.all(up[held] > 250.0)
    # never lowered, untouched where not held
    assert np.all(med >= y[pos]) and np.all(up >= y[pos])
    assert np.array_equal(med[~held], y[pos][~held])


def test_no_hold_on_a_day_type_that_did_not_ramp_and_the_hold_ends_without_a_ramp():
    days = 21
    ramps = _weekdays(days, [480, 500, 520, 490, 510])
    ramps[15] = None  # Tuesday of week 3 skips: the hold ends after the latest start seen
    y = _office(ramps, days)
    sat = 19 * DAY  # Saturday: no ramp one and two weeks ago
    _, _, held = _held(y, np.arange(sat + 300, sat + 700))
    assert not held.any()
    tue = 15 * DAY
    pos = np.arange(tue + 400, tue + 700)
    _, _, held = _held(y, pos)
    assert held.any()
    assert (pos[held] + CFG.horizon - tue).max() <= 520 + RampHoldConfig().late


def test_bursts_never_hold():
    rng = np.random.default_rng(3)
    y = np.full(16 * DAY, 200.0) * np.exp(rng.normal(0, 0.03, 16 * DAY))
    for s in rng.integers(0, len(y) - 50, 100):
        y[s : s + int(rng.integers(5, 40))] *= 2.5
    pos = np.arange(14 * DAY, 16 * DAY - 20)
    _, _, held = _held(y, pos)
    assert not held.any()


def test_causal_future_data_does_not_change_the_hold():
    days = 16
    y = _office(_weekdays(days, [480, 500, 520, 490, 510]), days)
    pos = np.arange(14 * DAY + 400, 14 * DAY + 600)
    full = _held(y, pos)
    for k in (0, 57, 150, 199):
        cut = y[: pos[k] + 1]
        part = ramp_hold(cut, T0, pos[k : k + 1], CFG, y[pos[k : k + 1]], y[pos[k : k + 1]], 0.1,
                         persistence=persistence_peak(y, pos[k : k + 1], CFG))
        assert part[2][0] == full[2][k]
        assert part[0][0] == full[0][k] and part[1][0] == full[1][k]


class _Flat:
    """A model that forecasts the current sample (never a rise), with the rule's feature config."""

    cfg = CFG

    def predict_batch(self, y, t0_s, idx):
        v = np.asarray(y, dtype=float)[idx]
        return v, v


def test_the_served_blend_carries_the_hold_only_when_asked():
    from tenancy_operator.forecasting import Blend, BlendedModel

    days = 16
    y = _office(_weekdays(days, [480, 500, 520, 490, 510]), days)
    pos = np.arange(14 * DAY + 470, 14 * DAY + 480)  # target windows around the earliest start seen
    plain = BlendedModel(Blend(("a", "b"), 0.5, 0.5), (_Flat(), _Flat()))
    held = BlendedModel(Blend(("a", "b"), 0.5, 0.5), (_Flat(), _Flat()), hold_tolerance=0.1)
    m0, u0 = plain.predict_batch(y, T0, pos)
    m1, u1 = held.predict_batch(y, T0, pos)
    assert np.array_equal(m0, y[pos]) and np.array_equal(u0, y[pos])
    assert np.all(m1 > 1.1 * m0) and np.all(u1 > 250.0)


def test_the_day_cache_gives_the_same_hold_on_a_sliding_window():
    days = 17
    y = _office(_weekdays(days, [480, 500, 520, 490, 510]), days)
    cache: dict = {}
    for k in range(0, 2 * DAY, 97):  # a 15-day window sliding over two days, as the operator reads it
        win = y[k : 15 * DAY + k]
        t0 = T0 + 60.0 * k
        idx = np.array([len(win) - 10, len(win) - 1])
        z = win[idx]
        plain = ramp_hold(win, t0, idx, CFG, z, z, 0.1)
        cached = ramp_hold(win, t0, idx, CFG, z, z, 0.1, cache=cache)
        # the same days and holds; levels equal up to the cumulative sums' rounding on another window
        assert np.array_equal(plain[2], cached[2])
        assert np.allclose(plain[0], cached[0], rtol=1e-9) and np.allclose(plain[1], cached[1], rtol=1e-9)
    assert 0 < len(cache) <= 2 * RampHoldConfig().lookback_days
