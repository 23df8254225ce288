"""History regularisation, peak timing from the seasonal reference, and fit/forecast on a small
series (the 14-day fit is measured by the bench and the e2e; here days are short so it stays fast)."""

from __future__ import annotations

import numpy as np
from tenancy_operator.forecasting import FeatureConfig
from tenancy_operator.reconcile import rule_forecast as rf


def test_regularize_fills_gaps_forward_and_uses_the_carry_at_the_start():
    y = rf.regularize([(120, 2.0), (240, 4.0)], 60, 60, 5)
    assert y.tolist() == [2.0, 2.0, 2.0, 4.0, 4.0]
    y = rf.regularize([(180, 5.0), (240, float("nan"))], 60, 60, 4, carry=1.0)
    assert y.tolist() == [1.0, 1.0, 5.0, 5.0]
    assert np.isnan(rf.regularize([], 0, 60, 3)).all()
    assert rf.regularize([], 0, 60, 2, carry=3.0).tolist() == [3.0, 3.0]


def test_peak_timing_follows_yesterdays_spike_and_ends_after_it():
    cfg = FeatureConfig(horizon=2, window=5)
    day = cfg.day
    y = np.full(2 * day, 100.0)
    last = 2 * day - 1
    # Yesterday, the samples at positions last+3 and last+4 (of today's window) spiked.
    y[last + 3 - day] = y[last + 4 - day] = 400.0
    when, until = rf.peak_timing(y, 0.0, cfg, last)
    assert when == 60.0 * (last + 3)
    assert until == 60.0 * (last + 5)
    flat_when, flat_until = rf.peak_timing(np.full(2 * day, 100.0), 0.0, cfg, last)
    assert flat_until == 60.0 * (last + cfg.horizon + cfg.window)


def test_fit_refuses_short_history_with_a_reason():
    cfg = rf.feature_config("1m", "2m")
    fitted = rf.fit_rule(np.full(600, 100.0), 0.0, cfg)
    assert fitted.model is None and not fitted.active
    assert fitted.reason.startswith("Reactive: not enough history")
    assert rf.forecast(fitted, np.full(600, 100.0), 0.0) is None


def test_fit_and_forecast_on_three_days_of_a_daily_spike():
    cfg = rf.feature_config("1m", "2m")
    day = cfg.day
    rng = np.random.default_rng(3)
    n = 3 * day + 600
    tod = np.arange(n) % day
    y = 100.0 * (1 + 0.02 * rng.standard_normal(n)) + np.where((tod >= 700) & (tod < 702), 300.0, 0.0)
    now = n - 1
    fitted = rf.fit_rule(y[: now + 1], 0.0, cfg, rf.Settings(backtest_s=86400), now_s=60.0 * now)
    assert any(m in fitted.model_name for m in rf.MODELS)
    assert set(fitted.scores) <= set(rf.MODELS) and fitted.scores
    # At minute 697 of the day the window (minutes 699-700) reaches the spike.
    at = 3 * day + 697
    fc = rf.forecast(fitted, y[: at + 1], 0.0)
    assert fc is not None and fc.upper >= fc.median
    assert 0.0 <= fc.anomaly <= 1.0


def test_rolling_cuts_split_the_held_out_span_evenly():
    assert rf.rolling_cuts(100, 200, 4) == [100, 125, 150, 175, 200]
    assert rf.rolling_cuts(100, 200, 1) == [100, 200]
    assert rf.rolling_cuts(100, 102, 5) == [100, 101, 102]


class _Recording:
    """A stand-in model that records the history length of every fit (real fits cost seconds)."""

    fits: list[tuple[str, int]] = []

    def __init__(self, name, cfg, q):
        self.name, self.cfg = name, cfg

    def fit(self, series, t0):
        self.fits.append((self.name, len(series)))
        self.n = len(series)
        return self

    def predict_batch(self, y, t0, idx):
        last = np.asarray(idx) - 1
        return y[last] * 1.0, y[last] * 1.2


def test_fit_backtests_from_each_rolling_origin_then_refits_on_everything(monkeypatch):
    cfg = rf.feature_config("1m", "2m")
    n = 3 * cfg.day
    y = 100.0 + np.arange(n) % 7
    _Recording.fits = []
    monkeypatch.setattr(rf, "_make", _Recording)
    rf.fit_rule(y, 0.0, cfg, rf.Settings(backtest_s=86400, backtest_origins=3), now_s=60.0 * n)
    cuts = rf.rolling_cuts(n - cfg.day, n, 3)[:-1]
    for name in rf.MODELS:
        assert [m for k, m in _Recording.fits if k == name][:3] == cuts, _Recording.fits
    assert all(m == n for _, m in _Recording.fits[6:]) and len(_Recording.fits) > 6
