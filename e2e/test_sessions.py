"""TenantSessionPolicy and tenancy_client.sessions on the real Redis and OpenBao (issue 14).

Each test acts as a tenant application: the `tenant-credentials` Secret, ConfigMap `tenant-session-keys`
and a ServiceAccount token of `tenant-app` from the TokenRequest API are all it holds. Every refusal
checked here comes from the server (OpenBao 403, Redis NOPERM), not from the library.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from tenancy_client.config import TenantConfig
from tenancy_client.sessions import InvalidToken, Refused, SessionEnded, Sessions

from .admin import vault_admin
from .kube import condition, eventually, get, kubectl, object_events, tenant_yaml
from .tenant_clients import credentials

SERVICES = {"redis": {"enabled": True}, "vault": {"enabled": True}}


def _policy(name: str, **spec: Any) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "TenantSessionPolicy",
                                                  "metadata": {"name": name}, "spec": spec}))


def _delete_policy(name: str) -> None:
    """A LifecyclePolicy that deletes everything, so these tenants leave nothing behind."""
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                                                  "metadata": {"name": name}, "spec": {"reclaim": "Delete"}}))


def _ready(name: str, timeout: int = 90) -> None:
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", f"--timeout={timeout}s", timeout=timeout + 10)


def _configmap(name: str) -> dict[str, Any]:
    cm = get("configmap", "tenant-session-keys", f"tenant-{name}")
    assert cm is not None, f"no ConfigMap tenant-session-keys in tenant-{name}"
    return cm


def _kids(name: str) -> list[str]:
    return [k["kid"] for k in json.loads(_configmap(name)["data"]["jwks.json"])["keys"]]


def _config(name: str) -> TenantConfig:
    data = _configmap(name)["data"]
    return TenantConfig(credentials=credentials(name), session_policy=json.loads(data["policy.json"]),
                        jwks=json.loads(data["jwks.json"]))


def _sa_token(name: str) -> str:
    return kubectl("create", "token", "tenant-app", "-n", f"tenant-{name}").stdout.strip()


def _client(name: str, config: TenantConfig | None = None) -> Sessions:
    return Sessions(config or _config(name), service_account_token=lambda: _sa_token(name))


def _event_reasons(tenant: str) -> set[str]:
    return {e["reason"] for e in object_events("Tenant", tenant)}


def _cleanup(tenants: list[str], policies: list[str]) -> None:
    for t in tenants:
        kubectl("delete", "tenant", t, "--ignore-not-found", "--timeout=90s", check=False, timeout=100)
    for p in policies:
        kubectl("delete", "tenantsessionpolicy", p, "--ignore-not-found", check=False)
        kubectl("delete", "lifecyclepolicy", p, "--ignore-not-found", check=False)


def test_session_key_rotates_and_old_tokens_retire_after_the_overlap(backends, operator):
    """A token signed before a rotation validates during the overlap and is refused after it (ecdsa-p256)."""
    name, policy = f"srot-{secrets.token_hex(3)}", f"srot-{secrets.token_hex(3)}"
    _policy(policy, signingAlgorithm="ecdsa-p256", keyRotation="20s", overlap="10s", lifetime="1h", idleTimeout="30m")
    _delete_policy(policy)
    try:
        kubectl("apply", "-f", "-", input=tenant_yaml(name, sessionPolicyRef=policy, lifecyclePolicyRef=policy,
                                                      **SERVICES))
        _ready(name)
        assert _kids(name) == ["v1"]
        config = _config(name)
        assert config.session_policy["jwsAlgorithm"] == "ES256" and config.jwks["keys"][0]["crv"] == "P-256"
        sessions = _client(name, config)
        before = sessions.create("ada")
        assert sessions.validate(before.token).kid == "v1"

        # Rotation: v2 is published beside v1; the old token still validates (overlap), new ones use v2.
        eventually(lambda: _kids(name)[:2] == ["v2", "v1"], 45, message="v2 published beside v1")
        sessions.update_keys(_config(name).jwks)
        assert sessions.validate(before.token).user == "ada"
        after = sessions.create("ada")
        assert sessions.validate(after.token).kid == "v2"

        # After the overlap v1 leaves the JWK Set: the token it signed is refused, v2's still validates.
        eventually(lambda: "v1" not in _kids(name), 45, message="v1 retired after the overlap")
        sessions.update_keys(_config(name).jwks)
        with pytest.raises(InvalidToken, match="v1"):
            sessions.validate(before.token)
        if "v2" in _kids(name):
            assert sessions.validate(after.token).kid == "v2"
        key = vault_admin().read(f"transit-sessions/keys/tenant-{name}")["data"]
        assert key["min_decryption_version"] >= 2 and key["min_available_version"] >= 2 and "1" not in key["keys"]
        reasons = _event_reasons(name)  # the schedule's writes are Rotated Events, not drift
        assert "Rotated" in reasons and not {"DriftRepaired", "RepeatedRepair"} & reasons, reasons
    finally:
        _cleanup([name], [policy])


def test_revocation_idle_timeout_and_max_sessions_hold(backends, operator):
    """Revocation is seen at once by another client instance; idle timeout and maxConcurrent hold (ed25519)."""
    name, policy = f"sess-{secrets.token_hex(3)}", f"sess-{secrets.token_hex(3)}"
    _policy(policy, signingAlgorithm="ed25519", lifetime="1h", idleTimeout="4s", maxConcurrent=2)
    _delete_policy(policy)
    try:
        kubectl("apply", "-f", "-", input=tenant_yaml(name, sessionPolicyRef=policy, lifecyclePolicyRef=policy,
                                                      **SERVICES))
        _ready(name)
        one, two = _client(name), _client(name)  # two app instances: own Redis pools, own OpenBao logins
        assert one.algorithm == "EdDSA"

        s = one.create("alice")
        claims = two.validate(s.token)
        assert claims.user == "alice" and claims.expires - claims.issued_at == 3600  # lifetime 1h
        assert one.revoke(s.sid)
        with pytest.raises(SessionEnded):
            two.validate(s.token)

        s = one.create("bob")
        time.sleep(2.5)
        two.touch(s.token)
        time.sleep(2.5)
        assert two.validate(s.token).user == "bob"  # 5 s old, but touched 2.5 s ago
        time.sleep(4.5)
        with pytest.raises(SessionEnded):
            one.validate(s.token)  # idle past 4 s

        first, second, third = (one.create("carol") for _ in range(3))
        assert [x.sid for x in two.list("carol")] == [second.sid, third.sid]
        with pytest.raises(SessionEnded):
            two.validate(first.token)
        assert two.validate(second.token) and two.validate(third.token)

        # Steady state: the verify passes (every 3 s here) rewrite nothing.
        version = _configmap(name)["metadata"]["resourceVersion"]
        time.sleep(8)
        assert _configmap(name)["metadata"]["resourceVersion"] == version
    finally:
        _cleanup([name], [policy])


def test_tenants_cannot_reach_each_others_sessions(backends, operator):
    """A's token does not validate with B's JWK Set; with A's credentials the servers refuse B's sessions."""
    a, b, policy = f"sesa-{secrets.token_hex(3)}", f"sesb-{secrets.token_hex(3)}", f"sesab-{secrets.token_hex(3)}"
    _policy(policy)
    _delete_policy(policy)
    try:
        for t in (a, b):
            kubectl("apply", "-f", "-", input=tenant_yaml(t, sessionPolicyRef=policy, lifecyclePolicyRef=policy,
                                                          **SERVICES))
        _ready(a)
        _ready(b)
        sa, sb = _client(a), _client(b)
        token_a, session_b = sa.create("eve").token, sb.create("bob")
        with pytest.raises(InvalidToken):
            sb.validate(token_a)  # same kid v1, another key: the signature fails

        # A's credentials and login, pointed at B's key and key prefix.
        cfg_b = _config(b)
        crossed_cfg = TenantConfig(credentials={**credentials(a), "REDIS_KEY_PREFIX": f"t:{b}:"},
                                   session_policy=cfg_b.session_policy, jwks=cfg_b.jwks)
        crossed = _client(a, crossed_cfg)
        with pytest.raises(Refused) as signing:
            crossed.create("mallory")
        assert signing.value.server == "openbao" and signing.value.status == 403
        for attempt in (lambda: crossed.validate(session_b.token),   # read
                        lambda: crossed.list("bob"),                   # read
                        lambda: crossed.touch(session_b.token),        # write
                        lambda: crossed.revoke(session_b.sid, "bob")):  # write
            with pytest.raises(Refused) as refused:
                attempt()
            assert refused.value.server == "redis" and "NOPERM" in str(refused.value)
        assert sb.validate(session_b.token).user == "bob"  # untouched
    finally:
        _cleanup([a, b], [policy])


def test_missing_policy_is_policy_not_found_and_recovers(backends, operator):
    """A Tenant naming no existing policy is Ready=False PolicyNotFound, and recovers when it appears;
    a later change of the policy reaches the tenant's ConfigMap."""
    name, policy = f"snf-{secrets.token_hex(3)}", f"snf-{secrets.token_hex(3)}"
    refused = kubectl("apply", "-f", "-", input=tenant_yaml(name, sessionPolicyRef=policy), check=False)
    assert refused.returncode != 0 and "needs spec.redis.enabled and spec.vault.enabled" in refused.stderr
    _delete_policy(policy)
    try:
        kubectl("apply", "-f", "-", input=tenant_yaml(name, sessionPolicyRef=policy, lifecyclePolicyRef=policy,
                                                      **SERVICES))
        ready = eventually(lambda: condition(get("tenant", name), "Ready").get("reason") == "PolicyNotFound"
                           and condition(get("tenant", name), "Ready"), 60, message="Ready=False PolicyNotFound")
        assert ready["status"] == "False" and policy in ready["message"]
        assert get("configmap", "tenant-session-keys", f"tenant-{name}") is None

        _policy(policy, maxConcurrent=3)
        _ready(name)
        assert json.loads(_configmap(name)["data"]["policy.json"])["maxConcurrent"] == 3
        _policy(policy, maxConcurrent=5)
        eventually(lambda: json.loads(_configmap(name)["data"]["policy.json"])["maxConcurrent"] == 5, 30,
                   message="the policy change reached the tenant")
        # A policy's change is applied, not drift: a Normal PolicyApplied Event, no DriftRepaired/RepeatedRepair.
        eventually(lambda: "PolicyApplied" in _event_reasons(name), 15, message="a PolicyApplied Event")
        assert not {"DriftRepaired", "RepeatedRepair"} & _event_reasons(name), _event_reasons(name)
        assert condition(get("tenantsessionpolicy", policy), "Ready")["status"] == "True"
    finally:
        _cleanup([name], [policy])
