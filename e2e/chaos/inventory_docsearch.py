"""The document store (FerretDB) and search (OpenSearch) part of the chaos inventory (inventory.py).

FerretDB v1 keeps each MongoDB database as a schema `t_<base>` of the PostgreSQL database `ferretdb`, and
each MongoDB user is a PostgreSQL role (docs/mongodb.md): the roles `m_<base>_owner`, `_a`, `_b` (and an
archive's `_dump`) and the schemas are read from pg_catalog with the platform's PostgreSQL superuser.
OpenSearch's objects are read with its admin (all_access): indices and aliases, composable index
templates, and the security plugin's roles, role mappings, internal users and tenants. backends/search.py
makes the template, role and role mapping `tenant-<name>` and the users `tenant-<name>_a`/`_b`; the
tenant's application makes indices `t-<name>_*`; nothing makes aliases or security tenants.

An object is given to a tenant only when the naming rules (api/names.py, backends/search_names.py) derive
exactly its name from that tenant; anything else of the run is unknown (leaked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from tenancy_operator.api import names
from tenancy_operator.backends import search_names

from ..admin import pg_admin, search_admin

if TYPE_CHECKING:
    from .inventory import Inventory, Logins

SECURITY = "/_plugins/_security/api"
SLOTS = ("a", "b")
SECURITY_KINDS = {"roles": "search role", "rolesmapping": "search role mapping", "internalusers": "search internal user",
                  "tenants": "search security tenant"}
DATA = {"search index": "search"}
"""Kinds that hold what the tenant itself wrote (here: the marker index), when it has that service."""


def _derived(obj: str, tenant: str, rules: Callable[[str], Iterable[str]]) -> str | None:
    """`tenant` if it is a tenant name and `rules(tenant)` gives exactly `obj`, else None (no rule makes it)."""
    return tenant if names.is_tenant_name(tenant) and obj in set(rules(tenant)) else None


def _mongo_roles(tenant: str) -> tuple[str, ...]:
    return (names.mongo_owner_role(tenant), names.mongo_dump_role(tenant),
            *(names.mongo_login_role(tenant, slot) for slot in SLOTS))


def mongo_role_tenant(role: str) -> str | None:
    """`m_<base>_<suffix>` -> its tenant ('_' in the base stands for '-')."""
    base = role.rpartition("_")[0]
    return _derived(role, base.removeprefix("m_").replace("_", "-"), _mongo_roles) if base.startswith("m_") else None


def mongo_database_tenant(schema: str) -> str | None:
    """`t_<base>` (a schema of FerretDB's database) -> its tenant."""
    return _derived(schema, schema.removeprefix("t_").replace("_", "-"), lambda t: [names.mongo_database(t)])


def search_role_tenant(name: str) -> str | None:
    """`tenant-<name>` (the role, role mapping and index template share it) -> the tenant."""
    return _derived(name, name.removeprefix("tenant-"), lambda t: [search_names.role_name(t)])


def search_user_tenant(user: str) -> str | None:
    """`tenant-<name>_<slot>` -> the tenant."""
    return _derived(user, user.rpartition("_")[0].removeprefix("tenant-"),
                    lambda t: [search_names.user_name(t, slot) for slot in SLOTS])


def search_index_tenant(index: str) -> str | None:
    """`t-<name>_<anything>` -> the tenant ('_' ends the name: no tenant name holds one)."""
    tenant = index.removeprefix("t-").partition("_")[0]
    return tenant if names.is_tenant_name(tenant) and index.startswith(names.search_prefix(tenant)) else None


def collect(inv: Inventory, prefix: str) -> None:
    """Add every FerretDB and OpenSearch object of the run (`prefix`: the run's tenant name prefix) to `inv`."""
    base = prefix.replace("-", "_")
    for row in pg_admin("SELECT rolname, rolcanlogin FROM pg_roles WHERE starts_with(rolname, $1)", "m_" + base):
        if row["rolcanlogin"]:
            inv.can_login.add(row["rolname"])
        inv.add("mongodb role", row["rolname"], mongo_role_tenant(row["rolname"]))
    for row in pg_admin("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", "t_" + base,
                        database="ferretdb"):
        inv.add("mongodb database", row["nspname"], mongo_database_tenant(row["nspname"]))

    # OpenSearch: every name that holds the run's prefix (`ch<6 hex digits>-`, which no stock name holds),
    # whatever comes before it.
    client = search_admin()
    try:
        get = client.transport.perform_request
        for row in get("GET", "/_cat/indices", params={"format": "json", "h": "index", "expand_wildcards": "all"}):
            if prefix in row["index"]:
                inv.add("search index", row["index"], search_index_tenant(row["index"]))
        for row in get("GET", "/_cat/aliases", params={"format": "json", "h": "alias,index"}):
            if prefix in row["alias"] or prefix in row["index"]:
                inv.add("search alias", f"{row['alias']} (on {row['index']})",
                        search_index_tenant(row["index"]) or search_index_tenant(row["alias"]))
        for template in get("GET", "/_index_template").get("index_templates") or []:
            if prefix in template["name"]:
                inv.add("search index template", template["name"], search_role_tenant(template["name"]))
        for what, kind in SECURITY_KINDS.items():
            for name in get("GET", f"{SECURITY}/{what}/") or {}:
                if prefix in name:
                    inv.add(kind, name, (search_user_tenant if what == "internalusers" else search_role_tenant)(name))
    finally:
        client.close()


def required(tenant: str, logins: Logins) -> set[tuple[str, str]]:
    """What a live, Active tenant must have for the services of `logins` among mongodb and search."""
    need: set[tuple[str, str]] = set()
    if "mongodb" in logins:
        need |= {("mongodb database", names.mongo_database(tenant)), ("mongodb role", names.mongo_owner_role(tenant))}
        if logins["mongodb"]:
            need.add(("mongodb role", logins["mongodb"]))
    if "search" in logins:
        role = search_names.role_name(tenant)
        need |= {("search role", role), ("search role mapping", role), ("search index template", role)}
        if logins["search"]:
            need.add(("search internal user", logins["search"]))
    return need


def login_slots(tenant: str, logins: Logins) -> set[tuple[str, str]]:
    """The MongoDB users (PostgreSQL roles) a tenant with mongodb keeps in both slots: the one not in use may
    exist, without LOGIN. (A search user of the slot not in use is removed once the overlap ends.)"""
    return {("mongodb role", names.mongo_login_role(tenant, slot)) for slot in SLOTS} if "mongodb" in logins else set()


def data_kinds(logins: Logins) -> set[str]:
    return {kind for kind, service in DATA.items() if service in logins}
