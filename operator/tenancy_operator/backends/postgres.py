"""PostgreSQL adapter: a database per tenant, an owner role and two login roles that take turns.

Layout per tenant (names from api.names): NOLOGIN owner `t_<name>_owner` owns database `t_<name>`;
login roles `t_<name>_a` and `t_<name>_b` are members of it with `SET role` defaulting to it, so
objects belong to the owner whichever slot made them. Rotation moves the Secret to the other slot;
the old slot keeps its password through the overlap, then loses LOGIN. CONNECT is revoked from
PUBLIC, so no tenant can even connect to another's database, and a privilege the tenant grants on
its database to another tenant's role (or to PUBLIC) is revoked on the next pass, as its grantor.

`ensure` reads the catalogs first and writes only what differs, which is also the verify pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import asyncpg

from ..api import names
from . import postgres_admin as admin
from . import postgres_pool as pools
from . import postgres_sql as sql
from .base import (
    BackendRefused,
    Ownership,
    Report,
    ServerReport,
    Target,
    TenantSlice,
    another_tenants,
    foreign_members,
)
from .postgres_delete import delete
from .postgres_pool import close_all

__all__ = ["ensure", "endpoints", "close", "activity", "delete", "probe", "ensure_server", "close_all", "forget_cache",
           "open_doors", "SERVER_CONDITION"]

SERVER_CONDITION = "SharedDatabasesRestricted"


def forget_cache(target: Target | None = None) -> None:
    """Nothing to forget: every comparison reads the catalogs afresh (pools hold only connections)."""


async def probe(target: Target) -> str:
    """The server version. Raises BackendUnavailable when it cannot be reached, AdminPrivilegeMissing
    naming what the admin role lacks of postgres_admin.REQUIRED."""
    async def work(conn: asyncpg.Connection) -> tuple[str, list[str]]:
        return await conn.fetchval("SHOW server_version"), await admin.missing_privileges(conn)

    version, missing = await pools.run(target, work)
    if missing:
        raise admin.AdminPrivilegeMissing(
            f"postgres backend {target.name}: admin role {target.username} lacks {', '.join(missing)} "
            f"(the adapter needs {', '.join(admin.REQUIRED)}; grant it, e.g. `ALTER ROLE ... {missing[0]}` or "
            f"`GRANT {missing[0]} TO ...`)")
    return version


async def ensure_server(target: Target, settings: dict) -> ServerReport:
    """`restrictSharedDatabases`: nobody but the admin may connect to `postgres` and `template1`.

    Reads the grants first and writes only what is still open. CONNECT goes to the admin role before
    PUBLIC loses it, so the operator's own pool (which connects to `postgres`) keeps working. When
    the admin may not change those grants, says so in the condition instead of failing the Backend.
    """
    if not settings.get("restrictSharedDatabases", True):
        return ServerReport(SERVER_CONDITION, False, "NotRequested",
                            "spec.postgres.restrictSharedDatabases is false: the operator leaves the grants on "
                            f"{', '.join(sql.SHARED_DATABASES)} to the server's administrator")
    repaired: list[str] = []

    async def work(conn: asyncpg.Connection) -> list[str]:
        stuck = []
        for db in await conn.fetch(sql.shared_databases_sql, list(sql.SHARED_DATABASES)):
            name = db["datname"]
            if not (db["public_connect"] or db["public_temp"]):
                continue
            if not db["can_grant"]:
                stuck.append(name)
                continue
            if not db["admin_connect"]:
                await conn.execute(sql.grant_connect_to_admin(name))
                repaired.append(f"CONNECT on {name} to the admin role")
            await conn.execute(sql.revoke_public_connect(name))
            repaired.append(f"PUBLIC CONNECT, TEMPORARY on {name}")
        return stuck

    stuck = await pools.run(target, work)
    if stuck:
        return ServerReport(
            SERVER_CONDITION, False, "InsufficientPrivilege",
            f"the admin role may not change the grants on {', '.join(stuck)} (it is neither a superuser nor a member "
            f"of their owner): run `REVOKE CONNECT, TEMPORARY ON DATABASE <db> FROM PUBLIC` there as their owner "
            "after granting CONNECT to the roles that need it, or set spec.postgres.restrictSharedDatabases: false",
            repaired)
    return ServerReport(SERVER_CONDITION, True, "Restricted",
                        f"PUBLIC may not connect to or make temporary objects in {', '.join(sql.SHARED_DATABASES)}",
                        repaired)


def _roles(tenant: str) -> tuple[str, str, str, str]:
    return (names.pg_database(tenant), names.pg_owner_role(tenant),
            names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b"))


async def ensure(target: Target, want: TenantSlice) -> Report:
    database, owner, role_a, role_b = _roles(want.tenant)
    report = Report()

    async def work(conn: asyncpg.Connection) -> None:
        do = admin.recorder(conn, report)
        roles = {r["rolname"]: r for r in await conn.fetch(sql.role_state_sql, [owner, role_a, role_b])}
        db = await conn.fetchrow(sql.database_state_sql, database)
        report.database_bytes = db["size_bytes"] if db else None
        # Ownership first: nothing is written to an object another Tenant's UID marks.
        marks = Ownership(f"postgres backend {target.name}", want)
        for role in (owner, role_a, role_b):
            marks.see(f"role {role}", names.parse_owner_mark(roles[role]["mark"]) if role in roles else None)
        # The database's comment is writable by its owner, that is by the tenant itself; the roles' marks
        # (only CREATEROLE holders may comment on a role) decide whose it is. Its own mark counts only
        # when none of the roles exists, and a mark the tenant changed is put back, never obeyed.
        db_mark = names.parse_owner_mark(db["mark"]) if db else None
        if not roles:
            marks.see(f"database {database}", db_mark)
        marks.check()
        report.refused = "; ".join(await admin.strip_powers(conn, roles, do))
        foreign = foreign_members(roles, want)
        for role, member in foreign:
            await do(sql.revoke_membership(role, member), f"membership of {member} in {role}",
                     "another tenant's role is a member (it would have this tenant's privileges)")
        if f"database {database}" not in marks.to_mark and db_mark != want.uid:
            marks.to_mark.append(f"database {database}")
            if db_mark in want.adopt_uids:
                marks.adopted.append(f"database {database}")
        mark = names.owner_mark(want.uid)
        for left in await admin.leftovers(conn, [owner, role_a, role_b]):
            await do(sql.revoke_role_from_admin(left), f"admin membership in {left}",
                     "left by an interrupted pass (join without leave)")
        if owner not in roles:
            await do(sql.create_role(owner, login=False), f"role {owner}")
        for slot, role in (("a", role_a), ("b", role_b)):
            await admin.converge_login_role(conn, do, report, want, slot=slot, role=role, owner=owner,
                                            state=roles.get(role),
                                            password_works=lambda r, p: admin.password_works(target, r, p))
        # `db` as read above: nothing since changes the database's row (role writes only).
        if db is not None and db["datconnlimit"] == sql.INVALID_DATABASE:
            raise BackendRefused(
                f"postgres backend {target.name}: database {database} is invalid (a DROP DATABASE of it was cut "
                "off; PostgreSQL refuses connections to it and part of its data may be gone). The operator "
                "neither drops nor recreates it: restore it from an archive or a backup, or drop it "
                f"(DROP DATABASE {sql.ident(database)}) and the next pass makes an empty one")
        # What only the database's owner may do, the admin does as a member of the owner role for the
        # moment (postgres_admin); steady state needs none of it, so it joins nothing.
        doors = open_doors(db, want, (owner, role_a, role_b))
        as_owner = db is None or f"database {database}" in marks.to_mark or db["public_connect"] or bool(doors) or (
            db["datconnlimit"] != want.connection_limit)
        # A grant is revoked as its grantor: the owner, or a login role (members of the owner may grant).
        joined = await admin.join(conn, sorted({owner, *(g for _, g, _ in doors)})) if as_owner else []
        try:
            if db is None:
                await do(sql.create_database(database, owner, want.connection_limit), f"database {database}")
                db = await conn.fetchrow(sql.database_state_sql, database)
            for obj in marks.to_mark:
                kind, name = obj.split(" ", 1)
                # A new object's mark is part of making it; on an old one the mark is a write of its own.
                await do(sql.comment_on_role(name, mark) if kind == "role" else sql.comment_on_database(name, mark),
                         obj if obj in report.repaired else f"ownership mark on {obj}")
            if db["datconnlimit"] != want.connection_limit:
                await do(sql.alter_database_limit(database, want.connection_limit), f"connection limit of {database}",
                         f"datconnlimit {db['datconnlimit']} (want {want.connection_limit})")
            if db["public_connect"]:
                async with conn.transaction():  # as the owner: the admin's own grant options must not decide
                    await conn.execute(sql.set_local_role(owner))
                    await do(sql.revoke_public_connect(database), f"PUBLIC connect on {database}", "PUBLIC may connect")
            for role, grantor, privileges in doors:
                # The tenant may grant its database (it owns it) but not open it to another tenant or PUBLIC.
                async with conn.transaction():
                    if grantor != owner:
                        # PostgreSQL revokes as a role holding every named privilege with grant option, else
                        # as the owner: a grantor that lost its option (the tenant revoked it; the cascade
                        # spared its grants, as a member of the owner) gets it back for the moment.
                        await conn.execute(sql.set_local_role(owner))
                        await conn.execute(sql.grant_with_option(database, privileges, grantor))
                    await conn.execute(sql.set_local_role(grantor))
                    await do(sql.revoke_on_database(database, privileges, role),
                             f"grant on {database} to {role or 'PUBLIC'} by {grantor}",
                             "another tenant's role (or PUBLIC) holds a privilege on it")
            if doors or foreign:
                try:
                    ended = await conn.fetchval(sql.terminate_guests_sql, database, [owner, role_a, role_b])
                except asyncpg.exceptions.InsufficientPrivilegeError:
                    ended = 0  # an admin without pg_signal_backend: the sessions end when their clients go
                if ended:
                    report.repaired.append(f"{ended} sessions of other roles in {database} ended")
        finally:
            if joined:
                await admin.leave(conn, joined)
        report.adopted += marks.adopted
        if want.suspended:
            ended = await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
            if ended:
                report.repaired.append(f"{ended} sessions ended")
        report.version = await conn.fetchval("SHOW server_version")

    await pools.run(target, work)
    report.endpoints = endpoints(target, want.tenant, want.slot, want.password)
    return report


def open_doors(db: Mapping[str, Any] | None, want: TenantSlice,
               ours: tuple[str, ...]) -> list[tuple[str, str, list[str]]]:
    """(grantee, grantor, privileges) of the grants on the tenant's database that `ensure` revokes, as their grantor.

    A tenant owns its database and may GRANT on it: to another Tenant's role (marked with another UID)
    that opens a door between tenants; to PUBLIC (grantee "") too, when one of its login roles made
    it (the owner's own PUBLIC grant goes with `revoke_public_connect`). Only grants made by the
    tenant's roles (`ours`: owner first, then the login roles) are revoked; platform roles (unmarked,
    or a comment that is no mark) keep what the platform granted them. `db`: a `database_state_sql`
    row (grantees as JSON text)."""
    if db is None:
        return []
    out = []
    for grant in json.loads(db["grantees"] or "[]"):
        role, grantor, mark = grant["role"], grant["grantor"], grant["mark"]
        if grantor not in ours or role in ours:
            continue
        foreign = another_tenants(mark, want)
        privileges = [p for p in grant.get("privileges") or [] if p in sql.DATABASE_PRIVILEGES]
        if privileges and (foreign or (role == "" and grantor != ours[0])):
            out.append((role, grantor, privileges))
    return sorted(out)


def endpoints(target: Target, tenant: str, slot: str, password: str) -> dict[str, str]:
    """What the credentials Secret holds for PostgreSQL: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and
    DATABASE_URL for the login role of `slot` on this server."""
    database, user, host = names.pg_database(tenant), names.pg_login_role(tenant, slot), target.app_host
    return {
        "PGHOST": host,
        "PGPORT": str(target.port),
        "PGDATABASE": database,
        "PGUSER": user,
        "PGPASSWORD": password,
        "DATABASE_URL": f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{target.port}/{database}",
    }


async def close(target: Target, tenant: str) -> list[str]:
    """Close the tenant's door and keep its data: both login roles NOLOGIN, their sessions ended."""
    _database, owner, role_a, role_b = _roles(tenant)
    done: list[str] = []

    async def work(conn: asyncpg.Connection) -> None:
        roles = {r["rolname"]: r for r in await conn.fetch(sql.role_state_sql, [owner, role_a, role_b])}
        for role in (role_a, role_b):
            if role in roles and roles[role]["rolcanlogin"]:
                await conn.execute(sql.no_login(role))
                done.append(f"login {role} off")
        # NOLOGIN stops new sessions only; a session opened before keeps going until it is ended.
        ended = await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
        if ended:
            done.append(f"{ended} sessions ended")

    await pools.run(target, work)
    return done


async def activity(target: Target, tenant: str) -> dict[str, int | None]:
    """{"open": sessions of the tenant's login roles now, "established": client sessions ever established to
    its database (None without one)}. Reads only."""
    database, _owner, role_a, role_b = _roles(tenant)

    async def work(conn: asyncpg.Connection) -> dict[str, int | None]:
        row = await conn.fetchrow(sql.activity_sql, [role_a, role_b], database)
        return {"open": int(row["open"] or 0),
                "established": None if row["established"] is None else int(row["established"])}

    return await pools.run(target, work)
