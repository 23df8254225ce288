"""Fallback to the better-calibrated single model when the blend fails the gate."""

import numpy as np
from tenancy_operator.forecasting import (
    GateConfig,
    calibration_error,
    choose_blend,
    evaluate_gate,
    fallback_model,
    fit_blend,
    fit_gated_blend,
    score_backtest,
)

GATE = GateConfig(min_samples=100)


def _steps(n=3000, lag=5):
    """Peaks at 100 with a +100 step for 20 positions every 100; persistence sees them ``lag`` late."""
    actual = np.full(n, 100.0)
    for s in range(50, n, 100):
        actual[s : s + 20] = 200.0
    persist = np.concatenate([np.full(lag, 100.0), actual[:-lag]])
    return actual, persist


def test_calibration_error_is_distance_of_coverage_from_the_quantile():
    a = np.arange(10.0)
    assert abs(calibration_error(a, a + 1, 0.9) - 0.1) < 1e-12
    assert calibration_error(a, np.where(a < 9, a, 0.0), 0.9) < 1e-12
    assert calibration_error(a, np.full(10, np.nan), 0.9) == float("inf")


def test_the_model_that_passes_alone_is_chosen_and_none_when_nobody_passes():
    actual, persist = _steps()
    right = (actual.copy(), actual * 1.02)
    lagging = (persist.copy(), persist.copy())
    name, verdict = fallback_model(actual, persist, {"lagging": lagging, "right": right}, 0.9, 0.1, GATE)
    assert name == "right" and verdict.active
    assert fallback_model(actual, persist, {"lagging": lagging}, 0.9, 0.1, GATE) is None


def test_of_two_passing_models_the_better_calibrated_wins_not_the_one_listed_first():
    actual, persist = _steps()
    wide = (actual.copy(), actual * 1.5)  # covers every peak: calibration error 0.1
    tight_up = actual + 5.0
    tight_up[::10] = actual[::10] - 1.0  # misses one peak in ten: coverage 0.9
    name, _ = fallback_model(actual, persist, {"wide": wide, "tight": (actual.copy(), tight_up)}, 0.9, 0.1, GATE)
    assert name == "tight"


def test_choose_blend_keeps_a_blend_that_passes():
    actual, persist = _steps()
    blend, verdict, _ = choose_blend(actual, persist, {"a": (actual.copy(), actual * 1.02), "b": (persist, persist)},
                                     0.9, 0.1, GATE)
    assert verdict.active and "fallback" not in verdict.reason and blend.names == ("a",)


def test_choose_blend_falls_back_to_the_model_that_passes_when_the_blend_has_no_record():
    actual, persist = _steps()
    gappy = np.full(len(actual), np.nan)
    gappy[:50] = 100.0  # forecast only 50 positions: too few to weigh a blend, too few for the gate
    cands = {"gappy": (gappy, gappy.copy()), "right": (actual.copy(), actual * 1.02)}
    blend, verdict, (med, _) = choose_blend(actual, persist, cands, 0.9, 0.1, GATE)
    assert blend.names == ("right",) and verdict.active and "fallback" in verdict.reason
    assert np.array_equal(med, actual)
    alone, off, _ = choose_blend(actual, persist, {"gappy": cands["gappy"]}, 0.9, 0.1, GATE)
    assert alone.names == ("gappy",) and not off.active and "only" in off.reason


def _calm_and_early(offset=25.0):
    """"calm" never calls a rise but has the lower MAE; "early" calls every rise 3 positions ahead,
    ``offset`` too high (25: MAE 3x persistence's): neither passes the gate alone, a blend of them does."""
    actual, persist = _steps()
    calm = np.minimum(actual, persist * 1.1)
    early = np.concatenate([actual[3:], np.full(3, 100.0)]) + offset
    up = actual * 1.02
    return actual, persist, {"calm": (calm, up), "early": (early, up)}


def test_the_median_weight_moves_to_one_that_calls_rises_when_the_mae_best_one_cannot_act():
    actual, persist, cands = _calm_and_early()
    assert fit_blend(actual, cands, 0.9).median_weight == 1.0  # MAE alone picks "calm": no rise calls
    assert fallback_model(actual, persist, cands, 0.9, 0.1, GATE) is None
    blend = fit_gated_blend(actual, persist, cands, 0.9, 0.1, GATE)
    assert 0.0 < blend.median_weight < 1.0 and blend.upper_weight == 1.0
    chosen, verdict, _ = choose_blend(actual, persist, cands, 0.9, 0.1, GATE)
    assert verdict.active and chosen == blend and verdict.scores.true_rise_events == 30


def test_a_passing_mae_best_blend_is_left_alone_and_nothing_passing_changes_nothing():
    actual, persist = _steps()
    good = {"a": (actual.copy(), actual * 1.02), "b": (persist, persist)}
    assert fit_gated_blend(actual, persist, good, 0.9, 0.1, GATE) == fit_blend(actual, good, 0.9)
    lagging = {"a": (persist.copy(), persist.copy()), "b": (persist * 0.9, persist)}
    assert fit_gated_blend(actual, persist, lagging, 0.9, 0.1, GATE) == fit_blend(actual, lagging, 0.9)


def test_a_moved_median_weight_must_beat_persistence_by_the_skill_margin_not_only_the_gates_slack():
    actual, persist, cands = _calm_and_early(offset=60.0)
    m = 0.9 * cands["calm"][0] + 0.1 * cands["early"][0]
    s = score_backtest(actual, m, np.maximum(cands["calm"][1], m), persist, 0.9, 0.1)
    assert evaluate_gate(s, GATE).active and s.median_skill < GATE.min_skill  # passes on the slack alone
    assert fit_gated_blend(actual, persist, cands, 0.9, 0.1, GATE).median_weight == 1.0
