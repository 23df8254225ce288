"""The sessions part's decisions: a missing policy, the key settings the OpenBao slice gets, policy.json."""

from __future__ import annotations

from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.backends.base import TenantSlice
from tenancy_operator.handlers import sessions_part
from tenancy_operator.reconcile import status as tstatus

SERVICES = {"redis": {"enabled": True}, "vault": {"enabled": True}}


def _tenant(**spec) -> TenantSpec:
    return TenantSpec.model_validate({**SERVICES, **spec})


def test_a_missing_policy_is_policy_not_found_and_stalls_ready():
    policy, problem = sessions_part.resolve(_tenant(sessionPolicyRef="gone"), {"other": [{}]})
    assert policy is None and problem.reason == "PolicyNotFound" and problem.stalled and "gone" in problem.message
    conditions, phase, _ = tstatus.summarize([], [problem], 1, "Active")
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], phase) == ("False", "PolicyNotFound", "Stalled")
    assert sessions_part.resolve(_tenant(), {}) == (None, None)


def test_the_policy_found_shapes_the_key_and_policy_json():
    index = {"fast": [{"signingAlgorithm": "ecdsa-p256", "keyRotation": "1h", "overlap": "90s", "idleTimeout": "5m"}]}
    policy, problem = sessions_part.resolve(_tenant(sessionPolicyRef="fast"), index)
    assert problem is None
    want = sessions_part.with_key(TenantSlice(tenant="acme", namespace="tenant-acme"), policy)
    assert (want.signing_algorithm, want.session_rotate_every, want.session_overlap) == ("ecdsa-p256", 3600, 90)
    settings = sessions_part.settings("acme", "fast", policy)
    assert settings["jwsAlgorithm"] == "ES256" and settings["idleTimeoutSeconds"] == 300
    assert settings["transitMount"] == "transit-sessions" and settings["keyName"] == "tenant-acme"
    assert sessions_part.with_key(want, None) is want
