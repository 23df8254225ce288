"""Where a tenant application finds its slice: the mounted Secret and ConfigMaps, or the environment.

Sources, in order (the first that has a key wins):
1. `credentials_dir`: the `tenant-credentials` Secret mounted as a folder (one file per key);
2. the process environment (`envFrom: secretRef: tenant-credentials`).
The ConfigMaps are read from folders only (`cache_dir`: `tenant-cache`, `session_dir`:
`tenant-session-keys`); each holds one JSON document under the key named below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TenantConfig", "load", "CACHE_CONFIGMAP", "CACHE_KEY", "SESSION_CONFIGMAP", "JWKS_KEY",
           "SESSION_POLICY_KEY", "DEFAULT_CREDENTIALS_DIR", "DEFAULT_CACHE_DIR", "DEFAULT_SESSION_DIR"]

CACHE_CONFIGMAP = "tenant-cache"
CACHE_KEY = "cache.json"
"""The effective CachePolicy settings (JSON object) in ConfigMap `tenant-cache`."""
SESSION_CONFIGMAP = "tenant-session-keys"
JWKS_KEY = "jwks.json"
"""The public signing keys as a JWK Set (RFC 7517) in ConfigMap `tenant-session-keys`."""
SESSION_POLICY_KEY = "policy.json"
"""The effective TenantSessionPolicy settings (JSON object) in ConfigMap `tenant-session-keys`."""

DEFAULT_CREDENTIALS_DIR = "/var/run/tenancy/credentials"
DEFAULT_CACHE_DIR = "/var/run/tenancy/cache"
DEFAULT_SESSION_DIR = "/var/run/tenancy/session-keys"


@dataclass(frozen=True)
class TenantConfig:
    """One tenant's view of its slice.

    `credentials`: the Secret's keys (`REDIS_URL`, `REDIS_KEY_PREFIX`, `VAULT_ADDR`, `VAULT_ROLE`, ...);
    `cache`: the parsed `cache.json` ({} when absent); `session_policy` and `jwks`: the parsed
    `policy.json` and `jwks.json` of `tenant-session-keys` ({} when absent); `session_dir`: the folder
    they were read from (None: not from a folder), which `Sessions` reads again after a key rotation.
    """

    credentials: Mapping[str, str] = field(default_factory=dict)
    cache: Mapping[str, Any] = field(default_factory=dict)
    session_policy: Mapping[str, Any] = field(default_factory=dict)
    jwks: Mapping[str, Any] = field(default_factory=dict)
    session_dir: str | None = None

    def require(self, key: str) -> str:
        """A credentials key's value; `KeyError` naming the key when the Secret lacks it."""
        try:
            return self.credentials[key]
        except KeyError:
            raise KeyError(f"{key} is not in tenant-credentials (is the service enabled on the Tenant?)") from None

    @property
    def tenant(self) -> str:
        """The tenant's name, from the Redis key prefix `t:<name>:`."""
        prefix = self.require("REDIS_KEY_PREFIX")
        return prefix.split(":")[1]


def _read_folder(folder: str | os.PathLike[str] | None) -> dict[str, str]:
    if folder is None or not Path(folder).is_dir():
        return {}
    return {p.name: p.read_text() for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("..")}


def _json(folder: str | os.PathLike[str] | None, key: str) -> dict[str, Any]:
    text = _read_folder(folder).get(key)
    return json.loads(text) if text else {}


def load(credentials_dir: str | os.PathLike[str] | None = DEFAULT_CREDENTIALS_DIR,
         cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR,
         session_dir: str | os.PathLike[str] | None = DEFAULT_SESSION_DIR,
         env: Mapping[str, str] | None = None) -> TenantConfig:
    """Read the slice's configuration; missing folders read as empty (raises `json.JSONDecodeError` on bad JSON)."""
    env = os.environ if env is None else env
    credentials = dict(env) | _read_folder(credentials_dir)
    return TenantConfig(credentials=credentials, cache=_json(cache_dir, CACHE_KEY),
                        session_policy=_json(session_dir, SESSION_POLICY_KEY), jwks=_json(session_dir, JWKS_KEY),
                        session_dir=None if session_dir is None else os.fspath(session_dir))
