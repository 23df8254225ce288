"""The two-model blend: weights fitted per quantile on realised backtests, gated like any model."""

import numpy as np
import pytest
from tenancy_operator.forecasting import (
    Blend,
    BlendedModel,
    GateConfig,
    fit_blend,
    gate_blend,
)


def _series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return 100.0 + 30.0 * np.sin(np.arange(n) / 20.0) + rng.normal(0, 1, n)


def test_weights_follow_the_better_model_per_quantile():
    actual = _series()
    exact, off = actual.copy(), actual + 25.0
    # the first model's median is exact, the second model's upper is: weights go opposite ways
    b = fit_blend(actual, {"a": (exact, off), "b": (off, exact)}, 0.9)
    assert (b.median_weight, b.upper_weight) == (1.0, 0.0)
    assert b.label == "a 1.0/0.0 + b"


def test_opposite_errors_blend_half_and_half():
    actual = _series()
    b = fit_blend(actual, {"a": (actual + 10, actual + 10), "b": (actual - 10, actual - 10)}, 0.5)
    assert b.median_weight == pytest.approx(0.5)
    med, up = b.combine((actual + 10, actual + 10), (actual - 10, actual - 10))
    assert np.allclose(med, actual) and np.all(up >= med)


def test_too_few_realised_forecasts_keep_the_first_model_alone():
    actual = np.full(600, np.nan)
    actual[:10] = 1.0
    b = fit_blend(actual, {"a": (np.zeros(600), np.zeros(600)), "b": (np.ones(600), np.ones(600))}, 0.9)
    assert b.trimmed() == Blend(("a",)) and b.label == "a"


def test_a_model_at_weight_zero_is_dropped():
    assert Blend(("a", "b"), 0.0, 0.0).trimmed() == Blend(("b",))
    assert Blend(("a", "b"), 0.3, 1.0).trimmed() == Blend(("a", "b"), 0.3, 1.0)


class _Const:
    def __init__(self, v):
        self.v = v

    def predict_batch(self, y, t0_s, idx):
        return np.full(len(idx), self.v), np.full(len(idx), self.v + 1.0)


def test_blended_model_predicts_like_one_model():
    m = BlendedModel(Blend(("a", "b"), 0.75, 0.5), (_Const(100.0), _Const(200.0)))
    med, up = m.predict_batch(np.zeros(5), 0.0, np.array([3, 4]))
    assert med.tolist() == [125.0, 125.0] and up.tolist() == [151.0, 151.0]
    # an upper quantile below the median is lifted to it
    m = BlendedModel(Blend(("a", "b"), 0.25, 0.5), (_Const(100.0), _Const(200.0)))
    assert m.predict_batch(np.zeros(5), 0.0, np.array([4]))[1].tolist() == [175.0]


def test_gate_refuses_a_blend_no_better_than_persistence():
    actual = _series()
    persistence = actual.copy()  # a perfect recent maximum: nothing beats it
    cands = {"a": (actual + 5, actual + 5), "b": (actual + 8, actual + 8)}
    blend = fit_blend(actual, cands, 0.9)
    verdict, (med, _) = gate_blend(blend, actual, persistence, cands, 0.9, 0.1, GateConfig(min_samples=100))
    assert not verdict.active and "does not beat persistence" in verdict.reason
    assert np.allclose(med, actual + 5)
