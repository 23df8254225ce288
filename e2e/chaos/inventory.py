"""What every server really holds for the tenants of one chaos run, compared with the Tenants that exist.

Objects are read with the servers' superusers (admin.py) and grouped by the tenant name the naming
rules (tenancy_operator.api.names) derive them from; only names that start with the run's prefix
count, so other tests' tenants never disturb the comparison. PostgreSQL, Redis, OpenBao and the API
server are read here, FerretDB and OpenSearch in inventory_docsearch.py. An object of a tenant that
does not exist (or of no tenant at all, for a kind the operator no longer makes) is *leaked*, and so
is one a live tenant holds beyond what its spec needs; an object a live tenant must have that is
absent is *missing*.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import hvac.exceptions
from tenancy_operator.api import names

from ..admin import pg_admin, redis_admin, vault_admin
from ..kube import kubectl
from . import inventory_docsearch as docsearch

PG_ROLE_SUFFIXES = ("owner", "a", "b", "load")
Logins = dict[str, str | None]
"""A live tenant's current login per service, read from its credentials Secret: "postgres" (PGUSER) always,
"mongodb" (MONGODB_USERNAME) and "search" (SEARCH_USERNAME) when its spec enables them: a key present
means the service is enabled, None that the Secret does not name the login."""
LOGIN_ROLES = {"postgres": "postgres role", "mongodb": "mongodb role"}
"""Logins that are PostgreSQL roles (FerretDB logs in to PostgreSQL as the MongoDB user): the current one
must have LOGIN."""


@dataclass
class Inventory:
    """(kind, object name) -> tenant name, for every object with the run's prefix."""

    objects: dict[tuple[str, str], str] = field(default_factory=dict)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    """Objects with the run's prefix whose name no rule derives (a suffix the operator does not make)."""
    can_login: set[str] = field(default_factory=set)
    """PostgreSQL roles of the run with LOGIN (`t_` ones of the postgres Backend, `m_` ones of FerretDB)."""

    def add(self, kind: str, obj: str, tenant: str | None) -> None:
        if tenant is None or not names.is_tenant_name(tenant):
            self.unknown.append((kind, obj))
        else:
            self.objects[(kind, obj)] = tenant

    def per_kind(self) -> Counter:
        return Counter(kind for kind, _ in self.objects) + Counter(kind for kind, _ in self.unknown)

    def of(self, tenant: str) -> set[tuple[str, str]]:
        return {key for key, owner in self.objects.items() if owner == tenant}


def _vault_list(path: str) -> list[str]:
    try:
        return ((vault_admin().list(path) or {}).get("data") or {}).get("keys") or []
    except hvac.exceptions.InvalidPath:
        return []


def _pg_name(text: str, prefix: str) -> str | None:
    """`t_<base>` -> tenant name ('_' in the base stands for '-')."""
    return text[len("t_"):].replace("_", "-") if text.startswith("t_" + prefix.replace("-", "_")) else None


def collect(prefix: str) -> Inventory:
    """Every object of every server and of the API server whose tenant name starts with `prefix`."""
    inv = Inventory()
    pg_prefix = "t_" + prefix.replace("-", "_")
    for row in pg_admin("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", pg_prefix):
        inv.add("postgres database", row["datname"], _pg_name(row["datname"], prefix))
    for row in pg_admin("SELECT rolname, rolcanlogin FROM pg_roles WHERE starts_with(rolname, $1)", pg_prefix):
        if row["rolcanlogin"]:
            inv.can_login.add(row["rolname"])
        base, _, suffix = row["rolname"].rpartition("_")
        inv.add("postgres role", row["rolname"], _pg_name(base, prefix) if suffix in PG_ROLE_SUFFIXES else None)
    # FerretDB (its roles m_<base>_... in the same PostgreSQL, its databases in database `ferretdb`) and OpenSearch.
    docsearch.collect(inv, prefix)

    r = redis_admin()
    try:
        for user in r.acl_users():
            if user.startswith("tenant:" + prefix):
                inv.add("redis ACL user", user, user[len("tenant:"):])
        for key in r.scan_iter(f"tenancy:owner:{prefix}*", count=1000):
            inv.add("redis owner key", key, key[len("tenancy:owner:"):])
        for key in r.scan_iter(f"t:{prefix}*", count=1000):
            inv.add("redis key", key, key.split(":", 2)[1])
    finally:
        r.close()

    vault_prefix = "tenant-" + prefix
    for key in _vault_list("transit/keys"):
        if key.startswith(vault_prefix):
            inv.add("openbao transit key", key, key[len("tenant-"):])
    for key in _vault_list("transit-sessions/keys"):
        if key.startswith(vault_prefix):
            inv.add("openbao session key", key, key[len("tenant-"):])
    for role in _vault_list("auth/kubernetes/role"):
        if role.startswith(vault_prefix):
            inv.add("openbao auth role", role, role[len("tenant-"):])
    for entry in _vault_list("tenants/metadata/"):
        if entry.startswith(prefix) and not entry.endswith("/"):
            inv.add("openbao owner record", entry, entry)
        elif entry.startswith(vault_prefix) and entry.endswith("/"):
            inv.add("openbao kv folder", entry, entry[len("tenant-"):-1])
    for entry in _vault_list("tenants/metadata/_transit-keys/"):
        if entry.startswith(vault_prefix):
            inv.add("openbao kept-key record", entry, entry[len("tenant-"):])
    # Policies are fixed templated ones (tenancy-tenant-*): a per-tenant policy is one of an earlier version.
    for policy in _vault_list("sys/policies/acl"):
        if policy.startswith(vault_prefix):
            inv.unknown.append(("openbao policy", policy))

    out = kubectl("get", "namespaces", "-o", "json").stdout
    for ns in json.loads(out)["items"]:
        ns_name = ns["metadata"]["name"]
        if ns_name.startswith("tenant-" + prefix):
            inv.add("namespace", ns_name, ns_name[len("tenant-"):])
    out = kubectl("get", "secrets", "-A", "-o", "json").stdout
    for secret in json.loads(out)["items"]:
        ns_name = secret["metadata"]["namespace"]
        if ns_name.startswith("tenant-" + prefix) and secret["metadata"]["name"].startswith("tenant-credentials"):
            inv.add("credentials secret", f"{ns_name}/{secret['metadata']['name']}", ns_name[len("tenant-"):])
    return inv


def required(tenant: str, logins: Logins) -> set[tuple[str, str]]:
    """What a live, Active tenant with PostgreSQL, Redis and OpenBao (KV and a transit key) must have, and
    with MongoDB and search when `logins` names them."""
    need = {
        ("postgres database", names.pg_database(tenant)),
        ("postgres role", names.pg_owner_role(tenant)),
        ("redis ACL user", names.redis_user(tenant)),
        ("redis owner key", names.redis_owner_key(tenant)),
        ("openbao transit key", names.vault_key(tenant)),
        ("openbao kept-key record", names.vault_key(tenant)),  # the key's owner record (names.vault_key_record)
        ("openbao auth role", names.vault_policy(tenant)),
        ("openbao owner record", names.vault_owner_record(tenant)),
        ("namespace", names.namespace(tenant)),
        ("credentials secret", f"{names.namespace(tenant)}/tenant-credentials"),
    }
    if logins.get("postgres"):
        need.add(("postgres role", logins["postgres"]))
    return need | docsearch.required(tenant, logins)


TENANT_DATA = ("redis key", "openbao kv folder")
"""Kinds that hold what the tenant (here: the test's markers) wrote, not what the operator made (the search
index too, inventory_docsearch.DATA, for a tenant with search)."""


def extra(inv: Inventory, tenant: str, logins: Logins) -> list[str]:
    """Objects a live tenant holds beyond what it needs: each is a leak inside a tenant that exists
    (a retired login slot that can still log in, a retired search user, a load or dump role left by a
    restore or an archive, a session key, an old per-tenant policy, or any object of a service its spec
    does not enable)."""
    found = []
    need = required(tenant, logins)
    slots = {("postgres role", names.pg_login_role(tenant, slot)) for slot in ("a", "b")}
    slots |= docsearch.login_slots(tenant, logins)
    data = set(TENANT_DATA) | docsearch.data_kinds(logins)
    for kind, obj in sorted(inv.of(tenant) - need):
        if kind in data:
            continue
        if (kind, obj) in slots:
            if obj in inv.can_login:
                found.append(f"{kind} {obj} (tenant {tenant}'s retired login slot can still log in)")
            continue
        found.append(f"{kind} {obj} (tenant {tenant} exists but does not need it)")
    return found


def compare(inv: Inventory, live: dict[str, Logins]) -> tuple[list[str], list[str]]:
    """(leaked, missing): `live` maps each existing Tenant of the run to its current logins (`Logins`).

    Leaked: an object of a tenant that does not exist, one no naming rule makes, or one a live
    tenant holds beyond its needs (`extra`). Missing: what a live tenant needs (`required`) and lacks."""
    leaked = [f"{kind} {obj} (tenant {owner} does not exist)" for (kind, obj), owner in sorted(inv.objects.items())
              if owner not in live]
    leaked += [f"{kind} {obj} (no naming rule makes it)" for kind, obj in sorted(inv.unknown)]
    for tenant, logins in sorted(live.items()):
        leaked += extra(inv, tenant, logins)
    missing = [f"{kind} {obj}" for tenant, logins in sorted(live.items())
               for kind, obj in sorted(required(tenant, logins) - set(inv.objects))]
    for tenant, logins in sorted(live.items()):
        for service, login in sorted(logins.items()):
            if login is None:
                missing.append(f"the {service} login in tenant {tenant}'s credentials Secret")
            elif service in LOGIN_ROLES and (LOGIN_ROLES[service], login) in inv.objects and login not in inv.can_login:
                missing.append(f"LOGIN of {LOGIN_ROLES[service]} {login} (tenant {tenant}'s current login role)")
    return leaked, missing
