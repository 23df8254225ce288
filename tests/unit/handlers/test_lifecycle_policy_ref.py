"""A spec.lifecyclePolicyRef that names no policy is said, not ignored: LifecyclePolicyReady False."""

from __future__ import annotations

from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.handlers import tenant


def _parts(spec: dict, policies: dict, conditions: list | None = None):
    stored = policies.get(spec.get("lifecyclePolicyRef") or "")  # what the tenant pass reads from its index
    return tenant._lifecycle_policy_parts(TenantSpec.model_validate(spec), stored, {"conditions": conditions or []})


def test_a_missing_policy_is_not_ready_and_says_what_applies_meanwhile():
    (part,) = _parts({"lifecyclePolicyRef": "keep-30-dayz"}, {"keep-30-days": {"reclaim": "Delete"}})
    # Informational: the tenant serves as before; Ready (offboard, GitOps, kubectl wait) is not its to say.
    assert (part.condition, part.ok, part.reason, part.stalled, part.informational) == (
        "LifecyclePolicyReady", False, "PolicyNotFound", False, True)
    assert "keep-30-dayz does not exist" in part.message and "retains the data" in part.message
    (found,) = _parts({"lifecyclePolicyRef": "keep-30-days"}, {"keep-30-days": {"reclaim": "Delete"}})
    assert found.ok and found.condition == "LifecyclePolicyReady" and found.informational


def test_a_missing_policy_leaves_a_suspended_tenant_suspended_and_ready():
    from tenancy_operator.reconcile.status import PartResult, summarize

    parts = [PartResult("NamespaceReady", True, "Succeeded", "ok"),
             *_parts({"lifecyclePolicyRef": "gone"}, {})]
    conditions, phase, _ = summarize([], parts, 1, "Suspended")
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert (phase, ready["status"]) == ("Suspended", "True")
    assert next(c for c in conditions if c["type"] == "LifecyclePolicyReady")["status"] == "False"


def test_no_reference_adds_no_condition_but_clears_an_old_one():
    assert _parts({}, {}) == []
    (cleared,) = _parts({}, {}, [{"type": "LifecyclePolicyReady", "status": "False"}])
    assert cleared.ok and "no LifecyclePolicy named" in cleared.message
