"""Status entries: rounded, stable in steady state (hysteresis), and the floor decision wrapper."""

from __future__ import annotations

import numpy as np
from tenancy_operator.api.tenant import AutoscalingRule
from tenancy_operator.forecasting import BacktestScores, FloorDecision, GateVerdict
from tenancy_operator.reconcile import autoscaling as auto
from tenancy_operator.reconcile import rule_forecast as rf


def _rule(mode: str = "Floor") -> AutoscalingRule:
    return AutoscalingRule.model_validate(dict(name="web", targetRef={"name": "web"}, metric={"prometheus": "q"},
                                               capacityPerReplica=50, minReplicas=2, maxReplicas=20, mode=mode))


def _fitted(active: bool = True) -> rf.FittedRule:
    scores = BacktestScores(n=2877, pinball=0.52434, pinball_persistence=1.96335, mae=2.3643, mae_persistence=4.0114,
                            predicted_rises=5, actual_rises=15, true_rises=5)
    reason = ("Predictive: holt-winters beats persistence (skill 0.73, pinball 0.524 vs 1.96)" if active
              else "Reactive: holt-winters predicted 0 rises in the backtest window, too few to trust (need 3)")
    return rf.FittedRule(rf.feature_config("1m", "2m"), "holt-winters", object(), GateVerdict(active, reason, scores),
                           reason, {"holt-winters": scores}, np.zeros(10), np.zeros(10), 1_800_000_000.0, 2.3, 20160)


def _fc(median: float, upper: float, recent: float = 120.0, at: float = 1_800_000_130.0) -> rf.Forecast:
    return rf.Forecast(median, upper, recent, at, at + 60, 0.0123, None)


def test_rule_status_rounds_and_names_the_model_gate_and_floor():
    entry = auto.rule_status(_rule(), _fitted(), _fc(430.217, 450.9), FloorDecision(13, 13, 1_800_000_300.0, "Lifted"))
    assert entry["model"] == "holt-winters" and entry["mode"] == "Floor"
    assert entry["gate"] == {"active": True, "reason": _fitted().reason}
    assert entry["forecast"] == {"peak": 430.0, "upper": 451.0, "recent": 120.0, "at": "2027-01-15T08:02:00Z"}
    assert entry["backtest"]["pinball"] == 0.524 and entry["backtest"]["skill"] == 0.73
    assert entry["floor"] == 13 and entry["liftUntil"] == "2027-01-15T08:05:00Z"
    assert entry["anomalyScore"] == 0.0 and entry["lastRefit"] == "2027-01-15T08:00:00Z"


def test_without_a_model_status_says_it_waits_and_gate_is_off():
    entry = auto.rule_status(_rule("Observe"), None, None, FloorDecision(2, None, None, "No forecast"))
    assert entry["gate"] == {"active": False, "reason": "Reactive: waiting for the first model"}
    assert "forecast" not in entry and entry["floor"] == 2


def test_gate_off_is_inactive_even_with_a_forecast():
    entry = auto.rule_status(_rule(), _fitted(active=False), _fc(100, 110), FloorDecision(2, None, None, "Gate closed"))
    assert entry["gate"]["active"] is False and entry["gate"]["reason"].startswith("Reactive:")
    assert auto.short_reason("Reactive: x does not beat persistence (pinball 1 vs 2)") == "Reactive: x does not beat persistence"


def test_publish_keeps_the_old_forecast_while_it_moves_within_tolerance():
    d = FloorDecision(2, None, None, "")
    first = auto.publish(None, auto.rule_status(_rule(), _fitted(), _fc(120, 130), d))
    later = auto.rule_status(_rule(), _fitted(), _fc(125, 134, 121, at=1_800_000_190.0), d)
    assert later["forecast"] != first["forecast"]
    assert auto.publish(first, later) == first  # steady state: nothing to write
    moved = auto.rule_status(_rule(), _fitted(), _fc(200, 220), d)
    assert auto.publish(first, moved) == moved
    lifted = auto.rule_status(_rule(), _fitted(), _fc(125, 134), FloorDecision(5, 5, 1.0, ""))
    assert auto.publish(first, lifted)["floor"] == 5


def test_decide_without_forecast_holds_a_lift_until_its_time_then_releases():
    rule = _rule()
    held = auto.decide(rule, None, False, 12, auto.LiftState(12, 1000.0), now_s=900.0)
    assert held.floor == 12 and held.lift == 12
    released = auto.decide(rule, None, False, 12, auto.LiftState(12, 1000.0), now_s=1001.0)
    assert released.floor == 2 and released.lift is None


def test_decide_lifts_on_a_forecast_rise_and_not_when_the_gate_is_closed():
    rule = _rule()
    fc = _fc(430, 450, recent=120)
    lifted = auto.decide(rule, fc, True, 2, auto.LiftState(), now_s=1_800_000_000.0)
    assert lifted.floor == 13 and lifted.lift_until_s == fc.peak_end_s
    assert auto.decide(rule, fc, False, 2, auto.LiftState(), now_s=1_800_000_000.0).floor == 2


def test_feature_config_horizon_is_lead_plus_one_step():
    cfg = rf.feature_config("1m", "2m")
    assert (cfg.horizon, cfg.window, cfg.step_s) == (2, 2, 60)
    cfg = rf.feature_config("5m30s", "5m")
    assert (cfg.horizon, cfg.window) == (7, 5)
