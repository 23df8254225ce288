"""MongoDB adapter, a tenant's schema in FerretDB's database: the admin owns the schema and its
catalogue table (with the row check of `mongodb_catalogue`), the tenant's owner role may use and create
in it and write the catalogue rows, FerretDB's shared catalogue role may read them."""

from __future__ import annotations

from typing import Any

import asyncpg

from . import mongodb_catalogue as fence
from . import postgres_sql as sql
from .base import BackendRefused, Report

__all__ = ["METADATA_TABLE", "state_sql", "needs_settling", "settle"]

METADATA_TABLE = "_ferretdb_database_metadata"

# The schema (MongoDB database), its owner, its FerretDB catalogue table's owner and row security,
# what the tenant's owner role ($4) holds on both, and whether the shared catalogue role ($3) may read
# the table. Names travel as bind parameters.
state_sql = """
SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner, c.oid IS NOT NULL AS has_catalogue,
       pg_get_userbyid(c.relowner) AS catalogue_owner, c.relkind::text AS catalogue_kind,
       COALESCE(c.relrowsecurity, false) AS catalogue_row_security,
       has_schema_privilege($3, n.oid, 'USAGE') AS shared_usage,
       c.oid IS NOT NULL AND has_table_privilege($3, c.oid, 'SELECT') AS shared_select,
       has_schema_privilege($4, n.oid, 'USAGE') AND has_schema_privilege($4, n.oid, 'CREATE') AS tenant_schema,
       c.oid IS NOT NULL AND has_table_privilege($4, c.oid, 'SELECT') AND has_table_privilege($4, c.oid, 'INSERT')
       AND has_table_privilege($4, c.oid, 'UPDATE') AND has_table_privilege($4, c.oid, 'DELETE') AS tenant_catalogue,
       EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conname = 'tenancy_catalogue_row'
               AND k.contype = 'c' AND k.convalidated
               AND pg_get_constraintdef(k.oid) = 'CHECK (tenancy.ferretdb_catalogue_row(_jsonb))') AS catalogue_fenced,
       ARRAY(SELECT p.proname || ':' || md5(p.prosrc) FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace
             WHERE pn.nspname = 'tenancy' AND p.proname LIKE 'ferretdb\\_catalogue\\_%' ORDER BY p.proname) AS fence_functions,
       COALESCE((SELECT has_schema_privilege($4, pn.oid, 'USAGE') FROM pg_namespace pn WHERE pn.nspname = 'tenancy'),
                false) AS fence_usage
FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $2
WHERE n.nspname = $1
"""


def needs_settling(schema: dict[str, Any] | None, admin: str) -> bool:
    """Does the schema, as `state_sql` read it (None: missing), differ from what `settle` makes?"""
    return bool(not schema or schema.get("owner") != admin or schema.get("catalogue_owner") != admin
            or schema.get("catalogue_kind") != "r" or schema.get("catalogue_row_security")
            or list(schema.get("fence_functions") or []) != fence.expected_functions()
            or not all(schema.get(k) for k in ("shared_usage", "shared_select", "tenant_schema", "tenant_catalogue",
                                               "catalogue_fenced", "fence_usage")))


async def settle(conn: asyncpg.Connection, where: str, admin: str, database: str, owner: str, catalogue: str,
                 report: Report) -> None:
    """Make the schema of `database` what `needs_settling` wants; each write named in `report`.

    Raises BackendRefused (naming `where`) when the schema is missing or its catalogue is no table."""
    state = await conn.fetchrow(state_sql, database, METADATA_TABLE, catalogue, owner)
    if state is None:
        raise BackendRefused(f"{where}: database {database} is still missing after "
                             "FerretDB was asked to make it")
    if state["catalogue_kind"] != "r":
        raise BackendRefused(f"{where}: {database}.{METADATA_TABLE} is not a table "
                             f"(relkind {state['catalogue_kind']!r}); a person must look at it")
    if not await conn.fetchval("SELECT pg_has_role(current_user, $1, 'MEMBER')", owner):
        # DROP OWNED BY the owner (reclaim Delete) needs the admin to be a member (CREATEROLE may grant it).
        await conn.execute(sql.grant_membership(owner, admin))
    schema, table = sql.ident(database), f"{sql.ident(database)}.{sql.ident(METADATA_TABLE)}"
    # The schema and its catalogue table belong to the admin, never to the tenant: other tenants' roles
    # (and the admin) read that table whenever FerretDB loads its catalogue, so an owner could put code
    # there that runs as them (a row-security policy calling its function, or a view in its place).
    moved = False
    for kind, obj, live in (("SCHEMA", schema, state["owner"]), ("TABLE", table, state["catalogue_owner"])):
        if live != admin:
            await conn.execute(f"ALTER {kind} {obj} OWNER TO {sql.ident(admin)}")
            what = f"owner of {kind.lower()} {database}" + ("" if kind == "SCHEMA" else f".{METADATA_TABLE}")
            report.repaired.append(what)
            report.diffs.setdefault(what, f"owner {live} (want {admin})")
            moved = True
    if moved:  # the tenant's owner lost what it held as owner: read its grants again
        state = await conn.fetchrow(state_sql, database, METADATA_TABLE, catalogue, owner)
    if list(state["fence_functions"]) != fence.expected_functions() or not state["fence_usage"]:
        await conn.execute(fence.schema_sql)  # the admin owns the database: it may make the schema
        for name in fence.FUNCTIONS:
            await conn.execute(fence.function_sql(name))
        report.repaired.append("catalogue row check functions")
        report.diffs.setdefault("catalogue row check functions", f"found {list(state['fence_functions'])}")
    if not state["catalogue_fenced"]:
        # Refused (check_violation) when a row already breaks it: the message names the constraint.
        await conn.execute(fence.add_constraint_sql(schema, sql.ident(METADATA_TABLE)))
        what = f"catalogue row check on {database}.{METADATA_TABLE}"
        report.repaired.append(what)
        report.diffs.setdefault(what, "missing")
    for held, statement, what in (
            (not state["catalogue_row_security"], f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
             f"row security off on {database}.{METADATA_TABLE}"),
            (state["tenant_schema"], f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {sql.ident(owner)}",
             f"USAGE, CREATE on {database} for {owner}"),
            (state["tenant_catalogue"], f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {sql.ident(owner)}",
             f"catalogue rows of {database} for {owner}"),
            (state["shared_usage"], f"GRANT USAGE ON SCHEMA {schema} TO {sql.ident(catalogue)}",
             f"USAGE on {database} for {catalogue}"),
            (state["shared_select"], f"GRANT SELECT ON {table} TO {sql.ident(catalogue)}",
             f"SELECT on {database}.{METADATA_TABLE} for {catalogue}")):
        if not held:
            await conn.execute(statement)
            report.repaired.append(what)
            report.diffs.setdefault(what, "missing")
