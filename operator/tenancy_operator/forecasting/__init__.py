"""Forecasting core for predictive autoscaling: features, models, backtests, gate, floor, anomalies.

Why this exists: the operator's autoscaling rules need a forecast of peak demand a lead time ahead,
a verdict on whether that forecast may act, the floor it implies for the HPA, and an anomaly score,
all as pure logic (numpy and scikit-learn only; no Kubernetes, no Prometheus I/O) so that the
handlers, the bench and the unit tests run exactly the same code.
"""

from .anomaly import (
    AnomalyConfig,
    anomaly_score,
    anomaly_scores,
    consensus_score,
    consensus_scores,
    relative_residuals,
    robust_z,
    robust_z_series,
    scaled_residuals,
    score_from_z,
)
from .backtest import (
    BacktestScores,
    GateConfig,
    GateVerdict,
    evaluate_gate,
    mase,
    pinball_loss,
    rolling_origins,
    score_backtest,
)
from .features import (
    FeatureConfig,
    build_features,
    feature_names,
    peak_from_relative,
    recent_level,
    relative_target,
    rolling_max,
    target_peaks,
)
from .floor import FloorDecision, FloorInput, decide_floor, replicas_for
from .holtwinters import HoltWinters, HWParams, HWState, holt_winters_filter, holt_winters_state
from .models import (
    PeakForecast,
    QuantileGBM,
    linear_trend_peak,
    persistence_peak,
    seasonal_naive_peak,
    single_threaded,
)
from .ramp import HoldSpread, RampHoldConfig, carried_days, day_onsets, hold_spread, ramp_hold
from .seen import SEEN_MARGIN, cap_at_seen, seen_max
from .selection import (
    Blend,
    BlendedModel,
    calibration_error,
    choose_blend,
    fallback_model,
    fit_blend,
    fit_gated_blend,
    gate_blend,
)

__all__ = [
    "AnomalyConfig", "anomaly_score", "anomaly_scores", "consensus_score", "consensus_scores", "robust_z_series", "relative_residuals", "robust_z", "scaled_residuals", "score_from_z",
    "BacktestScores", "GateConfig", "GateVerdict", "evaluate_gate", "mase", "pinball_loss",
    "rolling_origins", "score_backtest",
    "FeatureConfig", "build_features", "feature_names", "peak_from_relative", "recent_level",
    "relative_target", "rolling_max", "target_peaks",
    "FloorDecision", "FloorInput", "decide_floor", "replicas_for",
    "HoltWinters", "HWParams", "HWState", "holt_winters_filter", "holt_winters_state",
    "PeakForecast", "QuantileGBM", "linear_trend_peak", "persistence_peak", "seasonal_naive_peak",
    "single_threaded",
    "HoldSpread", "RampHoldConfig", "carried_days", "day_onsets", "hold_spread", "ramp_hold",
    "SEEN_MARGIN", "cap_at_seen", "seen_max",
    "Blend", "BlendedModel", "calibration_error", "choose_blend", "fallback_model", "fit_blend", "fit_gated_blend", "gate_blend",
]
