from datetime import datetime, timedelta

import pytest
from tenancy_operator.reconcile import credentials as c

NOW = datetime(2026, 11, 25, 12, 0, 0)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    "text,seconds",
    [("720h", 720 * 3600), ("1h30m", 5400), ("4s", 4), ("1.5h", 5400), ("100ms", 0.1)],
)
def test_parse_duration(text, seconds):
    assert c.parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "1d", "h", "1h 2m", "30 days"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        c.parse_duration(bad)


@pytest.mark.parametrize(
    "state,requested,now,expected",
    [
        (c.State(), "", NOW, (True, "first credentials")),
        (c.State(1, "a", NOW - 2 * H), "", NOW, (False, "")),
        (c.State(1, "a", NOW - 800 * H), "", NOW, (True, "scheduled")),
        (c.State(1, "a", NOW - 2 * H), "r1", NOW, (True, "requested")),
        (c.State(1, "a", NOW - 2 * H, rotate_handled="r1"), "r1", NOW, (False, "")),
        (c.State(2, "b", NOW - timedelta(minutes=10)), "r2", NOW, (False, "rotation waits for the previous overlap to end")),
    ],
    ids=["first", "fresh", "scheduled", "requested", "already-handled", "in-overlap"],
)
def test_rotation_due(state, requested, now, expected):
    assert c.rotation_due(state, 720 * H, H, requested, now) == expected


def test_next_state_flips_slot_and_keeps_previous_hash():
    first = c.next_state(c.State(), NOW, "", "")
    assert (first.version, first.slot) == (1, "a")
    second = c.next_state(first, NOW + H, "r", "abc")
    assert (second.version, second.slot, second.previous_redis_sha256, second.rotate_handled) == (2, "b", "abc", "r")
    assert c.next_state(second, NOW + 2 * H, "", "").slot == "a"


def test_annotations_round_trip():
    state = c.State(3, "b", NOW, "f" * 64, "req")
    assert c.from_annotations(c.to_annotations(state)) == state


def test_overlap_only_after_a_rotation():
    assert not c.in_overlap(c.State(1, "a", NOW), H, NOW)
    assert c.in_overlap(c.State(2, "b", NOW), H, NOW + timedelta(minutes=59))
    assert not c.in_overlap(c.State(2, "b", NOW), H, NOW + H)
