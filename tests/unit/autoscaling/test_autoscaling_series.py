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
    for name in rf.MODELS:  # the final fit on everything, then each origin, for every candidate
        assert [m for k, m in _Recording.fits if k == name] == [n, *cuts], _Recording.fits


def test_an_origin_too_early_for_a_model_leaves_it_a_candidate_scored_on_the_later_origins():
    cfg = rf.feature_config("1m", "2m")
    n = 3 * cfg.day  # held out: half; the first of 3 origins leaves Holt-Winters 1.5 days (it needs 2)
    tod = np.arange(n) % cfg.day
    y = 100.0 + np.where((tod >= 600) & (tod < 700), 80.0, 0.0) + np.random.default_rng(1).normal(0, 2, n)
    fitted = rf.fit_rule(y, 0.0, cfg, rf.Settings(backtest_origins=3), now_s=60.0 * n)
    assert set(fitted.models) == set(rf.MODELS)
    hw = fitted.backtest.raw["holt-winters"][0]
    split = n - n // 2
    _, second, third = rf.rolling_cuts(split, n, 3)[:3]
    assert np.isnan(hw[: second - split]).all() and np.isfinite(hw[third - split :]).all()
    assert 0 < fitted.scores["holt-winters"].n < len(hw)


class _Stamped(_Recording):
    """Forecasts the newest sample plus the length of the history it was fit on: which fit made a
    forecast can be read off it."""

    def predict_batch(self, y, t0, idx):
        last = np.asarray(idx)
        return y[last] + self.n, y[last] + self.n + 1.0


def _three_days(n_extra=0):
    cfg = rf.feature_config("1m", "2m")
    n = 3 * cfg.day + n_extra
    return cfg, n, 100.0 + np.arange(n) % 7


def test_a_refit_within_the_model_refit_interval_rescores_without_fitting(monkeypatch):
    cfg, n, y = _three_days()
    settings = rf.Settings(history_s=60 * n, backtest_s=86400, backtest_origins=2, model_refit_s=86400.0)
    monkeypatch.setattr(rf, "_make", _Stamped)
    _Stamped.fits = []
    first = rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n)
    assert len(_Stamped.fits) == 6 and first.models_fitted_at == 60.0 * n and set(first.models) == set(rf.MODELS)
    _Stamped.fits = []
    hour_later = rf.fit_rule(np.concatenate([y, y[:60]]), 0.0, cfg, settings, now_s=60.0 * (n + 60), previous=first)
    assert _Stamped.fits == [] and hour_later.models_fitted_at == first.models_fitted_at
    assert hour_later.models is first.models and hour_later.fitted_at == 60.0 * (n + 60)
    # a day after the models were fit, a refit fits them again; so does a rule whose shape changed
    rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n + 86400.0, previous=first)
    assert len(_Stamped.fits) == 6
    _Stamped.fits = []
    rf.fit_rule(y, 0.0, rf.feature_config("2m", "2m"), settings, now_s=60.0 * (n + 60), previous=first)
    assert len(_Stamped.fits) == 6
    # a rule whose history is still growing refits its models every time, and so does one whose
    # model failed to fit (it may fit now)
    _Stamped.fits = []
    young = rf.Settings(history_s=60 * 2 * n, backtest_s=86400, backtest_origins=2)
    rf.fit_rule(y, 0.0, cfg, young, now_s=60.0 * (n + 60), previous=first)
    assert len(_Stamped.fits) == 6
    _Stamped.fits = []
    first.models.pop("holt-winters")
    rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * (n + 60), previous=first)
    assert len(_Stamped.fits) == 6


def test_a_rescore_keeps_the_origins_forecasts_and_takes_the_final_models_only_out_of_sample(monkeypatch):
    cfg, n, y = _three_days()
    settings = rf.Settings(backtest_s=86400, backtest_origins=2)
    monkeypatch.setattr(rf, "_make", _Stamped)
    first = rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n)
    extra = 180
    _, _, longer = _three_days(extra)
    shift = 120  # the in-memory series also drops its oldest samples as it grows
    pos = rf._backtest_positions(len(longer) - shift, cfg, settings)
    raw = rf._rescored(first, longer[shift:], 60.0 * shift, pos)
    offset = raw["holt-winters"][0] - longer[shift:][pos]
    cuts = rf.rolling_cuts(n - cfg.day, n, 2)
    absolute = pos + shift
    origin = np.where(absolute < cuts[1], cuts[0], cuts[1])
    kept = absolute <= n - cfg.horizon - cfg.window  # the last position whose target the origins saw
    fresh = absolute + cfg.horizon > n - 1  # target window wholly after the final models' last sample
    assert np.array_equal(offset[kept], origin[kept])  # the forecasts each origin's model made
    assert np.all(offset[fresh] == n)  # the final model, fit on all n samples, only after them
    assert np.isnan(offset[~kept & ~fresh]).all() and (~kept & ~fresh).sum() == cfg.window - 1
    assert fresh.sum() == extra - cfg.window + 1  # every position up to the newest observed target


def test_an_immediate_rescore_reaches_the_refit_s_verdict():
    cfg = rf.feature_config("1m", "2m")
    rng = np.random.default_rng(3)
    n = 4 * cfg.day
    tod = np.arange(n) % cfg.day
    y = 100.0 * (1 + 0.02 * rng.standard_normal(n)) + np.where((tod >= 700) & (tod < 760), 200.0, 0.0)
    settings = rf.Settings(history_s=60 * n, backtest_s=86400)
    first = rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n)
    again = rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n + 1.0, previous=first)
    assert again.models is first.models and again.model_name == first.model_name
    # the kept forecasts are float32 (half the memory): the same verdict, residuals within rounding
    assert again.reason == first.reason and np.allclose(again.residuals, first.residuals, atol=1e-4)


def test_a_refit_carries_the_ramp_days_the_previous_model_knew_in_a_copy(monkeypatch):
    """The hold asks whether the weekday ramped two weeks ago; 14 days of history no longer reach that
    morning, so each refit starts from the days its predecessor knew that the series no longer holds
    (a copy: it may still serve), and reads the days it holds again from the history."""
    cfg, n, y = _three_days()
    settings = rf.Settings(history_s=60 * n, backtest_s=86400, backtest_origins=2)
    monkeypatch.setattr(rf, "_make", _Stamped)
    first = rf.fit_rule(y, 0.0, cfg, settings, now_s=60.0 * n)
    day1, gone = 1440, -10 * 1440  # (the cache's keys: the minute since the epoch each day starts at)
    assert first.model.hold_cache.get(day1, "unread") is None  # the backtest's hold read day 1: no ramp
    first.model.hold_cache[gone] = (480, 3.0)  # a day this series does not reach
    first.model.hold_cache[day1] = (999, 9.0)  # day 1 as misread live (a scrape gap, say)
    for now in (60.0 * (n + 60), 60.0 * n + 86400.0):  # a re-score, then a model refit
        later = rf.fit_rule(y, 0.0, cfg, settings, now_s=now, previous=first)
        assert later.model.hold_cache[gone] == (480, 3.0) and later.model.hold_cache is not first.model.hold_cache
        assert later.model.hold_cache.get(day1, "unread") is None  # read again from the history
