"""reconcile/status_patch.py: a Tenant status merge patch leaves the stored status exactly as wanted.

The fuzz run found status.endpoints keeping MONGODB_* keys after spec.mongodb was turned off: a JSON
merge patch (RFC 7386) keeps every key it does not name, so each verify pass found the stored status
differing from the wanted one and patched it again, for ever. Checked here against an RFC 7386 merge
written in this file (not the module's own `apply`).
"""

import copy

from tenancy_operator.reconcile.status_patch import apply, status_patch

PG = {"PGHOST": "pg.example", "PGPORT": "5432", "PGDATABASE": "t_fz_0", "PGUSER": "t_fz_0_a"}
MONGO = {"MONGODB_URI_HOST": "mongo.example", "MONGODB_URI": "mongodb://mongo.example/t_fz_0"}


def merge(target, patch):
    """RFC 7386 section 2, MergePatch(Target, Patch), as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge(result.get(name), value)
    return result


def write(stored, wanted):
    """The stored status after a pass: its patch applied, or stored as it was when there is none."""
    patch = status_patch(stored, wanted)
    return stored if patch is None else merge(stored, patch)


def old_patch(stored, wanted):
    """The patch built before this fix: `wanted` as it was, whenever a top-level field differed."""
    return wanted if any(stored.get(k) != v for k, v in wanted.items()) else None


def test_endpoints_of_a_disabled_service_are_named_with_null():
    stored = {"phase": "Ready", "endpoints": {**PG, **MONGO}, "placement": {"postgres": "pg-a", "mongodb": "mg-a"}}
    wanted = {"phase": "Ready", "endpoints": dict(PG)}
    patch = status_patch(stored, wanted)
    assert patch["endpoints"] == {**PG, "MONGODB_URI_HOST": None, "MONGODB_URI": None}
    after = merge(stored, patch)
    assert after["endpoints"] == PG  # exactly the wanted object: MONGODB_* gone
    assert after["placement"] == stored["placement"]  # a top-level field the pass does not write is left alone
    assert status_patch(after, wanted) is None  # and the next pass writes nothing


def test_keys_dropped_two_and_three_levels_down():
    stored = {"suspension": {"by": "inactivity", "since": "2026-01-01T00:00:00Z", "loginsRevoked": True,
                             "workloads": {"Deployment/web": {"replicas": 3, "hpa": "web"}, "Deployment/old": 1}},
              "cache": {"policy": "p", "lastEviction": {"keys": 3, "bytes": 10}}}
    wanted = {"suspension": {"by": "spec", "loginsRevoked": True, "workloads": {"Deployment/web": {"replicas": 3}}},
              "cache": {"policy": "p", "lastEviction": {"keys": 3}}}
    patch = status_patch(stored, wanted)
    assert patch["suspension"]["since"] is None
    assert patch["suspension"]["workloads"]["Deployment/old"] is None
    assert patch["suspension"]["workloads"]["Deployment/web"] == {"replicas": 3, "hpa": None}
    assert patch["cache"]["lastEviction"] == {"keys": 3, "bytes": None}
    after = merge(stored, patch)
    assert after == wanted
    assert status_patch(after, wanted) is None


def test_nothing_to_write_when_stored_is_wanted():
    stored = {"observedGeneration": 2, "phase": "Ready", "endpoints": dict(PG),
              "conditions": [{"type": "Ready", "status": "True"}], "credentials": {"version": 3, "slot": "b"},
              "placement": {"postgres": "pg-a"}}
    wanted = {k: copy.deepcopy(v) for k, v in stored.items() if k != "placement"}
    assert status_patch(stored, wanted) is None
    # A null for a key that is absent already changes nothing either (top level or nested).
    assert status_patch(stored, {**wanted, "backends": None, "suspension": None}) is None
    assert status_patch(stored, {**wanted, "credentials": {"version": 3, "slot": "b", "pending": None}}) is None
    assert status_patch({}, {"backends": None}) is None
    assert status_patch(None, {"phase": "Ready"}) == {"phase": "Ready"}


def test_the_old_patch_left_the_stale_keys_and_wrote_on_every_pass():
    """The patch as it was built before (`wanted` alone) never removed MONGODB_URI: a write on every
    pass. tests/unit/handlers/test_status_write_loop.py fails with that code in handlers/tenant.py."""
    stored = {"phase": "Ready", "endpoints": {**PG, **MONGO}, "suspension": {"by": "spec", "since": "x"}}
    wanted = {"phase": "Ready", "endpoints": dict(PG), "suspension": {"by": "spec"}}
    old, old_writes = stored, 0  # the defect, shown with the old rule
    for _ in range(4):
        if old_patch(old, wanted) is not None:
            old_writes += 1
            old = merge(old, old_patch(old, wanted))
    assert old_writes == 4 and old["endpoints"] != PG
    writes, now = 0, stored
    for _ in range(4):  # four verify passes with nothing changing
        if status_patch(now, wanted) is not None:
            writes += 1
        now = write(now, wanted)
    assert writes == 1, f"{writes} writes in 4 quiet passes"
    assert now == wanted


def test_lists_and_scalars_are_replaced_whole_and_objects_replace_non_objects():
    stored = {"conditions": [{"type": "Ready"}, {"type": "Stalled"}], "endpoints": "garbage", "autoscaling": [1]}
    wanted = {"conditions": [{"type": "Ready"}], "endpoints": {"PGHOST": "h"}, "autoscaling": None}
    patch = status_patch(stored, wanted)
    assert patch == wanted
    assert merge(stored, patch) == {"conditions": [{"type": "Ready"}], "endpoints": {"PGHOST": "h"}}


def test_arguments_are_not_changed_and_apply_is_rfc_7386():
    stored = {"endpoints": {**PG, **MONGO}}
    wanted = {"endpoints": dict(PG)}
    before = copy.deepcopy((stored, wanted))
    patch = status_patch(stored, wanted)
    assert (stored, wanted) == before
    assert apply(stored, patch) == merge(stored, patch)
    # RFC 7386 appendix A's cases that matter here.
    assert apply({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert apply({"a": "b"}, {"a": None}) == {}
    assert apply({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert apply({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert apply({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    assert apply(["a", "b"], {"a": "b"}) == {"a": "b"}
