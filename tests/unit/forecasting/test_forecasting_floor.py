"""The rise-only Floor rule, as a table of situations."""

import pytest
from tenancy_operator.forecasting import FloorInput, decide_floor, replicas_for

BASE = dict(capacity_per_replica=50.0, target_utilisation=0.7, tolerance=0.1, min_replicas=2, max_replicas=20,
            now_s=1000.0, peak_end_s=1600.0)
# 10 replicas at 35 per pod hold 350.


@pytest.mark.parametrize(
    ("median", "upper", "held", "expected_floor", "lifted"),
    [
        (350.0, 400.0, 10, 2, False),   # forecast equals held capacity: no lift (would restate capacity)
        (380.0, 400.0, 10, 2, False),   # +8.6%: inside the 10% tolerance
        (400.0, 420.0, 10, 2, False),   # +14% but the held pods serve 500: the HPA's headroom absorbs it
        (400.0, 520.0, 10, 15, True),   # +14% and the upper quantile overruns 500: lift, sized from it
        (400.0, 2000.0, 10, 20, True),  # capped at maxReplicas
        (100.0, 100.0, 10, 2, False),   # falling demand: never lowers below what the HPA decides
        (600.0, 300.0, 10, 18, True),   # upper below median is treated as the median's need at least
    ],
)
def test_floor_table(median, upper, held, expected_floor, lifted):
    up = max(upper, median)
    d = decide_floor(FloorInput(median, up, held_replicas=held, **BASE))
    assert d.floor == expected_floor
    assert (d.lift is not None) is lifted


def test_no_lift_when_hpa_already_holds_enough():
    # Rise against the HPA's own metric, but the HPA already holds more (scale-down window).
    d = decide_floor(FloorInput(500.0, 520.0, held_replicas=16, recent_demand=350.0, **BASE))
    assert d.floor == 2 and d.lift is None


def test_lift_is_held_until_the_predicted_peak_passes_then_released():
    d1 = decide_floor(FloorInput(500.0, 520.0, held_replicas=10, **BASE))
    assert d1.floor == 15 and d1.lift_until_s == 1600.0
    quiet = dict(BASE, now_s=1300.0, peak_end_s=1900.0)
    d2 = decide_floor(FloorInput(300.0, 320.0, held_replicas=15, recent_demand=300.0,
                                 current_lift=d1.lift, lift_until_s=d1.lift_until_s, **quiet))
    assert d2.floor == 15 and "Holding" in d2.reason
    later = dict(BASE, now_s=1700.0, peak_end_s=2300.0)
    d3 = decide_floor(FloorInput(300.0, 320.0, held_replicas=15, recent_demand=300.0,
                                 current_lift=d2.lift, lift_until_s=d2.lift_until_s, **later))
    assert d3.floor == 2 and d3.lift is None


def test_lift_extends_while_rise_still_forecast_and_grows_only_past_tolerance_and_risk():
    d1 = decide_floor(FloorInput(500.0, 520.0, held_replicas=10, recent_demand=340.0, **BASE))
    step = dict(BASE, now_s=1500.0, peak_end_s=2100.0)
    d2 = decide_floor(FloorInput(520.0, 540.0, held_replicas=15, recent_demand=340.0,
                                 current_lift=d1.lift, lift_until_s=d1.lift_until_s, **step))
    assert d2.floor == d1.floor and d2.lift_until_s == 2100.0  # 16 is within 10% of 15
    d3 = decide_floor(FloorInput(600.0, 700.0, held_replicas=15, recent_demand=340.0,
                                 current_lift=d2.lift, lift_until_s=d2.lift_until_s, **step))
    assert d3.floor == 15  # 20 wanted, but the 15 lifted pods serve 750 > 700: no extra scale event
    d4 = decide_floor(FloorInput(600.0, 800.0, held_replicas=15, recent_demand=340.0,
                                 current_lift=d3.lift, lift_until_s=d3.lift_until_s, **step))
    assert d4.floor == 20  # 800 would overrun them: grow (capped at maxReplicas)


def test_closed_gate_releases_everything():
    d = decide_floor(FloorInput(900.0, 900.0, held_replicas=10, current_lift=15, lift_until_s=5000.0,
                                gate_active=False, **BASE))
    assert d.floor == 2 and "Gate closed" in d.reason


@pytest.mark.parametrize(("demand", "replicas"), [(0.0, 0), (35.0, 1), (35.1, 2), (700.0, 20)])
def test_replicas_for(demand, replicas):
    assert replicas_for(demand, 50.0, 0.7) == replicas


def test_invalid_bounds():
    with pytest.raises(ValueError):
        decide_floor(FloorInput(1.0, 1.0, held_replicas=1, **dict(BASE, min_replicas=30)))
