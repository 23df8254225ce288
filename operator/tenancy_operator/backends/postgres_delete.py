"""PostgreSQL adapter, the teardown: a tenant's database dropped, then what its roles own or were
granted in every other database of the server, then the roles, never anything another Tenant marks."""

from __future__ import annotations

import asyncpg

from ..api import names
from . import postgres_admin as admin
from . import postgres_pool as pools
from . import postgres_sql as sql
from .base import BackendRefused, BackendUnavailable, OwnedByAnotherTenant, Target

__all__ = ["delete", "DROP_TIMEOUT"]

DROP_TIMEOUT = 300.0
"""Seconds DROP DATABASE may take (the pool's command timeout is 30 s): one cut off by a timeout leaves
the database invalid, so it gets the time a loaded server needs to end the sessions and remove the files."""


async def _in_database(target: Target, database: str, statement: str) -> None:
    """Run one statement as the admin in another database of the same server (a short connection)."""
    try:
        # Settings the database's owner (another tenant) may have set there must not block the cleanup.
        conn = await asyncpg.connect(host=target.host, port=target.port, user=target.username,
                                     password=target.password, database=database, timeout=5,
                                     command_timeout=30, ssl="require" if target.tls else None,
                                     server_settings={**sql.IN_TENANT_DATABASE, "default_transaction_read_only": "off",
                                                      "statement_timeout": "0", "lock_timeout": "30s",
                                                      "idle_in_transaction_session_timeout": "0"})
    except (TimeoutError, OSError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name}: cannot connect to database {database}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name}: cannot connect to database {database}: {exc}") from exc
    try:
        await conn.execute(statement)
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name}: in database {database}: {exc}") from exc
    finally:
        await conn.close()


async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Teardown in the safe order: logins off, sessions ended, database dropped, then in every other
    database of the server what the roles own or were granted there dropped (a grant from another
    tenant, a large object in `postgres`), then the login roles, then the owner.

    Returns what was removed. Raises OwnedByAnotherTenant, touching nothing, when any object carries
    another Tenant's mark (unmarked objects are taken as this tenant's, as `ensure` does), and
    BackendRefused, naming the database and what a person can do, when something the roles hold
    cannot be removed (a database the admin cannot connect to).
    """
    database, owner = names.pg_database(tenant), names.pg_owner_role(tenant)
    role_a, role_b = names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b")
    done: list[str] = []

    async def dependents(conn: asyncpg.Connection, roles: list[str]) -> list[asyncpg.Record]:
        return await conn.fetch(sql.dependent_databases_sql, roles)

    async def drop_database(conn: asyncpg.Connection) -> tuple[list[str], list[asyncpg.Record]]:
        # The load role (backends.postgres_load) too, if a killed operator left one.
        rows = await conn.fetch(sql.role_state_sql, [owner, role_a, role_b, names.pg_load_role(tenant)])
        db = await conn.fetchrow(sql.database_state_sql, database)
        # As in `ensure`: the roles' marks decide; the database's (tenant-writable) only without roles.
        marked = {f"role {r['rolname']}": names.parse_owner_mark(r["mark"]) for r in rows}
        if db and not rows:
            marked[f"database {database}"] = names.parse_owner_mark(db["mark"])
        for owner_uid in marked.values():
            if owner_uid not in (None, uid):
                raise OwnedByAnotherTenant(f"postgres backend {target.name}",
                                           [o for o, u in marked.items() if u == owner_uid], owner_uid)
        existing = [r["rolname"] for r in rows]
        # As a member of the roles: DROP DATABASE is the owner's, DROP OWNED needs the roles' privileges,
        # and a database another tenant granted them CONNECT on is reachable only through them.
        joined.extend(await admin.join(conn, existing))
        for role in (role_a, role_b):
            if role in existing:
                await conn.execute(sql.alter_login(role, False, 0))
        await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b, names.pg_load_role(tenant)])
        if db:
            if db["datconnlimit"] != sql.INVALID_DATABASE:
                await conn.execute(sql.revoke_public_connect(database))
                # Its owner (the tenant) may have made it a template, which DROP DATABASE refuses.
                await conn.execute(sql.not_a_template(database))
            # else a DROP that was cut off (a timeout, a crash) left it invalid: PostgreSQL refuses every
            # ALTER of it ("cannot alter invalid database") and allows only the DROP, which finishes it.
            await conn.execute(sql.drop_database(database), timeout=DROP_TIMEOUT)
            done.append(f"database {database}")
        return existing, (await dependents(conn, existing) if existing else [])

    joined: list[str] = []
    try:
        return await _delete_rest(target, tenant, drop_database, dependents, done)
    finally:
        if joined:  # roles already dropped took the membership with them
            await pools.run(target, lambda conn: admin.leave(conn, joined))


async def _delete_rest(target: Target, tenant: str, drop_database, dependents, done: list[str]) -> list[str]:
    owner, role_a, role_b = names.pg_owner_role(tenant), names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b")
    existing, held = await pools.run(target, drop_database)
    # Objects the roles own or were granted elsewhere would make DROP ROLE fail for ever: drop them
    # first, database by database (DROP OWNED acts only in the database it runs in).
    for row in held:
        if row["reachable"]:
            await _in_database(target, row["datname"], sql.drop_owned(existing))
        elif row["joinable"] and sql.is_safe_ident(row["owner"]):
            # Another tenant's database (it granted these roles something there): CONNECT is its owner's,
            # so the admin is that owner's member for the moment (a role it made; never a superuser).
            joined = await pools.run(target, lambda conn, owner_=row["owner"]: admin.join(conn, [owner_]))
            try:
                await _in_database(target, row["datname"], sql.drop_owned(existing))
            finally:
                await pools.run(target, lambda conn, j=joined: admin.leave(conn, j))
        else:
            continue
        done.append(f"objects and grants of {tenant}'s roles in database {row['datname']}")

    async def drop_roles(conn: asyncpg.Connection) -> None:
        left = [r["datname"] for r in await dependents(conn, existing)] if existing else []
        if left:
            raise BackendRefused(
                f"roles {', '.join(existing)} still own or hold grants in database(s) {', '.join(left)}, which the "
                f"admin of Backend {target.name} cannot connect to; run DROP OWNED BY {', '.join(existing)} there "
                "as a superuser, or abandon the data (annotate the Tenant tenancy.dev/abandon-data="
                f"{target.name})")
        for role in (role_a, role_b, names.pg_load_role(tenant), owner):
            if role in existing:
                try:
                    await conn.execute(sql.drop_role(role))
                except asyncpg.exceptions.DependentObjectsStillExistError as exc:
                    raise BackendRefused(f"cannot drop role {role}: {exc}") from exc
                done.append(f"role {role}")

    await pools.run(target, drop_roles)
    return done
