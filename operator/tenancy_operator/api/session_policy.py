"""The `TenantSessionPolicy` kind: session lifetime, idle timeout, concurrency and signing keys.

A Tenant names one with `spec.sessionPolicyRef`. The operator then keeps a signing key `tenant-<name>`
in OpenBao's `transit-sessions/` mount of `signingAlgorithm`, gives it a new version every
`keyRotation`, and publishes the public keys of the versions still in use as a JWK Set (RFC 7517)
with these settings in ConfigMap `tenant-session-keys` of the tenant namespace, which
`tenancy_client.sessions` reads. A version stops being published (and OpenBao's
`min_decryption_version` rises past it, the key is trimmed) `overlap` after its successor was made:
tokens it signed stop validating then.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Duration, Spec, cel

__all__ = ["TenantSessionPolicySpec", "ROOT_RULES", "JWS_ALGORITHMS"]

JWS_ALGORITHMS = {"ed25519": "EdDSA", "ecdsa-p256": "ES256"}
"""OpenBao transit key type -> JWS `alg` (RFC 8037, RFC 7518) of the tokens it signs."""


class TenantSessionPolicySpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "duration(self.idleTimeout) <= duration(self.lifetime)",
                    "idleTimeout must not exceed lifetime",
                ),
                cel(
                    "duration(self.idleTimeout) >= duration('1s')",
                    "idleTimeout must be at least 1s: a session record that expires at once ends every session "
                    "as it is created",
                ),
                cel(
                    "!has(self.keyRotation) || duration(self.keyRotation) >= duration('10s')",
                    "keyRotation must be at least 10s: each rotation adds a key version to every tenant's JWK Set",
                ),
                cel(
                    "duration(self.overlap).getSeconds() <= 100 * duration(self.keyRotation).getSeconds()",
                    "overlap must not exceed 100 x keyRotation: every version made within the overlap stays in the "
                    "JWK Set (ConfigMap tenant-session-keys holds 1 MiB, about 6,000 keys)",
                ),
            ]
        }
    }

    lifetime: Duration = "12h"
    """Longest a session lives: the token's `exp` and the longest its record stays in Redis."""
    idle_timeout: Duration = "30m"
    """A session not touched for this long ends (its Redis record expires; `touch` extends it)."""
    max_concurrent: int = Field(10, ge=1, le=100000)
    """Sessions one user may hold at once; creating one more ends that user's oldest session."""
    signing_algorithm: Literal["ed25519", "ecdsa-p256"] = "ed25519"
    """The OpenBao transit key type of the tenant's session key: `ed25519` signs JWS `EdDSA`, `ecdsa-p256`
    signs `ES256`. Changing it on a policy in use makes its tenants Stalled (a transit key keeps its type)."""
    key_rotation: Duration = "720h"
    """How often the signing key gets a new version (the operator rotates it on its verify pass when the
    newest version is this old, so the period is rounded up to the next pass)."""
    overlap: Duration = "24h"
    """How long a replaced key version stays published after its successor is made: tokens it signed keep
    validating this long. Set it at least to `lifetime`, or tokens made just before a rotation end early."""


ROOT_RULES: list[dict[str, str]] = []
