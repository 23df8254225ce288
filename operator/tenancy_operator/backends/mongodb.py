"""MongoDB adapter, for FerretDB v1 on its PostgreSQL handler: the server itself fences tenants.

FerretDB v1 without `--test-enable-new-auth` takes a client's PLAIN username and password and logs
in to PostgreSQL as that role; every MongoDB database is a PostgreSQL schema of FerretDB's database.
So a MongoDB user here *is* a PostgreSQL login role, and PostgreSQL's grants decide what it may read
or write (docs/mongodb.md records what was tried and what each setup refused).

Per tenant: database (schema) `t_<name>`, in which the NOLOGIN role `m_<name>_owner` may create and
owns every collection (the schema and FerretDB's catalogue table stay the admin's), and two login
roles `m_<name>_a` / `m_<name>_b` (the rotation slots, as for PostgreSQL), members of the owner with
`SET role` defaulting to it, so every collection either slot makes belongs to the owner. Nothing
else is granted: another tenant's schema and tables refuse every statement.

Two connections per Backend: pymongo (PLAIN, as the admin role) makes and drops the database
through FerretDB, so FerretDB's in-memory catalogue knows it; asyncpg (same role, straight to
PostgreSQL; Secret keys `postgresHost`, `postgresPort`, `postgresDatabase`) manages roles, owners
and marks, and reads all state for verify. Ownership marks are `COMMENT ON ROLE` (only CREATEROLE
holders can write them; a tenant owns its schema, so a schema comment would be forgeable).

FerretDB keeps one PostgreSQL pool per username *and password* and does not check a password again
while a pooled connection lives: whenever a login role loses its login or its password, its
PostgreSQL sessions are ended too, or the old password would keep working through the pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import pymongo
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from ..api import names
from . import mongodb_schema as schema_
from . import postgres_admin
from . import postgres_sql as sql
from .base import (
    BackendRefused,
    BackendUnavailable,
    OwnedByAnotherTenant,
    Ownership,
    Report,
    Target,
    TenantSlice,
    foreign_members,
)

__all__ = ["ensure", "close", "delete", "probe", "forget_cache", "mongodb_uri"]

_INIT_COLLECTION = "tenancy_init"
_clients: dict[tuple[str, str, int, str, str], pymongo.MongoClient] = {}

_connect_sql = "SELECT has_database_privilege($1, current_database(), 'CONNECT')"
# FerretDB's database is every MongoDB tenant's: PUBLIC (every role on the server) must neither connect,
# make temporary objects there, nor create in schema public (PostgreSQL 14 and older grant that by
# default), where a function could shadow one another session calls.
_public_sql = """
SELECT has_database_privilege('public', current_database(), 'CONNECT')
       OR has_database_privilege('public', current_database(), 'TEMPORARY') AS database_open,
       COALESCE((SELECT has_schema_privilege('public', n.oid, 'CREATE') FROM pg_namespace n
                 WHERE n.nspname = 'public'), false) AS schema_open
"""
# Sessions locking a catalogue table (another tenant's included): this database's client sessions of
# non-superusers.
_terminate_lockers_sql = """
SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation = to_regclass($1) AND l.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND NOT COALESCE((SELECT rolsuper FROM pg_roles WHERE oid = a.usesysid), true)
"""
# postgres_sql.role_state_sql without the verifier: pg_authid is for superusers, and this admin is not
# one (CREATEROLE and the owner of FerretDB's database). A password is checked by logging in instead.
role_state_sql = """
SELECT r.rolname, r.rolcanlogin, r.rolconnlimit, shobj_description(r.oid, 'pg_authid') AS mark,
       COALESCE((SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
                 WHERE s.setrole = r.oid AND s.setdatabase = 0), '') AS settings,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid) AS member_of,
{powers},
{members},
       pg_has_role(current_user, r.oid, 'USAGE') AS admin_member
FROM pg_roles r WHERE r.rolname = ANY($1::text[])
""".replace("{members}", sql.ROLE_MEMBERS).replace("{powers}", sql.ROLE_POWERS)


def mongodb_uri(user: str, password: str, host: str, port: int, database: str, tls: bool = False) -> str:
    """What apps use: PLAIN over the wire, so FerretDB can hand the password to PostgreSQL."""
    return (f"mongodb://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"
            f"?authMechanism=PLAIN&authSource=%24external{'&tls=true' if tls else ''}")


def _mongo(target: Target) -> pymongo.MongoClient:
    # Keyed by the admin credentials too: FerretDB takes any password at the handshake and hands it to
    # PostgreSQL later, so a client made from a wrong Secret would keep failing after the Secret is fixed.
    key = (target.name, target.host, target.port, target.username, target.password)
    client = _clients.get(key)
    if client is None:
        for old in [k for k in _clients if k[0] == target.name]:  # the same Backend's earlier Secret
            _clients.pop(old).close()
        client = pymongo.MongoClient(target.host, target.port, username=target.username, password=target.password,
                                     authMechanism="PLAIN", authSource="$external", tls=target.tls,
                                     serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, socketTimeoutMS=10000,
                                     retryWrites=False)
        _clients[key] = client
    return client


async def _in_mongo(target: Target, fn: Callable[[pymongo.MongoClient], Any], client: pymongo.MongoClient | None = None
                    ) -> Any:
    try:
        return await asyncio.to_thread(fn, client or _mongo(target))
    except ConnectionFailure as exc:
        raise BackendUnavailable(f"mongodb backend {target.name} unreachable: {exc}") from exc
    except OperationFailure as exc:
        raise BackendRefused(f"mongodb backend {target.name} refused: {exc}") from exc
    except PyMongoError as exc:
        raise BackendUnavailable(f"mongodb backend {target.name} failed: {exc}") from exc


async def _mongo_as(login: Target, fn: Callable[[pymongo.MongoClient], Any]) -> Any:
    """`fn` with a client of `login`'s own credentials (not cached: closed when done)."""
    client = pymongo.MongoClient(login.host, login.port, username=login.username, password=login.password,
                                 authMechanism="PLAIN", authSource="$external", tls=login.tls,
                                 serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, socketTimeoutMS=10000,
                                 retryWrites=False)
    try:
        return await _in_mongo(login, fn, client)
    finally:
        client.close()


def _pg_address(target: Target) -> dict[str, Any]:
    extra = target.extra
    return {"host": extra.get("postgresHost") or target.host, "port": int(extra.get("postgresPort") or 5432),
            "database": extra.get("postgresDatabase") or "ferretdb"}


async def _password_works(target: Target, role: str, password: str) -> bool:
    """Does the role hold this password? Asked as postgres_admin.password_works asks (a login to
    `template0`: authentication comes first, any later refusal means the password works), so a tenant
    at its connection limit is not taken for a changed password (which rewrote it and ended every
    session of a busy tenant on each pass). No session starts."""
    address = _pg_address(target)
    pg = dataclasses.replace(target, host=address["host"], port=address["port"], tls=False)
    return await postgres_admin.password_works(pg, role, password) is not False


async def _in_pg(target: Target, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    try:
        conn = await asyncpg.connect(user=target.username, password=target.password, timeout=5,
                                     **_pg_address(target))
    except (TimeoutError, OSError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"mongodb backend {target.name}: its PostgreSQL is unreachable: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"mongodb backend {target.name}: its PostgreSQL refused the admin login: {exc}") from exc
    try:
        return await work(conn)
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError) as exc:
        raise BackendUnavailable(f"mongodb backend {target.name}: its PostgreSQL failed: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"mongodb backend {target.name}: its PostgreSQL refused: {exc}") from exc
    finally:
        await conn.close()


def _catalogue_role(target: Target) -> str:
    """The NOLOGIN role that may read every database's FerretDB catalogue table (Secret key
    `catalogueRole`, default `ferretdb_catalogue`); every tenant's owner joins it.

    Why: FerretDB loads its in-memory catalogue once, as the first client that needs it, and lists only
    the schemas that client's role can see. Loaded as a tenant that sees only its own, every other
    tenant's database reads as empty and refuses writes until FerretDB restarts (measured, see
    docs/mongodb.md). Seeing each other's catalogue tables tells a tenant only database and collection
    names, which FerretDB's shared catalogue already lists to every client; documents stay fenced.
    """
    return target.extra.get("catalogueRole") or "ferretdb_catalogue"


def forget_cache(target: Target | None = None) -> None:
    """Drop cached clients (they hold connections only; every comparison reads the catalogs afresh)."""
    for key in [k for k in _clients if target is None or k[0] == target.name]:
        _clients.pop(key).close()


async def probe(target: Target) -> str:
    """FerretDB's version (buildInfo, a read); its PostgreSQL must answer the admin too."""
    info = await _in_mongo(target, lambda c: c.admin.command("buildInfo"))
    await _in_pg(target, lambda conn: conn.fetchval("SELECT 1"))
    return str(info.get("version", ""))


def _roles(tenant: str) -> tuple[str, str, str, str]:
    return (names.mongo_database(tenant), names.mongo_owner_role(tenant),
            names.mongo_login_role(tenant, "a"), names.mongo_login_role(tenant, "b"))


def _create_database(client: pymongo.MongoClient, database: str) -> None:
    # FerretDB makes a database (schema and catalogue table) only with its first collection.
    db = client[database]
    if _INIT_COLLECTION not in db.list_collection_names():
        db.create_collection(_INIT_COLLECTION)
    db.drop_collection(_INIT_COLLECTION)


async def ensure(target: Target, want: TenantSlice) -> Report:
    database, owner, role_a, role_b = _roles(want.tenant)
    report = Report()

    async def roles_and_marks(conn: asyncpg.Connection) -> dict[str, Any]:
        do = postgres_admin.recorder(conn, report)
        roles = {r["rolname"]: r for r in await conn.fetch(role_state_sql, [owner, role_a, role_b])}
        marks = Ownership(f"mongodb backend {target.name}", want)
        for role in (owner, role_a, role_b):
            marks.see(f"role {role}", names.parse_owner_mark(roles[role]["mark"]) if role in roles else None)
        marks.check()  # nothing is written to roles another Tenant's UID marks
        report.refused = "; ".join(await postgres_admin.strip_powers(conn, roles, do))
        for role, member in foreign_members(roles, want):
            await do(sql.revoke_membership(role, member), f"membership of {member} in {role}",
                     "another tenant's role is a member (it would have this tenant's privileges)")
        if owner not in roles:
            await do(sql.create_role(owner, login=False), f"role {owner}")
        catalogue = _catalogue_role(target)
        if catalogue not in ((roles.get(owner) or {}).get("member_of") or []):
            if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", catalogue):
                raise BackendRefused(f"mongodb backend {target.name}: role {catalogue} (Secret key catalogueRole) does "
                                     "not exist on its PostgreSQL; create it NOLOGIN (docs/mongodb.md)")
            await do(sql.grant_membership(catalogue, owner), f"membership {owner} in {catalogue}")
        for slot, role in (("a", role_a), ("b", role_b)):
            await postgres_admin.converge_login_role(
                conn, do, report, want, slot=slot, role=role, owner=owner, state=roles.get(role),
                password_works=lambda r, p: _password_works(target, r, p),
                admin_member=True, end_sessions_on_new_password=True)
        mark = names.owner_mark(want.uid)
        for obj in marks.to_mark:
            name = obj.split(" ", 1)[1]
            await do(sql.comment_on_role(name, mark), obj if obj in report.repaired else f"ownership mark on {obj}")
        report.adopted += marks.adopted
        if not await conn.fetchval(_connect_sql, owner):
            await do(f"GRANT CONNECT ON DATABASE {sql.ident(await conn.fetchval('SELECT current_database()'))} "
                     f"TO {sql.ident(owner)}", f"CONNECT for {owner}")
        public = await conn.fetchrow(_public_sql)
        try:
            if public["database_open"]:
                await do(sql.revoke_public_connect(await conn.fetchval("SELECT current_database()")),
                         "PUBLIC connect on FerretDB's database", "PUBLIC may connect")
            if public["schema_open"]:
                await do("REVOKE CREATE ON SCHEMA public FROM PUBLIC", "PUBLIC create in FerretDB's schema public",
                         "PUBLIC may create there")
            if (public["database_open"] or public["schema_open"]) and any((await conn.fetchrow(_public_sql)).values()):
                # A REVOKE by a role that granted nothing only warns (the schema's owner is not the admin).
                raise asyncpg.exceptions.InsufficientPrivilegeError("the REVOKE left the grants in place")
        except asyncpg.exceptions.InsufficientPrivilegeError as exc:
            raise BackendRefused(
                f"mongodb backend {target.name}: PUBLIC may connect to FerretDB's database or create in its schema "
                f"public, which every tenant shares, and the admin may not revoke it ({exc}); run `REVOKE ALL ON "
                "DATABASE <ferretdb database> FROM PUBLIC` and `REVOKE CREATE ON SCHEMA public FROM PUBLIC` there "
                "as their owner") from exc
        if want.suspended:
            ended = await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
            if ended:
                report.repaired.append(f"{ended} sessions ended")
        return dict(await conn.fetchrow(schema_.state_sql, database, schema_.METADATA_TABLE, catalogue, owner) or {})

    schema = await _in_pg(target, roles_and_marks)
    if not schema or not schema.get("has_catalogue"):
        await _in_mongo(target, lambda c: _create_database(c, database))
        report.repaired.append(f"database {database}")
        report.diffs.setdefault(f"database {database}", "missing")

    catalogue = _catalogue_role(target)
    if schema_.needs_settling(schema, target.username):
        await _in_pg(target, lambda conn: schema_.settle(conn, f"mongodb backend {target.name}", target.username,
                                                         database, owner, catalogue, report))
    user = names.mongo_login_role(want.tenant, want.slot)
    host = target.app_host
    report.endpoints = {
        "MONGODB_HOST": host,
        "MONGODB_PORT": str(target.port),
        "MONGODB_DATABASE": database,
        "MONGODB_USERNAME": user,
        "MONGODB_PASSWORD": want.password,
        "MONGODB_URI": mongodb_uri(user, want.password, host, target.port, database, target.tls),
    }
    return report


async def close(target: Target, tenant: str) -> list[str]:
    """Close the tenant's door and keep its data: both login roles NOLOGIN, their sessions ended."""
    _database, owner, role_a, role_b = _roles(tenant)
    done: list[str] = []

    async def work(conn: asyncpg.Connection) -> None:
        roles = {r["rolname"]: r for r in await conn.fetch(role_state_sql, [owner, role_a, role_b])}
        for role in (role_a, role_b):
            if role in roles and roles[role]["rolcanlogin"]:
                await conn.execute(sql.no_login(role))
                done.append(f"login {role} off")
        ended = await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b])
        if ended:
            done.append(f"{ended} sessions ended")

    await _in_pg(target, work)
    return done


async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Drop the database (through FerretDB, so its catalogue forgets it), then the roles; raises
    OwnedByAnotherTenant, touching nothing, when a role's mark names another UID."""
    database, owner, role_a, role_b = _roles(tenant)
    dump_role = names.mongo_dump_role(tenant)  # an archive's, left by a killed operator
    done: list[str] = []

    async def check(conn: asyncpg.Connection) -> dict[str, Any]:
        roles = {r["rolname"]: r for r in await conn.fetch(role_state_sql, [owner, role_a, role_b, dump_role])}
        for role, state in roles.items():
            mark = names.parse_owner_mark(state["mark"])
            if mark not in (None, uid):
                raise OwnedByAnotherTenant(f"mongodb backend {target.name}", [f"role {role}"], mark)
        for role in (role_a, role_b, dump_role):
            if role in roles and roles[role]["rolcanlogin"]:
                await conn.execute(sql.no_login(role))  # no new session while the database goes
        await conn.fetchval(sql.terminate_sessions_sql, [role_a, role_b, dump_role])
        # Every tenant's roles may read this catalogue table (FerretDB loads all of them), so another
        # tenant could hold a lock on it: FerretDB's DROP SCHEMA would wait on it while holding its own
        # global lock, and every tenant's MongoDB requests with it. Its readers go, then its lockers.
        table = f"{sql.ident(database)}.{sql.ident(schema_.METADATA_TABLE)}"
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            await conn.execute(f"REVOKE ALL ON {table} FROM {sql.ident(_catalogue_role(target))}")
            try:
                await conn.fetchval(_terminate_lockers_sql, table)
            except asyncpg.exceptions.InsufficientPrivilegeError:
                pass  # an admin without pg_signal_backend: the drop then waits for the locker to let go
        return roles

    roles = await _in_pg(target, check)
    existed = await _in_mongo(target, lambda c: database in c.list_database_names())
    if existed:
        await _in_mongo(target, lambda c: c.drop_database(database))
        done.append(f"database {database}")

    async def drop_roles(conn: asyncpg.Connection) -> None:
        present = [r for r in (dump_role, role_a, role_b, owner) if r in roles]
        if present:
            await conn.execute(sql.drop_owned(present))
        for role in present:
            await conn.execute(sql.drop_role(role))
            done.append(f"role {role}")

    await _in_pg(target, drop_roles)
    return done
