"""Robust anomaly scores: in [0, 1], high on outliers, low on noise, immune to past outliers."""

import numpy as np
import pytest
from tenancy_operator.forecasting import (
    AnomalyConfig,
    anomaly_score,
    anomaly_scores,
    relative_residuals,
    robust_z,
    scaled_residuals,
    score_from_z,
)


def test_score_is_bounded_and_monotone():
    z = np.array([0.0, 3.0, 6.0, 9.0, 50.0])
    s = score_from_z(z)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) > 0)
    assert score_from_z(AnomalyConfig().z_center) == pytest.approx(0.5)


def test_spike_scores_high_noise_scores_low():
    rng = np.random.default_rng(1)
    hist = rng.normal(0, 0.05, 1000)
    assert anomaly_score(hist, 0.05) < 0.1
    assert anomaly_score(hist, 1.0) > 0.9
    assert anomaly_score(hist[:10], 1.0) == 0.0  # not enough history yet


def test_median_mad_is_robust_to_outliers_in_history():
    rng = np.random.default_rng(2)
    hist = rng.normal(0, 0.05, 1000)
    hist[::50] = 5.0  # 2% outliers in the window
    assert robust_z(hist, 1.0) > 10


def test_series_scores_flag_injected_spike():
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.05, 3000)
    r[2500:2505] += 1.0
    s = anomaly_scores(r, AnomalyConfig())
    assert s[2500:2505].min() > 0.9
    assert (s[:2500] > 0.9).mean() < 0.01


def test_residual_helpers():
    np.testing.assert_allclose(relative_residuals(np.array([110.0]), np.array([100.0])), [0.1])
    np.testing.assert_allclose(scaled_residuals(np.array([120.0]), np.array([100.0]), np.array([110.0])), [2.0])


def test_consensus_ignores_what_only_one_reference_misses():
    from tenancy_operator.forecasting import consensus_scores

    rng = np.random.default_rng(4)
    n = 3000
    model = rng.normal(0, 0.05, n)
    naive = rng.normal(0, 0.05, n)
    naive[1000:1003] += 3.0  # an expected daily ramp: only persistence is surprised
    model[2000:2010] -= 3.0  # the day after a spike: only the forecaster (echoing it) is surprised
    model[2500:2510] += 3.0  # a real spike surprises both
    naive[2500:2510] += 3.0
    s = consensus_scores(model, naive, AnomalyConfig())
    assert s[990:1020].max() < 0.5
    assert s[1990:2020].max() < 0.5
    assert s[2504:2510].min() > 0.9
    assert (s[:2500] > 0.9).sum() == 0
