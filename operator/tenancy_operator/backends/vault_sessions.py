"""A tenant's session-signing key in OpenBao transit: rotation, retirement and its public JWK Set.

The key (`transit-sessions/keys/tenant-<name>`, type ed25519 or ecdsa-p256) gets a new version when
its newest one is `rotate_every` old. A version is *live* while it is the newest or its successor is
younger than `overlap`; the JWK Set lists the live versions only, so tokens a retired version signed
stop validating offline. Once a version retires, `min_decryption_version` (and `min_encryption_version`,
which trimming needs) rise to the oldest live version and older versions are trimmed from storage.
Each step reads first: a pass with nothing due writes nothing.

Key IDs are `v<version>`; clients sign with the newest version their JWK Set lists, so every client
holding the same or a newer set can validate the token.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hvac import exceptions as hvac_errors
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from ..api.session_policy import JWS_ALGORITHMS

__all__ = ["KeyVersion", "live_versions", "rotation_due", "jwk", "jwks", "SessionKeyState", "KeyTypeChanged"]


class KeyTypeChanged(ValueError):
    """The transit key exists with another type than the policy asks (a transit key keeps its type)."""


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created: float
    """Unix seconds."""
    public_key: str
    """As transit gives it: base64 of the raw key (ed25519) or PEM (ecdsa)."""


@dataclass
class SessionKeyState:
    """What one pass found and did: the writes (empty at steady state) and the JWK Set to publish."""

    repaired: list[str] = field(default_factory=list)
    """Writes that put the key back (made it): provisioning or drift."""
    rotated: list[str] = field(default_factory=list)
    """Writes the schedule asked for (rotate, retire, trim): not drift."""
    jwks: dict[str, Any] = field(default_factory=dict)


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (transit's `creation_time`) as Unix seconds."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def versions_of(data: dict[str, Any]) -> list[KeyVersion]:
    """The versions in a transit key read (`data` of `GET <mount>/keys/<name>`), oldest first."""
    out = []
    for number, entry in (data.get("keys") or {}).items():
        if isinstance(entry, dict):
            out.append(KeyVersion(int(number), parse_time(str(entry.get("creation_time") or "1970-01-01T00:00:00Z")),
                                  str(entry.get("public_key") or "")))
    return sorted(out, key=lambda v: v.version)


def rotation_due(versions: list[KeyVersion], rotate_every: float, now: float) -> bool:
    return bool(versions) and versions[-1].created + rotate_every <= now


def live_versions(versions: list[KeyVersion], overlap: float, now: float) -> list[KeyVersion]:
    """The newest version, and each older one whose successor is younger than `overlap`."""
    live = []
    for i, version in enumerate(versions):
        successor = versions[i + 1] if i + 1 < len(versions) else None
        if successor is None or successor.created + overlap > now:
            live.append(version)
    return live


def jwk(version: KeyVersion, algorithm: str) -> dict[str, Any]:
    """One public JWK (RFC 7517; OKP per RFC 8037, EC per RFC 7518) with kid `v<version>`."""
    if algorithm == "ed25519":
        key: Any = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(version.public_key))
        body = OKPAlgorithm.to_jwk(key, as_dict=True)
    elif algorithm == "ecdsa-p256":
        key = load_pem_public_key(version.public_key.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ValueError(f"key version {version.version} is not an ECDSA P-256 public key")
        body = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        raise ValueError(f"unsupported session signing algorithm {algorithm!r}")
    return {**body, "kid": f"v{version.version}", "alg": JWS_ALGORITHMS[algorithm], "use": "sig"}


def jwks(versions: list[KeyVersion], algorithm: str) -> dict[str, Any]:
    """The JWK Set of `versions`, newest first."""
    return {"keys": [jwk(v, algorithm) for v in reversed(versions)]}


def ensure(client: Any, mount: str, name: str, algorithm: str, rotate_every: float, overlap: float,
           now: float) -> SessionKeyState:
    """Create, rotate, retire and trim the key as due; return the writes and the live JWK Set.

    `client` is an hvac.Client. Raises KeyTypeChanged when the key has another type.
    """
    state = SessionKeyState()
    path = f"{mount}/keys/{name}"
    data = _read(client, path)
    if data is None:
        client.write(path, type=algorithm)
        state.repaired.append(f"signing key {path}")
        data = _read(client, path) or {}
    if data.get("type") != algorithm:
        raise KeyTypeChanged(f"session key {path} is {data.get('type')}, the TenantSessionPolicy asks for {algorithm}; "
                             "a transit key keeps its type: set signingAlgorithm back, or delete the key (every "
                             "session token of the tenant stops validating) and let the operator make a new one")
    versions = versions_of(data)
    if rotation_due(versions, rotate_every, now):
        client.write(f"{path}/rotate")
        state.rotated.append(f"signing key {path} rotated")
        data = _read(client, path) or {}
        versions = versions_of(data)
    live = live_versions(versions, overlap, now)
    oldest = live[0].version if live else 1
    if oldest > 1 and (int(data.get("min_decryption_version") or 1) < oldest
                       or int(data.get("min_encryption_version") or 0) < oldest):
        client.write(f"{path}/config", min_decryption_version=oldest, min_encryption_version=oldest)
        state.rotated.append(f"signing key {path} versions below {oldest} retired")
    if int(data.get("min_available_version") or 0) < oldest and oldest > 1:
        client.write(f"{path}/trim", min_available_version=oldest)
        state.rotated.append(f"signing key {path} trimmed below {oldest}")
    state.jwks = jwks(live, algorithm)
    return state


def _read(client: Any, path: str) -> dict[str, Any] | None:
    try:
        return (client.read(path) or {}).get("data")
    except hvac_errors.InvalidPath:
        return None
