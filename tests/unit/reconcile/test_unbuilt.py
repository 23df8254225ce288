"""What a spec asks for that is not built: named field by field, never for defaults."""

from __future__ import annotations

from tenancy_operator.api.lifecycle_policy import LifecyclePolicySpec
from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.handlers.policies import conditions_for
from tenancy_operator.reconcile import unbuilt


def _tenant(**spec) -> TenantSpec:
    return TenantSpec.model_validate(spec)


def test_defaults_ask_for_nothing_unbuilt():
    assert unbuilt.for_tenant(_tenant(), None) == []
    assert unbuilt.for_tenant(_tenant(postgres={"enabled": True}, vault={"enabled": True}, state="Suspended"),
                              None) == []
    assert unbuilt.for_lifecycle_policy(LifecyclePolicySpec()) == []
    assert unbuilt.for_lifecycle_policy(LifecyclePolicySpec(reclaim="Delete")) == []


def test_each_unbuilt_tenant_field_is_named_with_its_issue():
    found = unbuilt.for_tenant(_tenant(mongodb={"enabled": True}, search={"backend": "os-main"},
                                       cachePolicyRef="standard", sessionPolicyRef="default", state="Archived"), None)
    text = unbuilt.message(found)
    for needle in ("spec.mongodb.enabled", "spec.search.enabled", "spec.cachePolicyRef", "spec.sessionPolicyRef",
                   "spec.state", "state Archived", "issue 13", "issue 14", "issue 15"):
        assert needle in text, needle
    assert len(found) == 5


def test_the_tenants_lifecycle_policy_counts_but_only_when_referenced():
    archive = {"reclaim": "Archive", "retention": "720h"}
    assert unbuilt.for_tenant(_tenant(), archive) == []
    found = unbuilt.for_tenant(_tenant(lifecyclePolicyRef="keep"), archive)
    assert len(found) == 1 and found[0].startswith("LifecyclePolicy keep (spec.lifecyclePolicyRef) spec.reclaim:")
    assert unbuilt.for_tenant(_tenant(lifecyclePolicyRef="keep"), {"reclaim": "Delete"}) == []


def test_lifecycle_policy_findings():
    policy = LifecyclePolicySpec(reclaim="Archive", retention="48h", suspendRevokesLogins=False)
    assert [u.fields[0] for u in unbuilt.for_lifecycle_policy(policy)] == [
        "LifecyclePolicy.spec.reclaim", "LifecyclePolicy.spec.retention", "LifecyclePolicy.spec.suspendRevokesLogins"]


def test_whole_kinds_are_always_unbuilt():
    for kind in ("CachePolicy", "TenantSessionPolicy"):
        assert unbuilt.for_whole_kind(kind) and "not built yet" in unbuilt.for_whole_kind(kind)[0]
    assert unbuilt.for_whole_kind("LifecyclePolicy") == []


def test_policy_status_is_stalled_not_implemented_then_ready_and_steady():
    conditions, changed = conditions_for([], ["spec: CachePolicy is not built yet (issue 14)"], "", 1)
    by_type = {c["type"]: c for c in conditions}
    assert by_type["Stalled"]["status"] == "True" and by_type["Stalled"]["reason"] == "NotImplemented"
    assert by_type["Ready"]["status"] == "False" and "issue 14" in by_type["Ready"]["message"]
    assert sorted(changed) == ["Ready", "Stalled"]
    again, changed = conditions_for(conditions, ["spec: CachePolicy is not built yet (issue 14)"], "", 1)
    assert again == conditions and changed == []  # steady state: nothing to write
    built, changed = conditions_for(conditions, [], "everything is built", 2)
    by_type = {c["type"]: c for c in built}
    assert by_type["Ready"]["status"] == "True" and by_type["Stalled"]["status"] == "False"
    assert by_type["Ready"]["observedGeneration"] == 2


def test_workflows_not_built_name_their_issue():
    assert "issue 13" in unbuilt.for_workflow("offboard", {"rotate-credentials"})[0]
    assert "issue 16" in unbuilt.for_workflow("migrate-database", {"rotate-credentials"})[0]
    assert unbuilt.for_workflow("rotate-credentials", {"rotate-credentials"}) == []
