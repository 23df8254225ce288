"""PostgreSQL part of an archive: `pg_dump --format=custom` of the tenant database, `pg_restore` back.

The tools come from the Backend's major version (`/usr/lib/postgresql/<major>/bin`, as Debian's
packages install them; `TENANCY_PG_BINDIR` overrides the pattern), because a pg_dump older than the
server refuses to dump it. The dump leaves out owners and grants (`--no-owner --no-acl`): restore
connects as the tenant's short-lived load role (backends.postgres_load: never the admin, whose
superuser a tenant function could reach with `RESET ROLE`) and acts as the owner role (`--role`), so
every object belongs to the new tenant's roles whatever the archived tenant was called. Passwords go
to the tools through the environment, never the command line.

pg_dump reads as the admin, a member of the tenant's roles for the duration (backends.postgres_admin:
a non-superuser admin may not otherwise connect to the tenant database): it runs no tenant code (catalog deparsing and `COPY ... TO` of plain
tables call only built-in functions; types with tenant-written I/O functions need a superuser to
create; `row_security` is off, so a policy makes it fail rather than run).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from ..api import names
from . import postgres_admin as admin
from . import postgres_sql as sql
from .base import BackendRefused, BackendUnavailable, Target
from .postgres_load import load_role

__all__ = ["bindir", "server_version", "database_size", "dump", "restore", "holds_data"]


def bindir(version: str) -> Path:
    """The folder holding pg_dump/pg_restore for a server version like '15.10 (Debian ...)'."""
    match = re.match(r"(\d+)", version or "")
    if not match:
        raise BackendRefused(f"cannot read a PostgreSQL major version from {version!r}")
    pattern = os.environ.get("TENANCY_PG_BINDIR", "/usr/lib/postgresql/{major}/bin")
    path = Path(pattern.format(major=match.group(1)))
    if not (path / "pg_dump").is_file():
        raise BackendRefused(f"no PostgreSQL {match.group(1)} client tools at {path} (pg_dump of the server's major "
                             "version is needed; install postgresql-client-" + match.group(1) + ")")
    return path


async def _connect(target: Target, database: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(host=target.host, port=target.port, user=target.username,
                                     password=target.password, database=database, timeout=10,
                                     ssl="require" if target.tls else None, server_settings=sql.IN_TENANT_DATABASE)
    except (OSError, TimeoutError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name} refused a connection to {database}: {exc}") from exc


async def server_version(target: Target) -> str:
    conn = await _connect(target, target.extra.get("database", "postgres"))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def database_size(target: Target, tenant: str) -> int:
    """The tenant database's size on disk (an upper guess of its dump's size, for progress); 0 when the
    admin may not read it (pg_database_size needs CONNECT on it or pg_read_all_stats)."""
    conn = await _connect(target, target.extra.get("database", "postgres"))
    try:
        return int(await conn.fetchval("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1",
                                       names.pg_database(tenant)) or 0)
    except asyncpg.InsufficientPrivilegeError:
        return 0
    finally:
        await conn.close()


_USER_NAMESPACE = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' " \
                  "AND n.nspname NOT LIKE 'pg_temp%'"
_HOLDS_DATA = (
    # relations, functions and types (enums, domains...) of the tenant's own, in any schema
    f"SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NAMESPACE}) "
    f"OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_NAMESPACE}) "
    f"OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER_NAMESPACE}) "
    # large objects live outside every schema
    "OR EXISTS (SELECT 1 FROM pg_largeobject_metadata) "
    # a schema besides public, even one holding nothing the lines above see (the dump's CREATE SCHEMA would clash)
    f"OR EXISTS (SELECT 1 FROM pg_namespace n WHERE {_USER_NAMESPACE} AND n.nspname <> 'public')"
)


@asynccontextmanager
async def _as_tenant(target: Target, tenant: str) -> AsyncIterator[None]:
    """The admin is a member of the tenant's roles for the duration: CONNECT on the tenant database is
    the owner's, and what a login role made outside `SET role` is readable only as that role."""
    roles = [names.pg_owner_role(tenant), names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b")]
    home = target.extra.get("database", "postgres")
    conn = await _connect(target, home)
    try:
        joined = await admin.join(conn, roles)
    finally:
        await conn.close()
    try:
        yield
    finally:
        if joined:
            conn = await _connect(target, home)
            try:
                await admin.leave(conn, joined)
            finally:
                await conn.close()


async def holds_data(target: Target, tenant: str) -> bool:
    """Does the tenant database hold anything of its own: a table, view, sequence, function or type in
    any schema, a large object, or a schema besides `public`?"""
    async with _as_tenant(target, tenant):
        return await _holds_data(target, tenant)


async def _holds_data(target: Target, tenant: str) -> bool:
    conn = await _connect(target, names.pg_database(tenant))
    try:
        return bool(await conn.fetchval(_HOLDS_DATA))
    finally:
        await conn.close()


async def _tool(target: Target, argv: list[str]) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": target.password, "PGCONNECT_TIMEOUT": "10",
           "PGSSLMODE": "require" if target.tls else "prefer"}
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip()[-800:]
        if "could not connect" in text or "Connection refused" in text:
            raise BackendUnavailable(f"postgres backend {target.name}: {Path(argv[0]).name}: {text}")
        raise BackendRefused(f"postgres backend {target.name}: {Path(argv[0]).name} failed: {text}")


def _conn_args(target: Target) -> list[str]:
    return ["--host", target.host, "--port", str(target.port), "--username", target.username, "--no-password"]


async def dump(target: Target, tenant: str, out: Path, version: str) -> None:
    tools = bindir(version)
    async with _as_tenant(target, tenant):
        await _tool(target, [str(tools / "pg_dump"), *_conn_args(target), "--format=custom", "--no-owner", "--no-acl",
                             "--file", str(out), "--dbname", names.pg_database(tenant)])


async def restore(target: Target, tenant: str, dump_file: Path, version: str, clean: bool) -> None:
    """Loads a dump into the tenant database as its owner role, connected as its load role; `clean`
    drops what the dump holds first."""
    tools = bindir(version)
    async with load_role(target, tenant) as loader:
        await _load(loader, tools, tenant, dump_file, clean)


async def _load(loader: Target, tools: Path, tenant: str, dump_file: Path, clean: bool) -> None:
    argv = [str(tools / "pg_restore"), *_conn_args(loader), "--no-owner", "--no-acl", "--exit-on-error",
            "--single-transaction", "--role", names.pg_owner_role(tenant), "--dbname", names.pg_database(tenant)]
    if clean:
        argv += ["--clean", "--if-exists"]
    await _tool(loader, [*argv, str(dump_file)])
