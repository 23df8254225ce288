"""The bench's "ours" is the operator's refit: models fit once a day, the rule re-scored between."""

from __future__ import annotations

import numpy as np
from tenancy_operator.forecasting import FeatureConfig
from tenancy_operator.reconcile import rule_forecast as rf

from bench.autoscaling import policies

DAY = 1440


class _Counting:
    """A stand-in model (real fits cost seconds): records each fit's history length; forecasts the
    newest sample."""

    fits: list[int] = []

    def __init__(self, name, cfg, q):
        self.cfg = cfg

    def fit(self, y, t0):
        self.fits.append(len(y))
        return self

    def predict_batch(self, y, t0, idx):
        return y[idx] * 1.0, y[idx] * 1.2


def test_ours_fits_the_models_once_a_day_and_rescores_every_three_hours(monkeypatch):
    monkeypatch.setattr(rf, "_make", _Counting)
    _Counting.fits = []
    n = 21 * DAY
    y = 100.0 + 50.0 * (np.arange(n) % DAY > 600)
    positions = np.arange(14 * DAY - policies.DATA_AGE_MIN, n - policies.DATA_AGE_MIN, dtype=np.int64)
    med, _, _, reasons, fits = policies._walk_forward_rule(y, 0.0, positions, FeatureConfig(horizon=4, window=5),
                                                                 rf.Settings(), 3)
    assert [minute for minute, _, _ in fits] == [d * DAY for d in range(14, 21)]
    assert len(reasons) == 7
    assert len(_Counting.fits) == 7 * 2 * 4  # a model refit: both models, 3 origins and the final fit
    assert all(start == max(0, minute - policies.DATA_AGE_MIN + 1 - 14 * DAY) for minute, start, _ in fits)
    # every test minute is served, by the series the operator would hold then (the last fortnight)
    assert np.isfinite(med).all()
