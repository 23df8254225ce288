"""Features: shapes, causality (no peeking past position i), and the seasonal references."""

import dataclasses

import numpy as np
import pytest
from tenancy_operator.forecasting import FeatureConfig, build_features, feature_names, target_peaks
from tenancy_operator.forecasting.features import rolling_max

CFG = FeatureConfig(step_s=60, horizon=3, window=4, lags=(0, 1, 5), rolling=(5, 15), local_peak_halfwidth=10)
T0 = 1704067200.0  # Monday 00:00 UTC


def _series(days: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 1440)
    return 100 + 50 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 2, len(t))


def test_shape_matches_names():
    y = _series()
    idx = np.array([8000, 9000, 10000])
    X = build_features(y, T0, idx, CFG, scale=100.0)
    assert X.shape == (3, len(feature_names(CFG)))


def test_features_are_causal():
    y = _series()
    i = 9000
    X1 = build_features(y, T0, np.array([i]), CFG, 100.0)
    y2 = y.copy()
    y2[i + 1 :] = 1e6  # the future changes wildly
    X2 = build_features(y2, T0, np.array([i]), CFG, 100.0)
    np.testing.assert_array_equal(X1, X2)


def test_batch_and_single_paths_agree():
    y = _series()
    idx = np.arange(9000, 9100)
    Xb = build_features(y, T0, idx, CFG, 100.0)
    for j in (0, 50, 99):
        Xs = build_features(y[: idx[j] + 1], T0, idx[j : j + 1], CFG, 100.0)
        np.testing.assert_allclose(Xb[j], Xs[0], rtol=1e-9, atol=1e-9)


def test_day_ago_peak_feature_sees_yesterdays_spike():
    y = np.full(3 * 1440, 100.0)
    i = 2 * 1440 + 600
    y[i - 1440 + CFG.horizon + 1] = 300.0  # yesterday, inside the target window
    X = build_features(y, T0, np.array([i]), CFG, 100.0)
    names = feature_names(CFG)
    assert X[0, names.index("day_rise")] == pytest.approx(2.0)
    assert X[0, names.index("lag_0")] == pytest.approx(0.0)


def test_missing_week_history_is_nan():
    y = _series(days=3)
    X = build_features(y, T0, np.array([3000]), CFG, 100.0)
    names = feature_names(CFG)
    assert np.isnan(X[0, names.index("week_rise")])
    assert np.isfinite(X[0, names.index("day_rise")])


def test_time_terms_follow_the_clock():
    y = _series()
    names = feature_names(CFG)
    i = 7 * 1440 + 360 - CFG.horizon - 2  # target window centred on 06:00 Monday
    X = build_features(y, T0, np.array([i]), CFG, 100.0)
    assert X[0, names.index("tod_sin")] == pytest.approx(1.0, abs=1e-3)
    assert "dow_sin" not in names  # off by default: two weeks hold only two examples of each weekday
    cfg = dataclasses.replace(CFG, day_of_week=True)
    X = build_features(y, T0, np.array([i]), cfg, 100.0)
    assert X[0, feature_names(cfg).index("dow_sin")] == pytest.approx(0.0, abs=1e-9)


def test_target_peaks_and_rolling_max():
    y = np.arange(100, dtype=float)
    assert target_peaks(y, np.array([10]), CFG)[0] == 10 + CFG.horizon + CFG.window - 1
    assert np.isnan(target_peaks(y, np.array([98]), CFG)[0])
    assert rolling_max(y, np.array([4, 2]), 3)[0] == 4
    assert np.isnan(rolling_max(y, np.array([1]), 3)[0])


def test_config_rejects_window_longer_than_a_day():
    with pytest.raises(ValueError):
        FeatureConfig(horizon=1000, window=500)
