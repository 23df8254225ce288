"""Backend names derived from a tenant name, each fitted to its backend's rules and length limit.

A tenant name is a DNS-1123 label (at most 63 characters). Backends differ: PostgreSQL identifiers
stop at 63 bytes and dislike '-', namespaces stop at 63, OpenBao names are free. A name too long for
its backend is cut and given a short hash of the full name, so two long names that share a prefix
still map to different identifiers. Quoting is not done here; each backend quotes with its own rules.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fit", "namespace", "pg_database", "pg_owner_role", "pg_login_role", "redis_user", "redis_prefix",
           "vault_key", "vault_policy", "vault_kv_path", "mongo_database", "search_prefix", "is_tenant_name"]

_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HASH_LEN = 8


def is_tenant_name(name: str) -> bool:
    return bool(_TENANT_NAME.match(name))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]


def fit(prefix: str, base: str, suffix: str, limit: int, sep: str = "-") -> str:
    """`prefix + base + suffix`, with base cut and hashed when the whole would pass `limit`."""
    whole = f"{prefix}{base}{suffix}"
    if len(whole) <= limit:
        return whole
    room = limit - len(prefix) - len(suffix) - len(sep) - HASH_LEN
    cut = base[:room].rstrip("-_")
    return f"{prefix}{cut}{sep}{_hash(base)}{suffix}"


def _require(name: str) -> str:
    if not is_tenant_name(name):
        raise ValueError(f"not a DNS-1123 label: {name!r}")
    return name


def namespace(tenant: str) -> str:
    return fit("tenant-", _require(tenant), "", 63)


def _pg_base(tenant: str) -> str:
    return _require(tenant).replace("-", "_")


def pg_database(tenant: str) -> str:
    # Every role shares the same fitted stem so the owner and logins read as one family.
    return fit("t_", _pg_base(tenant), "", 63 - len("_owner"), sep="_")


def pg_owner_role(tenant: str) -> str:
    return pg_database(tenant) + "_owner"


def pg_login_role(tenant: str, slot: str) -> str:
    if slot not in ("a", "b"):
        raise ValueError(f"login slot must be 'a' or 'b', not {slot!r}")
    return f"{pg_database(tenant)}_{slot}"


def mongo_database(tenant: str) -> str:
    return fit("t_", _pg_base(tenant), "", 63, sep="_")


def redis_user(tenant: str) -> str:
    return f"tenant:{_require(tenant)}"


def redis_prefix(tenant: str) -> str:
    return f"t:{_require(tenant)}:"


def vault_key(tenant: str) -> str:
    return f"tenant-{_require(tenant)}"


def vault_policy(tenant: str) -> str:
    return f"tenant-{_require(tenant)}"


def vault_kv_path(tenant: str) -> str:
    return f"tenants/{_require(tenant)}"


def search_prefix(tenant: str) -> str:
    return f"t-{_require(tenant)}-"
