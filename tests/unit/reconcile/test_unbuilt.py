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
    assert found == []  # every Tenant field is built (issues 13, 14, 15)


def test_a_referenced_lifecycle_policy_asks_for_nothing_unbuilt():
    every_field = {"reclaim": "Archive", "retention": "1m", "suspendRevokesLogins": False,
                   "inactivitySuspendAfter": "1h", "deletionProtection": True}
    assert unbuilt.for_tenant(_tenant(lifecyclePolicyRef="keep"), every_field) == []


def test_lifecycle_policy_findings():
    # Every LifecyclePolicy field is built (issue 13): nothing reported.
    policy = LifecyclePolicySpec(reclaim="Archive", retention="48h", suspendRevokesLogins=False,
                                 inactivitySuspendAfter="1h")
    assert unbuilt.for_lifecycle_policy(policy) == []


def test_every_kind_is_built():
    for kind in ("WorkflowRun", "LifecyclePolicy", "TenantSessionPolicy", "CachePolicy"):
        assert unbuilt.for_whole_kind(kind) == [], kind
    assert unbuilt.for_whole_kind("LifecyclePolicy") == []
    assert unbuilt.for_whole_kind("TenantSessionPolicy") == []  # built (issue 14)
    assert unbuilt.for_whole_kind("CachePolicy") == []


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
    from tenancy_operator.api.workflow_run import WORKFLOWS
    from tenancy_operator.workflows import registry
    assert all(unbuilt.for_workflow(w, set(registry.WORKFLOWS)) == [] for w in WORKFLOWS)  # every one is built
    assert "issue 16" in unbuilt.for_workflow("migrate-database", {"rotate-credentials"})[0]
    assert unbuilt.for_workflow("rotate-credentials", {"rotate-credentials"}) == []


def test_a_policy_first_ready_posts_only_its_ready_event():
    _, changed = conditions_for([], [], "everything is built", 1)
    assert changed == ["Ready"]  # Stalled=False first written: in the status, no Event
