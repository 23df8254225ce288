"""Backend names derived from a tenant name: injective by construction, never cut, never hashed.

A tenant name is a DNS-1123 label of at most `MAX_TENANT_NAME` (55) characters, which the Tenant CRD
enforces at apply (CEL on metadata.name). That is the longest name every backend's identifier rules
hold whole: `t_<name>_owner` is 63 bytes, PostgreSQL's limit, and `tenant-<name>` fits a namespace.
So every identifier below is a fixed prefix, the name (with '-' as '_' for PostgreSQL and MongoDB;
'_' never occurs in a tenant name, so that swap loses nothing), and a fixed suffix: two names give
two identifiers on every backend. Where a backend matches by prefix (Redis keys, index patterns,
KV paths) the name is followed by a character tenant names cannot hold (':', '_', '/'), so one
tenant's prefix never covers another's (`t-a-*` would cover tenant `a-b`'s indices).

(An earlier version cut long names and appended a hash; a second tenant could then be *named* the
cut-plus-hash form and receive the first one's database. Those forms are now refused as too long or
simply distinct; objects they made carry no ownership mark and are treated as described in
docs/how-it-works.md.)

Every function raises ValueError for anything that is not such a name. Quoting is not done here; each
backend quotes with its own rules.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TENANT_NAME", "check", "namespace", "pg_database", "pg_owner_role", "pg_login_role", "pg_load_role", "redis_user",
           "redis_prefix", "redis_owner_key", "vault_key", "is_vault_key_of", "vault_key_record", "vault_session_key", "vault_policy", "vault_kv_path",
           "vault_owner_record", "mongo_database", "mongo_owner_role", "mongo_dump_role", "mongo_login_role", "search_prefix", "is_tenant_name", "owner_mark", "parse_owner_mark"]

MAX_TENANT_NAME = 55
"""len("t_") + 55 + len("_owner") == 63, PostgreSQL's identifier limit (NAMEDATALEN - 1)."""
_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
OWNER_MARK_PREFIX = "tenancy.dev/tenant-uid="
_UID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def is_tenant_name(name: str) -> bool:
    return len(name) <= MAX_TENANT_NAME and bool(_TENANT_NAME.fullmatch(name))


def check(name: str) -> str:
    """The name itself, or ValueError saying why it cannot name a tenant."""
    if not isinstance(name, str) or not _TENANT_NAME.fullmatch(name):
        raise ValueError(f"tenant name {name!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit)")
    if len(name) > MAX_TENANT_NAME:
        raise ValueError(f"tenant name {name!r} has {len(name)} characters; at most {MAX_TENANT_NAME} fit every "
                         f"backend's identifiers whole (t_<name>_owner in PostgreSQL's 63 bytes)")
    return name


def namespace(tenant: str) -> str:
    return f"tenant-{check(tenant)}"


def _pg_base(tenant: str) -> str:
    return check(tenant).replace("-", "_")


def pg_database(tenant: str) -> str:
    return f"t_{_pg_base(tenant)}"


def pg_owner_role(tenant: str) -> str:
    return pg_database(tenant) + "_owner"


def pg_login_role(tenant: str, slot: str) -> str:
    if slot not in ("a", "b"):
        raise ValueError(f"login slot must be 'a' or 'b', not {slot!r}")
    return f"{pg_database(tenant)}_{slot}"


def pg_load_role(tenant: str) -> str:
    """The short-lived LOGIN role a dump is loaded as (a member of the owner role, nothing of its own);
    `_load` ends in a letter no other suffix ends in, so it meets no other tenant's role."""
    return f"{pg_database(tenant)}_load"


def mongo_database(tenant: str) -> str:
    return f"t_{_pg_base(tenant)}"


def mongo_owner_role(tenant: str) -> str:
    """FerretDB (PostgreSQL handler): the NOLOGIN role owning the schema that is the tenant's MongoDB
    database. Prefix `m_`, not `t_`: on a PostgreSQL server shared with the postgres Backend the role
    namespace is shared too, and `t_<name>_owner` is already that tenant's PostgreSQL owner."""
    return f"m_{_pg_base(tenant)}_owner"


def mongo_dump_role(tenant: str) -> str:
    """FerretDB: the short-lived LOGIN role an archive reads the tenant's collections as (a member of the
    owner role, nothing of its own); `_dump` ends in a letter no other suffix ends in."""
    return f"m_{_pg_base(tenant)}_dump"


def mongo_login_role(tenant: str, slot: str) -> str:
    """FerretDB: the MongoDB user, which FerretDB logs in to PostgreSQL as (two slots, as for PostgreSQL)."""
    if slot not in ("a", "b"):
        raise ValueError(f"login slot must be 'a' or 'b', not {slot!r}")
    return f"m_{_pg_base(tenant)}_{slot}"


def redis_user(tenant: str) -> str:
    return f"tenant:{check(tenant)}"


def redis_prefix(tenant: str) -> str:
    return f"t:{check(tenant)}:"


def redis_owner_key(tenant: str) -> str:
    """Where the owning Tenant's UID is kept: outside every tenant's `t:<name>:` key fence."""
    return f"tenancy:owner:{check(tenant)}"


def vault_key(tenant: str) -> str:
    """Transit key in the shared `transit/` mount."""
    return f"tenant-{check(tenant)}"


def is_vault_key_of(key: str, tenant: str) -> bool:
    """Is `key` the transit key tenant `<name>` can own, `tenant-<name>`? (False for a name that is no
    tenant name.)"""
    return is_tenant_name(tenant) and key == vault_key(tenant)


def vault_key_record(key: str) -> str:
    """KV v2 entry (in the `tenants` mount) whose custom_metadata names the Tenant UID owning transit key
    `key`: under `_transit-keys/`, which no tenant's folder or record can be ('_' is in no tenant name)."""
    return f"_transit-keys/{key}"


def vault_session_key(tenant: str) -> str:
    """Session-signing key, in its own `transit-sessions/` mount: `tenant-<name>-session` in the shared
    mount would equal the transit key of tenant `<name>-session`."""
    return f"tenant-{check(tenant)}"


def vault_policy(tenant: str) -> str:
    return f"tenant-{check(tenant)}"


def vault_kv_path(tenant: str) -> str:
    """KV v2 folder `tenants/tenant-<name>`: named as the tenant's namespace, because the fixed policy
    `tenancy-tenant-kv` finds it from the login's ServiceAccount namespace (before: `tenants/<name>`)."""
    return f"tenants/{namespace(tenant)}"


def vault_owner_record(tenant: str) -> str:
    """KV v2 entry (in the `tenants` mount) whose custom_metadata holds the owner's UID: the name
    itself, beside the tenants' `tenant-<name>/` folders; a tenant's policy reaches only below its
    folder's `/` (`tenant-<name>/*`), so no record, not even tenant `tenant-<x>`'s own, is in reach."""
    return check(tenant)


def search_prefix(tenant: str) -> str:
    return f"t-{check(tenant)}_"


def owner_mark(uid: str) -> str:
    """The text that marks a backend object as the Tenant `uid`'s (PostgreSQL COMMENT, Redis value)."""
    if not _UID.fullmatch(uid or ""):
        raise ValueError(f"not a Kubernetes UID: {uid!r}")
    return OWNER_MARK_PREFIX + uid


def parse_owner_mark(text: str | None) -> str | None:
    """The UID in a mark, None for no mark at all; anything else written there is returned whole, so
    a mark we cannot read is never mistaken for ours or for none."""
    if text is None or text == "":
        return None
    if text.startswith(OWNER_MARK_PREFIX):
        return text[len(OWNER_MARK_PREFIX):]
    return text
