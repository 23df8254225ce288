"""Fast paths must give the same numbers as the slow ones: incremental Holt-Winters, flat trees."""

import numpy as np
import pytest
from tenancy_operator.forecasting import FeatureConfig, HoltWinters, QuantileGBM

T0 = 1704067200.0


def _series(days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.arange(days * 1440) % 1440
    y = 100.0 + 300.0 * ((m >= 480) & (m < 1020)) + 50.0 * np.sin(2 * np.pi * m / 1440)
    return y * np.exp(rng.normal(0, 0.03, len(y)))


def _single_equals_batch(model, y, end, start=0, t0=T0):
    """One forecast from y[start:end] (the fast path) equals the batch forecast at end - 1 on y[:end]."""
    f = model.predict(y[start:end], t0 + 60.0 * start)
    med, up = model.predict_batch(y[:end], t0, np.array([end - 1]))
    assert f.median == pytest.approx(med[0], rel=1e-9)
    assert f.upper == pytest.approx(up[0], rel=1e-9)


def test_incremental_holt_winters_matches_full_filter_on_a_sliding_window():
    cfg = FeatureConfig(horizon=4, window=5)
    y = _series(4)
    hw = HoltWinters(cfg).fit(y[: 3 * 1440], T0)
    for k in (0, 1, 7, 60, 300):
        # the caller's window slides: it starts k minutes later, as a query over the last 3 days would
        _single_equals_batch(hw, y, 3 * 1440 + k, start=k)


def test_holt_winters_keeps_its_season_on_samples_half_a_minute_past_the_minute():
    # rounding half to even put every other window's first sample a minute off the one before
    cfg = FeatureConfig(horizon=4, window=5)
    y = _series(4, seed=4)
    hw = HoltWinters(cfg).fit(y[: 3 * 1440], T0 + 30.0)
    for k in (1, 2, 3, 61):
        _single_equals_batch(hw, y, 3 * 1440 + k, start=k, t0=T0 + 30.0)


def test_holt_winters_refilters_when_history_does_not_continue_its_state():
    cfg = FeatureConfig(horizon=4, window=5)
    y = _series(4, seed=2)
    hw = HoltWinters(cfg).fit(y[: 3 * 1440], T0)
    hw.predict(y[: 3 * 1440 + 100], T0)
    other = y[: 3 * 1440 + 50] * 1.5  # rewritten history: the stored state must not be reused
    f = hw.predict(other, T0)
    med, _ = hw.predict_batch(other, T0, np.array([len(other) - 1]))
    assert f.median == pytest.approx(med[0], rel=1e-9)


def test_single_forecast_through_flat_trees_equals_sklearn_predict():
    cfg = FeatureConfig(horizon=4, window=5, lags=(0, 1, 5, 15), rolling=(5, 30))
    y = _series(4, seed=1)
    model = QuantileGBM(cfg, max_iter=30, train_stride=2).fit(y[: 3 * 1440], T0)
    assert model._flat is not None
    for end in (3 * 1440 + 470, 3 * 1440 + 478, 3 * 1440 + 900):
        _single_equals_batch(model, y, end)


def test_holt_winters_without_times_still_notices_a_slid_window():
    # A caller that passes no t0_s and a fixed-length sliding window: positions alone look the same,
    # the samples do not, so the state must not be reused as if nothing had arrived.
    cfg = FeatureConfig(horizon=4, window=5)
    y = _series(4, seed=3)
    y[3 * 1440 - 1] = y[3 * 1440]  # even the newest sample repeats
    hw = HoltWinters(cfg).fit(y[: 3 * 1440])
    f = hw.predict(y[1 : 3 * 1440 + 1])
    med, _ = hw.predict_batch(y[1 : 3 * 1440 + 1], 0.0, np.array([3 * 1440 - 1]))
    assert f.median == pytest.approx(med[0], rel=1e-9)
