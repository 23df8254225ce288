"""The `TenantSessionPolicy` kind: session lifetime, idle timeout, concurrency and signing keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Duration, Spec, cel

__all__ = ["TenantSessionPolicySpec", "ROOT_RULES"]


class TenantSessionPolicySpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "duration(self.idleTimeout) <= duration(self.lifetime)",
                    "idleTimeout must not exceed lifetime",
                )
            ]
        }
    }

    lifetime: Duration = "12h"
    """Longest a session lives."""
    idle_timeout: Duration = "30m"
    """A session idle this long ends."""
    max_concurrent: int = Field(10, ge=1, le=100000)
    """Sessions one user may hold at once."""
    signing_algorithm: Literal["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-4096"] = "ed25519"
    """Maps to the OpenBao transit key type of `tenant-<name>-session`."""
    key_rotation: Duration = "720h"
    """How often the signing key gets a new version (maps to the transit key's `auto_rotate_period`)."""


ROOT_RULES: list[dict[str, str]] = []
