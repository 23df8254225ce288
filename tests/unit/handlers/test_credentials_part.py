"""The pure helpers of the credentials part: reading a user-writable Secret, and where the state comes from."""

import base64

from tenancy_operator.handlers import credentials_part as cp
from tenancy_operator.reconcile import credentials as c


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_secret_values_that_are_not_utf8_base64_read_as_absent():
    secret = {"data": {"PGPASSWORD": _b64(b"ok"), "REDIS_PASSWORD": _b64(b"\xff\xfe"), "X": "not base64!", "Y": None}}
    assert cp._decode(secret) == {"PGPASSWORD": "ok", "Y": ""}
    assert cp._decode(None) == {}


def test_status_state_wins_over_the_secrets_annotations():
    live = {"metadata": {"annotations": {c.VERSION: "1", c.SLOT: "a", c.ROTATED_AT: "2026-11-29T16:34:06+01:00"}}}
    status = {"version": 2, "slot": "b", "rotatedAt": "2026-11-25T12:00:00Z"}
    assert (cp.current_state(status, live).version, cp.current_state(status, live).slot) == (2, "b")


def test_without_status_state_the_annotations_are_migrated_once():
    live = {"metadata": {"annotations": {c.VERSION: "2", c.SLOT: "b", c.ROTATED_AT: "2026-11-29T16:34:06+01:00"}},
            "data": {"PGPASSWORD": _b64(b"p"), "REDIS_PASSWORD": _b64(b"r")}}
    state = cp.current_state({"version": 2, "activeRole": "t_x_b"}, live)
    assert (state.version, state.slot, state.rotated_at.isoformat(), state.services) == (
        2, "b", "2026-11-29T15:34:06", ("postgres", "redis"))


def test_tokens_retire_only_after_a_rotations_overlap():
    from datetime import datetime

    from tenancy_operator.handlers import credentials_part as cp
    from tenancy_operator.reconcile import credentials as creds

    at = datetime(2026, 12, 1, 12, 0, 0)
    rotated = creds.State(version=3, slot="b", rotated_at=at, reason=creds.REQUESTED)
    # the whole second of rotatedAt (kept to the second): a token of 12:00:00.4 may predate the rotation
    assert cp._retire_tokens_before(cp.Plan(rotated)) == 1796126401.0
    assert cp._retire_tokens_before(cp.Plan(rotated, previous_valid=True)) is None  # overlap still running
    assert cp._retire_tokens_before(cp.Plan(rotated, staged=True)) is None  # rotation under way
    first = creds.State(version=1, slot="a", rotated_at=at, reason="first credentials")
    assert cp._retire_tokens_before(cp.Plan(first)) is None  # no rotation: nothing to retire


def test_a_removed_owner_reference_is_put_back_and_others_kept():
    state = c.State(1, "a")
    desired = cp._secret(cp.SECRET, "tenant-acme", "acme", "uid-1", {"PGPASSWORD": "p"}, state)
    ours = desired["metadata"]["ownerReferences"][0]
    live = {"metadata": {"ownerReferences": [{"uid": "argo", "kind": "Application", "controller": False}]},
            "data": {}}
    patch = cp._replace_body(desired, live)
    assert patch["metadata"]["ownerReferences"] == [live["metadata"]["ownerReferences"][0], ours]
    live["metadata"]["ownerReferences"].append(ours)
    assert "ownerReferences" not in cp._replace_body(desired, live)["metadata"]  # steady state: not rewritten
    hijacked = {"metadata": {"ownerReferences": [{"uid": "x", "kind": "Deployment", "controller": True}]}}
    assert cp._replace_body(desired, hijacked)["metadata"]["ownerReferences"] == [ours]  # one controller only


def test_while_the_first_credentials_are_pending_the_secrets_annotations_are_not_read():
    """Anyone with Secret write access sets annotations: during the first staging (status holds only
    `pending`) a hand-made tenant-credentials claiming version 1 must not become the live state."""
    forged = {"metadata": {"annotations": {c.VERSION: "1", c.SLOT: "a", c.ROTATED_AT: "2099-01-01T00:00:00Z"}},
              "data": {"PGPASSWORD": _b64(b"chosen-by-hand")}}
    pending_only = {"pending": {"version": 1, "slot": "a", "reason": "first credentials"}}
    assert cp.current_state(pending_only, forged) == c.State()
    assert not cp._migrating(pending_only)
    assert cp._migrating({"version": 2, "activeRole": "t_x_b"})  # an older operator's status: read once
    assert cp._migrating(None)


def test_a_suspension_ends_a_rotations_overlap():
    # OpenSearch's users are deleted while suspended and their passwords not kept: the previous version
    # could not open again at resume on every backend, so none keeps it (the workloads restart on the
    # current version then).
    open_state = c.State(version=2, slot="b", previous_open=True)
    plan = cp.Plan(open_state, {"postgres": "pw"}, previous_valid=True)
    suspended = cp.suspend(plan)
    assert (suspended.previous_valid, suspended.closing, suspended.suspended) == (False, True, True)
    staged = cp.Plan(open_state, {"postgres": "pw"}, staged=True, previous_valid=True)
    rotated = cp.suspend(staged)  # a rotation staged while suspended (rotateEvery due, a request): no overlap
    assert (rotated.staged, rotated.previous_valid, rotated.closing) == (True, False, True)
    closed = cp.Plan(c.State(version=2, slot="b"), {"postgres": "pw"})
    assert cp.suspend(closed) is closed
