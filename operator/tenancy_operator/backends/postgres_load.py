"""The role a dump is loaded as: a short-lived LOGIN role with the tenant owner's privileges and no others.

Why not the admin with `--role <owner>`: `--role` is only `SET ROLE`. A load runs code the tenant
wrote (a CHECK or a default calling a plpgsql function, a generated column, an index expression, a
materialized view's query); a SECURITY INVOKER function may `RESET ROLE`, which returns to the session
user, and the admin is a superuser on most platforms. So the tools connect as `t_<name>_load`
(api.names.pg_load_role) instead: NOSUPERUSER and no other attribute, a member of `t_<name>_owner`
(so `--role` still makes every object the owner's), nothing granted to it by name. `RESET ROLE`
then lands on this role, whose privileges are the owner's, which the tenant holds anyway.

- Password: 32 random bytes, sent to the server as a SCRAM verifier and to the tool as PGPASSWORD;
  never on a command line or in a log.
- CONNECTION LIMIT 1: the tool's one session (`--single-transaction`) is the only one, so code in the
  load that sets the role's own password (a role may) cannot open a second session with it.
- VALID UNTIL a few minutes ahead: a role left by a killed operator cannot log in afterwards; the next
  load drops it first, and deleting the tenant drops it with the others (api/names injective, unmarked,
  so it counts as the tenant's own).
- Dropping: its sessions ended, then in the tenant database whatever it came to own is given to the
  owner (REASSIGN OWNED) and what was granted to it revoked (DROP OWNED), then DROP ROLE.

INHERIT, not NOINHERIT: the role must be able to `SET ROLE` to the owner, so NOINHERIT would take away
nothing code running in the load can reach, and it would need CONNECT granted on the tenant database,
a grant a non-superuser admin may not be able to give (the owner holds it).
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from ..api import names
from . import postgres_admin as admin
from . import postgres_sql as sql
from .base import BackendRefused, BackendUnavailable, Target

__all__ = ["load_role", "drop_load_role", "LIFETIME"]

LIFETIME = datetime.timedelta(minutes=10)
"""How long the role may log in: it connects once, right after it is made (a session outlives it)."""


async def _run(target: Target, database: str, work):
    try:
        conn = await asyncpg.connect(host=target.host, port=target.port, user=target.username,
                                     password=target.password, database=database, timeout=10,
                                     ssl="require" if target.tls else None, server_settings=sql.IN_TENANT_DATABASE)
    except (OSError, TimeoutError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name} refused a connection to {database}: {exc}") from exc
    try:
        return await work(conn)
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name}: load role: {exc}") from exc
    finally:
        await conn.close()


async def drop_load_role(target: Target, tenant: str) -> bool:
    """Remove the tenant's load role if it exists (a finished load's, or one a killed operator left).

    Returns whether there was one. Raises BackendRefused/BackendUnavailable as the server answers.
    """
    role, owner, database = names.pg_load_role(tenant), names.pg_owner_role(tenant), names.pg_database(tenant)

    async def exists_and_end(conn: asyncpg.Connection) -> bool:
        if not await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role):
            return False
        await conn.execute(sql.no_login(role))
        await conn.fetchval(sql.terminate_sessions_sql, [role])
        return True

    if not await _run(target, target.extra.get("database", "postgres"), exists_and_end):
        return False

    async def disown(conn: asyncpg.Connection) -> None:
        if await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", owner):
            await conn.execute(f"REASSIGN OWNED BY {sql.ident(role)} TO {sql.ident(owner)}")
        await conn.execute(sql.drop_owned([role]))

    home = target.extra.get("database", "postgres")
    # REASSIGN/DROP OWNED need the privileges of both roles, and CONNECT on the tenant database is the
    # owner's: a non-superuser admin is a member of both for the moment (backends.postgres_admin).
    joined = await _run(target, home, lambda c: admin.join(c, [role, owner]))
    try:
        if await _run(target, home, lambda c: c.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                                         database)):
            await _run(target, database, disown)
        await _run(target, home, lambda c: c.execute(sql.drop_role(role)))
    finally:
        await _run(target, home, lambda c: admin.leave(c, joined))
    return True


@asynccontextmanager
async def load_role(target: Target, tenant: str) -> AsyncIterator[Target]:
    """`target` with the admin's credentials swapped for a fresh load role's, for the duration.

    The tenant's owner role and database must exist. Any earlier load role of the tenant is dropped
    first; this one is dropped on the way out, whatever happened.
    """
    role, owner = names.pg_load_role(tenant), names.pg_owner_role(tenant)
    await drop_load_role(target, tenant)
    password = secrets.token_urlsafe(32)
    until = (datetime.datetime.now(datetime.UTC) + LIFETIME).strftime("%Y-%m-%d %H:%M:%S+00")

    async def make(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute(f"{sql.create_role(role, login=True)} INHERIT CONNECTION LIMIT 1 "
                               f"PASSWORD {sql.literal(sql.scram_verifier(password))} VALID UNTIL {sql.literal(until)}")
            await conn.execute(sql.grant_membership(owner, role))

    try:
        await _run(target, target.extra.get("database", "postgres"), make)
        yield dataclasses.replace(target, username=role, password=password)
    finally:
        await drop_load_role(target, tenant)
