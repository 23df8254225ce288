"""The autoscaling bench's trace families: seeded, deterministic, parameters inside their ranges."""

import numpy as np
import pytest

from bench.autoscaling.families import DEV_SEEDS, FAMILIES, REPORT_SEEDS, make_trace
from bench.autoscaling.judge import summarise
from bench.autoscaling.traces import MINUTES_PER_DAY

SYNTHETIC = [f for f in FAMILIES if f != "taylor_real"]  # the real series needs the bench extra


def test_an_unknown_family_stops_the_bench_before_any_run(capsys):
    from bench.autoscaling import run

    with pytest.raises(SystemExit, match="unknown trace family 'nope'"):
        run.main(["--families", "ramps,nope", "--seeds", "1", "--no-side"])
    assert "done in" not in capsys.readouterr().err  # no run started


def test_dev_and_report_seeds_are_disjoint():
    assert len(REPORT_SEEDS) >= 5 and not set(DEV_SEEDS) & set(REPORT_SEEDS)


@pytest.mark.parametrize("family", SYNTHETIC)
def test_same_seed_same_trace_other_seed_other_trace(family):
    a, b, c = make_trace(family, 3), make_trace(family, 3), make_trace(family, 4)
    assert np.array_equal(a.y, b.y) and a.note == b.note
    assert not np.array_equal(a.y, c.y)
    assert len(a.y) == 21 * MINUTES_PER_DAY and np.isfinite(a.y).all() and (a.y > 0).all()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_drawn_parameters_stay_in_their_ranges_and_vary(family):
    fam = FAMILIES[family]
    draws = [fam.draw(s) for s in range(40)]
    for k, (lo, hi) in fam.ranges.items():
        vals = [d[k] for d in draws]
        assert all(lo <= v <= hi for v in vals), (k, lo, hi, vals)
        assert len(set(vals)) > 1, f"{family}.{k} never varies"
        assert all(isinstance(v, int) for v in vals) == isinstance(lo, int)


def test_holidays_fall_on_weekdays_and_flatten_them():
    tr = make_trace("holidays", 2)
    days = tr.y.reshape(21, MINUTES_PER_DAY).max(axis=1)
    weekday_peaks = [days[d] for d in range(21) if d % 7 < 5]
    flat = [d for d in range(21) if d % 7 < 5 and days[d] < 0.6 * np.median(weekday_peaks)]
    p = FAMILIES["holidays"].draw(2)
    assert len(flat) == p["train_holidays"] + p["test_holidays"]
    assert sum(d >= 14 for d in flat) == p["test_holidays"]


def test_level_shift_lifts_the_rest_of_the_trace():
    p = FAMILIES["level_shift"].draw(5)
    y = make_trace("level_shift", 5).y
    at = int((p["shift_day"] + p["shift_hour"] / 24) * MINUTES_PER_DAY)
    before = np.median(y[at - 7 * MINUTES_PER_DAY : at])
    after = np.median(y[at : at + 7 * MINUTES_PER_DAY]) if at + 7 * MINUTES_PER_DAY <= len(y) else None
    if after is None:  # compare the same weekday-hours a week apart
        after = np.median(y[at:])
        before = np.median(y[at - 7 * MINUTES_PER_DAY : len(y) - 7 * MINUTES_PER_DAY])
    assert after / before == pytest.approx(p["shift_size"], rel=0.15)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown trace family"):
        make_trace("nope", 1)


def test_summarise_takes_median_and_worst_and_drops_not_applicable():
    assert summarise([0.9, 0.5, float("nan"), 1.0], True) == (0.9, 0.5, 3)
    assert summarise([1.01, 1.04, 1.02], False) == (1.02, 1.04, 3)
    med, worst, n = summarise([float("nan")], True)
    assert n == 0 and np.isnan(med) and np.isnan(worst)


def _row(policy: str, upm: float, rh: float, periodic: bool = False):
    from bench.autoscaling.evaluate import Row
    return Row("bursts#1", periodic, 30, policy, upm, 0.0, rh, 10, 1.0, 1.0, 0.5)


def test_comparator_is_the_better_baseline_within_the_familys_replica_hour_limit():
    from bench.autoscaling.judge import comparator
    reactive = _row("reactive", 82.75, 100.0)
    hw, qg = _row("holt_winters", 75.25, 109.5), _row("qgbm", 82.75, 100.0)
    assert comparator(reactive, (hw, qg), periodic=False) is qg  # HW's minutes cost 9.5 %: over the 5 % cap
    assert comparator(reactive, (_row("holt_winters", 75.25, 104.0), qg), periodic=False).policy == "holt_winters"
    assert comparator(reactive, (_row("holt_winters", 75.25, 104.0), qg), periodic=True) is qg  # periodic: 3 %
    both_over = (_row("holt_winters", 75.25, 120.0), _row("qgbm", 70.0, 130.0))
    assert comparator(reactive, both_over, periodic=False).policy == "qgbm"  # none keeps it: the better of both


def test_median_diagnostic_is_the_mae_ratio_to_persistence_on_the_same_week():
    """Persistence itself may score a MASE over 1 (its scale is the training fortnight's naive MAE, and
    a random walk wanders off it): the judged diagnostic divides by persistence's MAE on the test week."""
    from dataclasses import replace

    from bench.autoscaling.judge import run_ratios
    rows = [replace(_row(p, 1.0, 100.0), mase=m) for p, m in
            (("reactive", 1.8), ("holt_winters", 2.2), ("qgbm", 1.7), ("ours", 1.62), ("oracle", 0.0))]
    (r,) = run_ratios(rows)
    assert r.mase == 1.62
    assert r.mae_vs_naive == np.float64(1.62 / 1.8)  # 0.9: better than the naive forecast
    assert np.isnan(run_ratios([replace(x, mase=0.0) if x.policy == "reactive" else x for x in rows])[0].mae_vs_naive)
