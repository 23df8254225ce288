"""Backtest scores and the predictability gate: verdicts and their reasons."""

import numpy as np
import pytest
from tenancy_operator.forecasting import (
    BacktestScores,
    GateConfig,
    evaluate_gate,
    mase,
    pinball_loss,
    rolling_origins,
    score_backtest,
)


def _scores(**kw):
    base = dict(n=1000, pinball=1.0, pinball_persistence=2.0, mae=1.0, mae_persistence=2.0,
                predicted_rises=20, actual_rises=25, true_rises=18)
    base.update(kw)
    return BacktestScores(**base)


def test_pinball_loss_asymmetry():
    assert pinball_loss(np.array([10.0]), np.array([0.0]), 0.9) == pytest.approx(9.0)
    assert pinball_loss(np.array([0.0]), np.array([10.0]), 0.9) == pytest.approx(1.0)
    assert np.isnan(pinball_loss(np.array([np.nan]), np.array([1.0]), 0.9))


def test_mase():
    assert mase(np.array([1.0, 3.0]), np.array([2.0, 2.0]), 2.0) == pytest.approx(0.5)


def test_score_backtest_counts_rises():
    actual = np.array([100.0, 150.0, 100.0, 150.0])
    pers = np.full(4, 100.0)
    med = np.array([100.0, 150.0, 150.0, 100.0])
    s = score_backtest(actual, med, med, pers, 0.9, 0.1)
    assert (s.predicted_rises, s.actual_rises, s.true_rises) == (2, 2, 1)
    assert s.rise_precision == pytest.approx(0.5)
    assert s.skill > 0


@pytest.mark.parametrize(
    ("kw", "active", "fragment"),
    [
        ({}, True, "Predictive"),
        ({"n": 10}, False, "only 10 backtested"),
        ({"pinball": 2.5}, False, "does not beat persistence"),
        ({"predicted_rises": 1, "true_rises": 1}, False, "too few"),
        ({"true_rises": 5}, False, "rise precision 0.25"),
        ({"true_rises": 9}, True, "rise precision 0.45"),
    ],
)
def test_gate_verdicts(kw, active, fragment):
    v = evaluate_gate(_scores(**kw), GateConfig(min_samples=100), "qgbm")
    assert v.active is active
    assert fragment in v.reason
    assert ("Reactive" in v.reason) is (not active)


def test_rolling_origins_walk_forward():
    splits = list(rolling_origins(100, 50, 20, 5))
    assert splits == [(50, 70), (70, 90), (90, 95)]


def test_rise_events_group_consecutive_forecasts():
    # one wrong call stretched over 6 minutes, two right ones of 2 minutes each
    pers = np.full(20, 100.0)
    med = np.full(20, 100.0)
    actual = np.full(20, 100.0)
    med[0:6] = 150.0  # predicted, never came
    med[10:12] = 150.0
    actual[10:12] = 150.0
    med[16:18] = 150.0
    actual[17] = 150.0
    s = score_backtest(actual, med, med, pers, 0.9, 0.1, merge_gap=2)
    assert (s.predicted_rise_events, s.true_rise_events) == (3, 2)
    assert s.event_precision == pytest.approx(2 / 3)
    assert s.rise_precision == pytest.approx(3 / 10)
    v = evaluate_gate(_scores(predicted_rises=10, true_rises=3, predicted_rise_events=3, true_rise_events=2),
                      GateConfig(min_samples=100))
    assert v.active and "2 of 3 rise events" in v.reason
    v = evaluate_gate(_scores(predicted_rises=10, true_rises=3, predicted_rise_events=3, true_rise_events=2),
                      GateConfig(min_samples=100, precision_basis="minute"))
    assert not v.active and "rise precision 0.30" in v.reason


def test_gate_requires_the_median_to_keep_up_with_persistence():
    # a good upper quantile (pinball skill) with a median much worse than the recent maximum
    v = evaluate_gate(_scores(mae=2.5, mae_persistence=2.0), GateConfig(min_samples=100))
    assert not v.active and "median does not beat persistence" in v.reason
    assert evaluate_gate(_scores(mae=2.1, mae_persistence=2.0), GateConfig(min_samples=100)).active
