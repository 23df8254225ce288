"""tenancy_client.sessions without servers: the JWS it builds around a signer validates offline, and
every kind of bad token is refused (the servers' part is e2e/test_sessions.py)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm
from tenancy_client.config import TenantConfig
from tenancy_client.sessions import InvalidToken, Sessions
from tenancy_client.vault import _raw


class _LocalSigner:
    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()

    def sign(self, message: bytes, version: int) -> bytes:
        return self.key.sign(message)

    def jwks(self, kid: str = "v1") -> dict:
        return {"keys": [{**OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": kid, "alg": "EdDSA"}]}


def _sessions(tenant: str, signer: _LocalSigner) -> Sessions:
    policy = {"tenant": tenant, "lifetimeSeconds": 60, "idleTimeoutSeconds": 30, "maxConcurrent": 2,
              "jwsAlgorithm": "EdDSA", "transitMount": "transit-sessions", "keyName": f"tenant-{tenant}"}
    creds = {"REDIS_KEY_PREFIX": f"t:{tenant}:", "REDIS_URL": "redis://127.0.0.1:1/0", "VAULT_ADDR": "http://127.0.0.1:1",
             "VAULT_ROLE": f"tenant-{tenant}"}
    return Sessions(TenantConfig(credentials=creds, session_policy=policy, jwks=signer.jwks()), service_account_token="x")


def test_tokens_validate_offline_and_bad_ones_are_refused():
    signer, other = _LocalSigner(), _LocalSigner()
    a, b = _sessions("a", signer), _sessions("b", other)
    claims = a._claims("alice", time.time())
    token = a._encode(claims, signer)
    assert a.verify(token).user == "alice" and a.verify(token).kid == "v1"
    with pytest.raises(InvalidToken):
        b.verify(token)  # same kid, another tenant's key
    head, payload, sig = token.split(".")
    with pytest.raises(InvalidToken):
        a.verify(f"{head}.{payload}.{sig[:-4]}AAAA")
    expired = a._encode({**claims, "exp": int(time.time()) - 1}, signer)
    with pytest.raises(InvalidToken, match="expired"):
        a.verify(expired)
    a.update_keys(signer.jwks("v2"))  # v1 retired: its tokens are checked again and refused
    with pytest.raises(InvalidToken, match="v1"):
        a.verify(token)


def test_transit_signature_forms_decode():
    assert _raw("vault:v3:AAEC") == b"\x00\x01\x02"  # base64url (jws marshaling)
    assert _raw("vault:v1:+/8=") == b"\xfb\xff"  # standard base64 (ed25519)


def test_a_mounted_jwks_is_read_again_after_a_rotation_without_update_keys(tmp_path, monkeypatch):
    """An app that mounts ConfigMap tenant-session-keys and never calls update_keys: after a rotation it
    validates the new version's tokens, signs with the new version, and drops a retired one."""
    import json

    from tenancy_client import load
    from tenancy_client import sessions as module

    old, new = _LocalSigner(), _LocalSigner()
    folder = tmp_path / "session-keys"
    folder.mkdir()
    policy = {"tenant": "a", "lifetimeSeconds": 60, "idleTimeoutSeconds": 30, "maxConcurrent": 2,
              "jwsAlgorithm": "EdDSA", "transitMount": "transit-sessions", "keyName": "tenant-a"}
    (folder / "policy.json").write_text(json.dumps(policy))
    (folder / "jwks.json").write_text(json.dumps(old.jwks("v1")))
    creds = {"REDIS_KEY_PREFIX": "t:a:", "REDIS_URL": "redis://127.0.0.1:1/0", "VAULT_ADDR": "http://127.0.0.1:1",
             "VAULT_ROLE": "tenant-a"}
    running = Sessions(load(None, None, folder, env=creds), service_account_token="x")
    before = running._encode(running._claims("ada", time.time()), old)
    assert running.verify(before).kid == "v1"

    # The operator rotates: the kubelet swaps the mounted file to v2 beside v1.
    (folder / "jwks.json").write_text(json.dumps({"keys": new.jwks("v2")["keys"] + old.jwks("v1")["keys"]}))
    started_later = Sessions(load(None, None, folder, env=creds), service_account_token="x")
    after = started_later._encode(started_later._claims("bob", time.time()), new)
    assert running.verify(after).kid == "v2"  # an unknown kid reads the folder again at once
    assert running._kid == "v2"  # and new tokens are signed with the newest version
    assert running.verify(before).kid == "v1"  # during the overlap

    # After the overlap v1 leaves the file: the running process refuses its tokens within KEYS_RECHECK.
    (folder / "jwks.json").write_text(json.dumps(new.jwks("v2")))
    monkeypatch.setattr(module, "KEYS_RECHECK", 0.0)
    with pytest.raises(InvalidToken, match="v1"):
        running.verify(before)
