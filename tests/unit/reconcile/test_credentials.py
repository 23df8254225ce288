from datetime import datetime, timedelta

import pytest
from tenancy_operator.api.common import parse_duration
from tenancy_operator.reconcile import credentials as c

NOW = datetime(2026, 11, 25, 12, 0, 0)
H = timedelta(hours=1)
SHA = "f" * 64


@pytest.mark.parametrize(
    "text,seconds",
    [("720h", 720 * 3600), ("1h30m", 5400), ("4s", 4), ("1.5h", 5400), ("100ms", 0.1)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "1d", "h", "1h 2m", "30 days"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    "value",
    ["2026-11-29T15:34:06Z", "2026-11-29T16:34:06+01:00", "2026-11-29T10:34:06-05:00", "2026-11-29t15:34:06z",
     "2026-11-29T15:34:06.123456Z", "2026-11-29 15:34:06Z", b"2026-11-29T16:34:06+01:00", " 2026-11-29T15:34:06Z "],
    ids=["utc", "plus-offset", "minus-offset", "lower-case", "fraction", "space", "bytes", "padded"],
)
def test_parse_time_takes_every_rfc3339_form_of_one_instant(value):
    assert c.parse_time(value) == datetime(2026, 11, 29, 15, 34, 6)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-13-01T00:00:00Z", b"\xff\xfe", 42])
def test_parse_time_unreadable_is_none(value):
    assert c.parse_time(value) is None


def test_status_round_trip():
    state = c.State(3, "b", NOW, SHA, "req", "e" * 64, True, c.REQUESTED, ("postgres", "redis"))
    assert c.from_status(c.to_status(state)) == state


def test_status_without_a_slot_is_not_state_yet():
    # A status written by an older operator (version, rotatedAt, activeRole only): migrate from the Secret.
    assert c.from_status({"version": 2, "rotatedAt": "2026-11-25T12:00:00Z", "activeRole": "t_x_b"}) is None
    assert c.from_status(None) is None


def test_status_drops_malformed_values():
    state = c.from_status({"version": "two", "slot": "b", "rotatedAt": "soon", "redisSha256": "not-a-hash",
                           "services": ["redis", 7]})
    assert state == c.State(0, "b", None, "", "", "", False, "", ("redis",))


def test_annotations_are_read_tolerantly_for_migration():
    annotations = {c.VERSION: "3", c.SLOT: "b", c.ROTATED_AT: "2026-11-25T13:00:00+01:00",
                   c.PREVIOUS_REDIS_SHA: SHA, c.ROTATE_HANDLED: "req"}
    state = c.from_annotations(annotations)
    assert (state.version, state.slot, state.rotated_at, state.previous_redis_sha256, state.rotate_handled) == (
        3, "b", NOW, SHA, "req")
    assert state.previous_open  # in_overlap still asks the clock


def test_unreadable_annotations_fall_back_to_the_old_status():
    old = {"version": 2, "rotatedAt": "2026-11-25T12:00:00Z", "activeRole": "t_x_b"}
    state = c.from_annotations({c.VERSION: "x", c.SLOT: "z", c.ROTATED_AT: "garbage"}, old)
    assert (state.version, state.slot, state.rotated_at) == (2, "b", NOW)
    assert c.from_annotations(None) == c.State()


def test_annotations_written_are_informative_only():
    assert c.to_annotations(c.State(3, "b", NOW, SHA, "req")) == {
        c.VERSION: "3", c.SLOT: "b", c.ROTATED_AT: "2026-11-25T12:00:00Z"}


@pytest.mark.parametrize(
    "state,requested,lost,expected",
    [
        (c.State(), "", "", (True, "first credentials")),
        (c.State(1, "a", NOW - 2 * H), "", "", (False, "")),
        (c.State(1, "a", NOW - 800 * H), "", "", (True, c.SCHEDULED)),
        (c.State(1, "a", NOW - 2 * H), "r1", "", (True, c.REQUESTED)),
        (c.State(1, "a", NOW - 2 * H, rotate_handled="r1"), "r1", "", (False, "")),
        (c.State(2, "b", NOW - timedelta(minutes=10), previous_open=True), "r2", "",
         (False, "rotation waits for the previous overlap to end")),
        (c.State(2, "b", NOW - timedelta(minutes=10), previous_open=True), "", c.SECRET_DELETED,
         (True, c.SECRET_DELETED)),
        (c.State(2, "b", None), "", "", (True, c.SCHEDULED)),
    ],
    ids=["first", "fresh", "scheduled", "requested", "already-handled", "in-overlap", "secret-deleted-in-overlap",
         "unknown-time"],
)
def test_rotation_due(state, requested, lost, expected):
    assert c.rotation_due(state, 720 * H, H, requested, NOW, lost) == expected


def test_next_state_flips_slot_and_keeps_this_versions_redis_hash():
    first = c.next_state(c.State(), NOW, "", "first credentials")
    assert (first.version, first.slot, first.previous_open) == (1, "a", False)
    live = c.State(2, "b", NOW, "", "r", redis_sha256=SHA)
    third = c.next_state(live, NOW + H, "", c.SECRET_DELETED)
    assert (third.version, third.slot, third.previous_redis_sha256, third.rotate_handled) == (3, "a", SHA, "r")
    assert third.previous_open and third.reason == c.SECRET_DELETED
    assert c.next_state(third, NOW + 2 * H, "").slot == "b"


def test_a_lost_secret_at_version_2_is_version_3_on_the_other_slot_never_a_reset():
    live = c.State(2, "b", NOW - 2 * H, redis_sha256=SHA, services=("postgres", "redis"))
    due, why = c.rotation_due(live, 720 * H, H, "", NOW, c.SECRET_DELETED)
    target = c.next_state(live, NOW, "", why)
    assert due and (target.version, target.slot, target.previous_redis_sha256) == (3, "a", SHA)
    assert c.in_overlap(target, H, NOW + timedelta(minutes=59))


def test_overlap_only_after_a_rotation_and_until_closed():
    assert not c.in_overlap(c.State(1, "a", NOW), H, NOW)
    opened = c.State(2, "b", NOW, previous_open=True)
    assert c.in_overlap(opened, H, NOW + timedelta(minutes=59))
    assert not c.in_overlap(opened, H, NOW + H)
    assert not c.closing(opened, H, NOW + timedelta(minutes=59))
    assert c.closing(opened, H, NOW + H)
    assert not c.closing(c.State(2, "b", NOW), H, NOW + H)


def test_a_new_service_keeps_the_slot_and_moves_the_version():
    state = c.with_service(c.State(2, "b", NOW, previous_open=True), NOW + H)
    assert (state.version, state.slot, state.rotated_at, state.reason) == (3, "b", NOW, "service-added")


def test_an_edited_password_is_told_from_ours_by_its_hash():
    ours = c.with_passwords(c.State(2, "b", NOW), {"postgres": "pg-ours", "mongodb": "mongo-ours", "search": ""})
    assert set(ours.password_sha256) == {"postgres", "mongodb"}  # an empty password records nothing
    secret = {"postgres": "chosen-by-hand", "mongodb": "mongo-ours", "search": "anything", "redis": ""}
    # search has no recorded hash (trusted until recorded); an absent password is removal, not an edit
    assert c.edited(ours, secret) == ["postgres"]
    assert c.edited(ours, {"postgres": "pg-ours", "mongodb": "mongo-ours"}) == []


def test_redis_falls_back_to_the_hash_older_versions_kept():
    older = c.State(2, "b", NOW, redis_sha256=c.password_sha256("redis-ours"))
    assert c.edited(older, {"redis": "redis-ours"}) == []
    assert c.edited(older, {"redis": "weak"}) == ["redis"]


def test_password_hashes_round_trip_through_status_and_bad_ones_read_as_absent():
    state = c.with_passwords(c.State(3, "a", NOW), {"redis": "r", "postgres": "p"})
    stored = c.to_status(state)
    assert list(stored["passwordSha256"]) == ["postgres", "redis"]  # sorted: one stable form, no rewrite
    assert c.from_status(stored).password_sha256 == state.password_sha256
    read = c.from_status({**stored, "passwordSha256": {"postgres": "not-a-hash", "redis": SHA.upper()}})
    assert read.password_sha256 == {"redis": SHA}
    assert c.from_status({**stored, "passwordSha256": ["x"]}).password_sha256 == {}
    assert c.to_status(c.State(1, "a", NOW))["passwordSha256"] is None


def test_a_rotation_forgets_the_previous_versions_password_hashes():
    live = c.with_passwords(c.State(2, "b", NOW), {"postgres": "p"})
    assert c.next_state(live, NOW + H, "", c.PASSWORD_EDITED).password_sha256 == {}
