"""The session key's pure decisions: rotation, which versions stay live, and the JWK Set OpenBao's keys give."""

from __future__ import annotations

import base64

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tenancy_operator.backends import vault_sessions as vs


def _v(n: int, created: float, public: str = "") -> vs.KeyVersion:
    return vs.KeyVersion(n, created, public)


def test_transit_creation_time_with_nanoseconds_parses():
    assert vs.parse_time("2026-12-03T14:59:22.171724837Z") == vs.parse_time("2026-12-03T14:59:22.171724Z")
    assert vs.parse_time("2026-12-03T14:59:22Z") == 1796309962.0


def test_rotation_due_when_the_newest_version_is_old_enough():
    versions = [_v(1, 0), _v(2, 100)]
    assert not vs.rotation_due(versions, 60, 159)
    assert vs.rotation_due(versions, 60, 160)
    assert not vs.rotation_due([], 60, 1000)


def test_live_versions_end_overlap_after_their_successor():
    versions = [_v(1, 0), _v(2, 100), _v(3, 200)]
    assert [v.version for v in vs.live_versions(versions, 50, 210)] == [2, 3]  # v1's successor is 110 s old
    assert [v.version for v in vs.live_versions(versions, 150, 210)] == [1, 2, 3]
    assert [v.version for v in vs.live_versions(versions, 5, 210)] == [3]  # the newest always stays


def _sign_and_check(algorithm: str, private, public_text: str, jws_alg: str) -> None:
    key_set = vs.jwks([_v(7, 0, public_text)], algorithm)
    assert [k["kid"] for k in key_set["keys"]] == ["v7"] and key_set["keys"][0]["alg"] == jws_alg
    headers, payload = {"kid": "v7", "alg": jws_alg}, {"sub": "u"}
    token = jwt.encode(payload, private, algorithm=jws_alg, headers=headers)
    found = jwt.PyJWKSet.from_dict(key_set)["v7"]
    assert jwt.decode(token, found.key, algorithms=[jws_alg]) == payload


def test_jwks_of_each_algorithm_verifies_a_transit_style_signature():
    # Transit gives ed25519 public keys as base64 of the raw bytes, ECDSA ones as PEM.
    ed = ed25519.Ed25519PrivateKey.generate()
    raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    _sign_and_check("ed25519", ed, base64.b64encode(raw).decode(), "EdDSA")
    p256 = ec.generate_private_key(ec.SECP256R1())
    pem = p256.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _sign_and_check("ecdsa-p256", p256, pem.decode(), "ES256")
    assert decode_dss_signature  # (ES256 is r||s in JWS; PyJWT converts, transit's marshaling_algorithm=jws too)


class _FakeTransit:
    """Only for the write-counting check below: answers reads like transit, records writes."""

    def __init__(self, data):
        self.data, self.writes = data, []

    def read(self, path):
        return {"data": self.data}

    def write(self, path, **body):
        self.writes.append((path, body))


def test_steady_state_writes_nothing():
    public = base64.b64encode(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    data = {"type": "ed25519", "min_decryption_version": 1, "min_encryption_version": 0, "min_available_version": 0,
            "keys": {"1": {"creation_time": "2026-12-03T14:00:00Z", "public_key": public}}}
    client = _FakeTransit(data)
    state = vs.ensure(client, "transit-sessions", "tenant-a", "ed25519", 3600, 60, vs.parse_time("2026-12-03T14:30:00Z"))
    assert client.writes == [] and state.repaired == [] and [k["kid"] for k in state.jwks["keys"]] == ["v1"]
