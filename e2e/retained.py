"""Dropping data retained from deleted tenants of earlier e2e runs, as an administrator would.

Tests use fixed tenant names and most delete with the default reclaim (Retain). Retained data keeps
its Tenant's UID mark, so on a long-lived platform the next run's Tenant of the same name would go
Stalled (OwnedByAnotherTenant), exactly as the operator promises. At session start, while the e2e
lock is held and no Tenant of that name exists, we remove such leftovers through the adapters' own
`delete` (which checks the same mark), and only for UIDs no live Tenant has. Transit keys kept for
the archives of such tenants are dropped with their owner records too, as the retention purge would:
a kept key holds its name (the next Tenant of it is Stalled NameHeldByArchives until then).
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import urlparse

import hvac.exceptions
from tenancy_operator.api import names
from tenancy_operator.backends import mongodb, postgres, redis_acl, search, vault
from tenancy_operator.backends.base import Target

from .admin import pg_admin, redis_admin, vault_admin
from .kube import STATE, kubectl


def _search_target() -> Target | None:
    env_file = STATE / "opensearch.env"
    if not env_file.exists():
        return None
    env = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return Target("search-main", "search", "127.0.0.1", urlparse(env["SEARCH_URL"]).port or 0,
                  env["SEARCH_ADMIN_USERNAME"], env["SEARCH_ADMIN_PASSWORD"], tls=True,
                  extra={"ca.crt": open(env["SEARCH_CA_FILE"]).read()})


async def _search_marked(target: Target) -> set[tuple[str, str, str]]:
    """OpenSearch roles `tenant-<name>` and the UID in their description (the mark `delete` checks)."""
    roles = await search._call(target, "GET", f"{search.SECURITY}/roles/") or {}
    found = set()
    for role, body in roles.items():
        description = str((body or {}).get("description") or "")
        if role.startswith("tenant-") and description.startswith(names.OWNER_MARK_PREFIX):
            found.add(("search", role[len("tenant-"):], names.parse_owner_mark(description) or ""))
    return found


def _targets() -> dict[str, Target]:
    r, v = urlparse(os.environ["REDIS_URL"]), urlparse(os.environ["VAULT_ADDR"])
    return {
        "postgres": Target("pg-main", "postgres", "127.0.0.1", int(os.environ["PGPORT"]), os.environ["PGUSER"],
                           os.environ["PGPASSWORD"]),
        "redis": Target("redis-main", "redis", "127.0.0.1", r.port, r.username or "default", r.password or ""),
        "vault": Target("vault-main", "vault", "127.0.0.1", v.port, token=os.environ["VAULT_TOKEN"]),
        "mongodb": _mongo_target(),
    }


def _mongo_target() -> Target:
    from .backends_fixtures import ferretdb_admin

    admin = ferretdb_admin()
    return Target("mongo-main", "mongodb", "127.0.0.1", int(admin["port"]), admin["username"], admin["password"],
                  extra={k: admin[k] for k in ("postgresHost", "postgresPort", "postgresDatabase")})


def _marked() -> set[tuple[str, str, str]]:
    """(service, tenant name, uid) of every marked slice on the platform's servers."""
    found: set[tuple[str, str, str]] = set()
    for row in pg_admin("SELECT rolname AS n, shobj_description(oid, 'pg_authid') AS m FROM pg_roles "
                        "WHERE rolname LIKE 't\\_%\\_owner'"):
        uid = names.parse_owner_mark(row["m"])
        if uid:
            found.add(("postgres", row["n"][2:-len("_owner")].replace("_", "-"), uid))
    for row in pg_admin("SELECT datname AS n, shobj_description(oid, 'pg_database') AS m FROM pg_database "
                        "WHERE datname LIKE 't\\_%'"):
        uid = names.parse_owner_mark(row["m"])
        if uid:
            found.add(("postgres", row["n"][2:].replace("_", "-"), uid))
    for row in pg_admin("SELECT rolname AS n, shobj_description(oid, 'pg_authid') AS m FROM pg_roles "
                        "WHERE rolname LIKE 'm\\_%\\_owner'"):
        uid = names.parse_owner_mark(row["m"])
        if uid:
            found.add(("mongodb", row["n"][2:-len("_owner")].replace("_", "-"), uid))
    r = redis_admin()
    for key in r.scan_iter("tenancy:owner:*"):
        uid = names.parse_owner_mark(r.get(key))
        if uid:
            found.add(("redis", key[len("tenancy:owner:"):], uid))
    try:
        entries = vault_admin().list("tenants/metadata/") or {}
    except hvac.exceptions.InvalidPath:
        entries = {}
    for entry in (entries.get("data") or {}).get("keys", []):
        if not entry.endswith("/"):
            meta = (vault_admin().read(f"tenants/metadata/{entry}") or {}).get("data") or {}
            uid = (meta.get("custom_metadata") or {}).get(vault.OWNER_FIELD)
            if uid:
                found.add(("vault", entry, uid))
    target = _search_target()
    if target is not None:
        found |= asyncio.run(_search_marked(target))
        search.forget_cache()
    return found


def purge_retained_data_of_deleted_tenants() -> list[str]:
    """Delete every marked slice whose UID no live Tenant has; returns what was removed."""
    tenants = json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]
    live = {t["metadata"]["uid"] for t in tenants} | {t["metadata"]["name"] for t in tenants}
    orphans = sorted((s, n, u) for s, n, u in _marked() if u not in live and n not in live and names.is_tenant_name(n))
    adapters = {"postgres": postgres, "redis": redis_acl, "vault": vault, "search": search, "mongodb": mongodb}
    targets = _targets()
    if (target := _search_target()) is not None:
        targets["search"] = target

    async def go() -> list[str]:
        done: list[str] = []
        try:
            for service, name, uid in orphans:
                done += [f"{service}: {d}" for d in await adapters[service].delete(targets[service], name, uid)]
        finally:
            await postgres.close_all()
            search.forget_cache()
        return done

    done = asyncio.run(go()) if orphans else []
    return done + _drop_kept_keys(live)


def drop_kept_key(tenant: str) -> list[str]:
    """The transit key kept for the archives of a deleted Tenant `tenant` (none of that name lives), with its record."""
    tenants = json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]
    live = {t["metadata"]["uid"] for t in tenants} | {t["metadata"]["name"] for t in tenants}
    return _drop_kept_keys(live, [names.vault_key(tenant)])


def _drop_kept_keys(live: set[str], keys: list[str] | None = None) -> list[str]:
    """Transit keys kept for archives of tenants that no longer live, with their owner records."""
    admin = vault_admin()
    if keys is not None:
        return [d for key in keys for d in _drop(admin, key, live)]
    try:
        keys = (admin.list("tenants/metadata/_transit-keys/") or {}).get("data", {}).get("keys", [])
    except hvac.exceptions.InvalidPath:
        return []
    return [d for key in keys for d in _drop(admin, key, live)]


def _drop(admin: hvac.Client, key: str, live: set[str]) -> list[str]:
    try:
        meta = (admin.read(f"tenants/metadata/_transit-keys/{key}") or {}).get("data") or {}
    except hvac.exceptions.InvalidPath:
        return []
    uid = (meta.get("custom_metadata") or {}).get(vault.OWNER_FIELD)
    if not meta or not key.startswith("tenant-") or uid in live or key.removeprefix("tenant-") in live:
        return []
    try:
        admin.write(f"transit/keys/{key}/config", deletion_allowed=True)
        admin.delete(f"transit/keys/{key}")
    except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
        pass  # the key is gone already (a purge ended before its record)
    admin.delete(f"tenants/metadata/_transit-keys/{key}")
    return [f"vault: kept transit key {key} and its owner record"]
