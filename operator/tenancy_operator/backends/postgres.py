"""PostgreSQL adapter: a database per tenant, an owner role and two login roles that take turns.

Layout per tenant (names from api.names): NOLOGIN owner `t_<name>_owner` owns database `t_<name>`;
login roles `t_<name>_a` and `t_<name>_b` are members of it with `SET role` defaulting to it, so
objects belong to the owner whichever slot made them. Rotation moves the Secret to the other slot;
the old slot keeps its password through the overlap, then loses LOGIN. CONNECT is revoked from
PUBLIC, so no tenant can even connect to another's database.

`ensure` reads the catalogs first and writes only what differs, which is also the verify pass.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import asyncpg

from ..api import names
from . import postgres_sql as sql
from .base import (
    BackendRefused,
    BackendUnavailable,
    OwnedByAnotherTenant,
    Ownership,
    Report,
    Target,
    TenantSlice,
)

__all__ = ["ensure", "delete", "probe", "close_all"]

_pools: dict[tuple[str, str, int, str], asyncpg.Pool] = {}
_pool_lock = asyncio.Lock()


async def _pool(target: Target) -> asyncpg.Pool:
    key = (target.name, target.host, target.port, target.username)
    async with _pool_lock:
        pool = _pools.get(key)
        if pool is None:
            try:
                pool = await asyncpg.create_pool(
                    host=target.host, port=target.port, user=target.username, password=target.password,
                    database=target.extra.get("database", "postgres"), min_size=0, max_size=4,
                    timeout=5, command_timeout=30, ssl="require" if target.tls else None,
                )
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise BackendUnavailable(f"cannot connect to postgres backend {target.name}: {exc}") from exc
            _pools[key] = pool
        return pool


async def close_all() -> None:
    for pool in list(_pools.values()):
        await pool.close()
    _pools.clear()


async def _run(target: Target, work):
    pool = await _pool(target)
    try:
        async with pool.acquire(timeout=10) as conn:
            return await work(conn)
    except (TimeoutError, OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.InterfaceError) as exc:
        # The pool may hold dead connections after a restart: drop it so the next try reconnects.
        _pools.pop((target.name, target.host, target.port, target.username), None)
        pool.terminate()
        raise BackendUnavailable(f"postgres backend {target.name} failed: {exc}") from exc
    except asyncpg.exceptions.InsufficientPrivilegeError as exc:
        raise BackendRefused(f"postgres backend {target.name} refused: {exc}") from exc


async def probe(target: Target) -> str:
    """The server version; raises BackendUnavailable when it cannot be reached."""
    return await _run(target, lambda conn: conn.fetchval("SHOW server_version"))


def _roles(tenant: str) -> tuple[str, str, str, str]:
    return (names.pg_database(tenant), names.pg_owner_role(tenant),
            names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b"))


async def ensure(target: Target, want: TenantSlice) -> Report:
    database, owner, role_a, role_b = _roles(want.tenant)
    report = Report()

    async def work(conn: asyncpg.Connection) -> None:
        async def do(statement: str, what: str) -> None:
            await conn.execute(statement)
            if what not in report.repaired:
                report.repaired.append(what)

        roles = {r["rolname"]: r for r in await conn.fetch(sql.role_state_sql, [owner, role_a, role_b])}
        db = await conn.fetchrow(sql.database_state_sql, database)
        # Ownership first: nothing is written to an object another Tenant's UID marks.
        marks = Ownership(f"postgres backend {target.name}", want)
        for role in (owner, role_a, role_b):
            marks.see(f"role {role}", names.parse_owner_mark(roles[role]["mark"]) if role in roles else None)
        marks.see(f"database {database}", names.parse_owner_mark(db["mark"]) if db else None)
        marks.check()
        mark = names.owner_mark(want.uid)
        if owner not in roles:
            await do(sql.create_role(owner, login=False), f"role {owner}")
        for slot, role in (("a", role_a), ("b", role_b)):
            state = roles.get(role)
            active = slot == want.slot
            login = not want.suspended and (active or want.previous_valid)
            if state is None:
                await do(sql.create_role(role, login=False), f"role {role}")
                state = {"rolcanlogin": False, "rolconnlimit": -1, "rolpassword": None, "settings": "", "member_of": []}
            if owner not in (state["member_of"] or []):
                await do(sql.grant_membership(owner, role), f"membership {role} in {owner}")
            if f"role={owner}" not in (state["settings"] or ""):
                await do(sql.set_role_default(role, owner), f"default role of {role}")
            password_ok = not active or sql.scram_matches(state["rolpassword"], want.password)
            if state["rolcanlogin"] != login or state["rolconnlimit"] != want.connection_limit or not password_ok:
                verifier = sql.scram_verifier(want.password) if active and not password_ok else None
                await do(sql.alter_login(role, login, want.connection_limit, verifier),
                         f"login of {role}" + (" and password" if verifier else ""))
        if db is None:
            await do(sql.create_database(database, owner, want.connection_limit), f"database {database}")
            db = await conn.fetchrow(sql.database_state_sql, database)
        for obj in marks.to_mark:
            kind, name = obj.split(" ", 1)
            # A new object's mark is part of making it; on an old one the mark is a write of its own.
            await do(sql.comment_on_role(name, mark) if kind == "role" else sql.comment_on_database(name, mark),
                     obj if obj in report.repaired else f"ownership mark on {obj}")
        report.adopted += marks.adopted
        if db["datconnlimit"] != want.connection_limit:
            await do(sql.alter_database_limit(database, want.connection_limit), f"connection limit of {database}")
        if db["public_connect"]:
            await do(sql.revoke_public_connect(database), f"PUBLIC connect on {database}")
        if want.suspended:
            ended = await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
            if ended:
                report.repaired.append(f"{ended} sessions ended")
        report.version = await conn.fetchval("SHOW server_version")

    await _run(target, work)
    user = names.pg_login_role(want.tenant, want.slot)
    host = target.app_host
    report.endpoints = {
        "PGHOST": host,
        "PGPORT": str(target.port),
        "PGDATABASE": database,
        "PGUSER": user,
        "PGPASSWORD": want.password,
        "DATABASE_URL": f"postgresql://{quote(user, safe='')}:{quote(want.password, safe='')}@{host}:{target.port}/{database}",
    }
    return report



async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Teardown in the safe order: logins off, sessions ended, database dropped, roles dropped.

    Raises OwnedByAnotherTenant, touching nothing, when any object carries another Tenant's mark
    (unmarked objects are taken as this tenant's, as `ensure` does)."""
    database, owner, role_a, role_b = _roles(tenant)
    done: list[str] = []

    async def work(conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(sql.role_state_sql, [owner, role_a, role_b])
        db = await conn.fetchrow(sql.database_state_sql, database)
        marked = {f"role {r['rolname']}": names.parse_owner_mark(r["mark"]) for r in rows}
        if db:
            marked[f"database {database}"] = names.parse_owner_mark(db["mark"])
        for owner_uid in marked.values():
            if owner_uid not in (None, uid):
                raise OwnedByAnotherTenant(f"postgres backend {target.name}",
                                           [o for o, u in marked.items() if u == owner_uid], owner_uid)
        existing = {r["rolname"] for r in rows}
        for role in (role_a, role_b):
            if role in existing:
                await conn.execute(sql.alter_login(role, False, 0))
        await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
        if await conn.fetchrow(sql.database_state_sql, database):
            await conn.execute(sql.revoke_public_connect(database))
            await conn.execute(sql.drop_database(database))
            done.append(f"database {database}")
        for role in (role_a, role_b, owner):
            if role in existing:
                try:
                    await conn.execute(sql.drop_role(role))
                except asyncpg.exceptions.DependentObjectsStillExistError as exc:
                    raise BackendRefused(f"cannot drop role {role}: {exc}") from exc
                done.append(f"role {role}")

    await _run(target, work)
    return done
