"""The repeated-repair detector: a write repeated on the next pass is a defect, reported once and backed off."""

from tenancy_operator.reconcile import diff
from tenancy_operator.reconcile.repairs import RepairTracker


def test_a_single_repair_is_drift_not_a_repeat():
    t = RepairTracker()
    assert not t.record("acme", 1, {"ACL user tenant:acme": "commands"}).recurring
    assert not t.record("acme", 1, {}).recurring
    assert not t.record("acme", 1, {"ACL user tenant:acme": "commands"}).recurring  # came back after a clean pass: drift again
    assert not t.hold("acme", 1)


def test_the_same_object_on_two_consecutive_passes_is_reported_once_and_backs_off():
    t = RepairTracker(max_hold=8)
    t.record("acme", 3, {"ACL user tenant:acme": "commands", "policy tenant-acme": "text"})
    first = t.record("acme", 3, {"ACL user tenant:acme": "commands"})
    assert first.recurring == ("ACL user tenant:acme",)
    assert first.new == ("ACL user tenant:acme",)
    assert first.hold_passes == 2
    assert [t.hold("acme", 3) for _ in range(3)] == [True, True, False]
    again = t.record("acme", 3, {"ACL user tenant:acme": "commands"})
    assert again.recurring == ("ACL user tenant:acme",) and again.new == ()  # logged and announced once only
    assert again.hold_passes == 4
    holds = []
    for _ in range(5):
        holds.append(t.hold("acme", 3))
    assert holds == [True] * 4 + [False]
    for _ in range(5):
        v = t.record("acme", 3, {"ACL user tenant:acme": "commands"})
        while t.hold("acme", 3):
            pass
    assert v.hold_passes == 8  # capped


def test_a_settled_object_or_a_new_generation_clears_it():
    t = RepairTracker()
    t.record("acme", 1, {"x": "spec.a"})
    assert t.record("acme", 1, {"x": "spec.a"}).recurring
    assert not t.record("acme", 1, {}).recurring
    assert not t.hold("acme", 1)
    t.record("acme", 1, {"x": "spec.a"})
    assert t.record("acme", 1, {"x": "spec.a"}).new == ("x",)  # settled in between: a new occurrence is reported again
    assert not t.hold("acme", 2)
    assert not t.record("acme", 2, {"x": "spec.a"}).recurring  # the spec changed: writes apply it
    t.forget("acme")
    assert not t.record("acme", 2, {"x": "spec.a"}).recurring


def test_creating_a_missing_object_or_a_moved_reason_or_context_is_not_a_repeat():
    t = RepairTracker()
    t.record("acme", 1, {"create ResourceQuota/q": "missing"})
    assert not t.record("acme", 1, {"create ResourceQuota/q": "missing"}).recurring  # deleted twice: real drift
    t.record("acme", 1, {"ACL user tenant:acme": "passwords (1 held, 2 wanted)"}, "v2")
    assert not t.record("acme", 1, {"ACL user tenant:acme": "passwords (2 held, 1 wanted)"}, "v2").recurring
    assert not t.record("acme", 1, {"ACL user tenant:acme": "passwords (2 held, 1 wanted)"}, "v3").recurring


def test_tenants_are_tracked_apart():
    t = RepairTracker()
    t.record("a", 1, {"x": "spec.a"})
    assert not t.record("b", 1, {"x": "spec.a"}).recurring


def test_mismatches_name_the_fields_that_differ():
    step = diff.plan(
        [{"kind": "LimitRange", "metadata": {"name": "l", "labels": {"a": "1"}},
          "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "1Gi"}}]}}],
        {("LimitRange", "l"): {"kind": "LimitRange", "metadata": {"name": "l", "labels": {"a": "1"}},
                               "spec": {"limits": [{"type": "Container", "default": {"cpu": "0.5", "memory": "2Gi"}}]}}},
    ).writes[0]
    assert diff.describe(step) == "spec.limits[0].default.memory: live '2Gi' (want '1Gi')"
