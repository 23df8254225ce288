"""Moving one tenant's PostgreSQL database between servers: freeze, copy, compare, drop.

The pieces the `migrate-database` workflow strings together; each is idempotent and reads first.

- Freeze: the tenant's two login roles get CONNECTION LIMIT 0 and their sessions are ended. A
  read-only default (`default_transaction_read_only`) would not freeze anything: any session may
  `SET` it off or `BEGIN READ WRITE`. A limit of 0 refuses every new session of a non-superuser role
  and keeps LOGIN and the password as they were, so thawing is one ALTER back.
- Copy: `pg_dump -Fc | pg_restore` with the client tools of the target's major version (a newer
  pg_dump reads older servers, never the reverse). Not logical replication: it needs `wal_level =
  logical` (a restart) and a superuser or REPLICATION role, which the least-privileged admin of a
  managed service does not have; with writes frozen, one consistent dump is the whole copy.
  pg_dump runs as the admin with `--role=<owner>` (the admin is made a member of the tenant's
  owner role for the dump and removed after; dumping runs no tenant code, see postgres_export).
  pg_restore connects as the tenant's short-lived load role (backends.postgres_load), never the
  admin: code the tenant wrote runs during a load and could `RESET ROLE` to whoever connected.
  With `--role=<owner>` every restored object belongs to the owner, as the adapter makes them. Grants a tenant made to roles of its own are not carried
  (`--no-privileges`): the target has only the tenant's own roles, which reach everything through
  the owner.
- Contents: per table, the row count and the MD5 of the sorted MD5s of its rows' text, plus each
  sequence's position, read with fixed output settings so both servers print values alike.

The admin password goes to the tools in their environment, never on a command line.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

import asyncpg

from ..api import names
from . import postgres_admin as admin
from . import postgres_sql as sql
from .base import BackendRefused, BackendUnavailable, Target
from .postgres_load import load_role

__all__ = ["freeze", "set_connection_limit", "frozen", "database_exists", "contents", "digest", "copy",
           "drop_database", "tools_for", "ToolsMissing"]

# Fixed output settings: the same value prints the same text on both servers.
_TEXT_SETTINGS = {"DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "TimeZone": "UTC", "extra_float_digits": "1",
                  "bytea_output": "hex", "row_security": "off", "default_transaction_read_only": "on",
                  "statement_timeout": "0", "lock_timeout": "30s"}


class ToolsMissing(BackendRefused):
    """No pg_dump/pg_restore of a major version that can read the source and write the target."""


async def _connect(target: Target, database: str = "", settings: dict[str, str] | None = None) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(host=target.host, port=target.port, user=target.username, password=target.password,
                                     database=database or target.extra.get("database", "postgres"), timeout=10,
                                     command_timeout=600, ssl="require" if target.tls else None,
                                     server_settings={**sql.IN_TENANT_DATABASE, **(settings or {})})
    except (TimeoutError, OSError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name}: cannot connect: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name}: cannot connect to {database or 'postgres'}: {exc}") from exc


async def _admin(target: Target, work, database: str = "", settings: dict[str, str] | None = None):
    conn = await _connect(target, database, settings)
    try:
        return await work(conn)
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name} failed: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise BackendRefused(f"postgres backend {target.name} refused: {exc}") from exc
    finally:
        await conn.close()


# pg_roles, not the adapter's role_state_sql: that one reads password verifiers (pg_authid), which
# needs a superuser; nothing here needs them.
_roles_sql = "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY rolname"


def _logins(tenant: str) -> list[str]:
    return [names.pg_login_role(tenant, "a"), names.pg_login_role(tenant, "b")]


async def set_connection_limit(target: Target, tenant: str, limit: int) -> list[str]:
    """Both login roles' CONNECTION LIMIT to `limit` (roles that do not exist are skipped); returns what changed."""
    async def work(conn: asyncpg.Connection) -> list[str]:
        changed = []
        for row in await conn.fetch(_roles_sql, _logins(tenant)):
            if row["rolconnlimit"] != limit:
                await conn.execute(sql.connection_limit(row["rolname"], limit))
                changed.append(f"connection limit of {row['rolname']} {row['rolconnlimit']} -> {limit}")
        return changed
    return await _admin(target, work)


async def freeze(target: Target, tenant: str, settle: float = 0.2, rounds: int = 25) -> int:
    """Limit 0 for the login roles, then end their sessions until none is left; returns how many ended.

    A session past its connection-limit check when the limit changed may show up a moment later, so
    ending sessions repeats until a look finds none. Raises BackendRefused when sessions keep coming.
    """
    await set_connection_limit(target, tenant, 0)

    async def work(conn: asyncpg.Connection) -> int:
        ended = 0
        for _ in range(rounds):
            now = await conn.fetchval(sql.terminate_sessions_sql, _logins(tenant))
            ended += now
            if not now and not await conn.fetchval(_sessions_sql, _logins(tenant)):
                return ended
            await asyncio.sleep(settle)
        raise BackendRefused(f"sessions of {', '.join(_logins(tenant))} on {target.name} keep coming back")
    return await _admin(target, work)


_sessions_sql = "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid()"


async def frozen(target: Target, tenant: str) -> str:
    """Why the tenant is not frozen on this server ('' when it is: both login roles at limit 0, no session)."""
    async def work(conn: asyncpg.Connection) -> str:
        rows = await conn.fetch(_roles_sql, _logins(tenant))
        open_ = [f"{r['rolname']} has connection limit {r['rolconnlimit']}" for r in rows if r["rolconnlimit"] != 0]
        sessions = await conn.fetchval(_sessions_sql, _logins(tenant))
        return "; ".join(open_ + ([f"{sessions} sessions of the login roles are open"] if sessions else []))
    return await _admin(target, work)


async def database_exists(target: Target, tenant: str) -> bool:
    return bool(await _admin(target, lambda c: c.fetchval(
        "SELECT count(*) FROM pg_database WHERE datname = $1", names.pg_database(tenant))))


async def objects_of(target: Target, tenant: str) -> list[str]:
    """The tenant's database and roles that exist on this server (nothing: a clean target)."""
    database, owner = names.pg_database(tenant), names.pg_owner_role(tenant)

    async def work(conn: asyncpg.Connection) -> list[str]:
        roles = [f"role {r['rolname']}" for r in await conn.fetch(_roles_sql, [owner, *_logins(tenant)])]
        db = await conn.fetchrow(sql.database_state_sql, database)
        return ([f"database {database}"] if db else []) + sorted(roles)
    return await _admin(target, work)


class _AsOwner:
    """The admin is a member of the tenant's owner role for the duration (it reads and writes as it)."""

    def __init__(self, target: Target, tenant: str):
        self.target, self.owner = target, names.pg_owner_role(tenant)

    async def __aenter__(self) -> str:
        # Only a membership it did not hold is taken, and so given back (backends.postgres_admin).
        self.joined = await _admin(self.target, lambda c: admin.join(c, [self.owner]))
        return self.owner

    async def __aexit__(self, *exc: object) -> None:
        if self.joined:
            await _admin(self.target, lambda c: admin.leave(c, self.joined))


_contents_sql = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 1
"""


# A table's checksum is the sum, as numeric (no overflow), of each row's md5 read as two 64-bit
# integers: the same multiset of rows gives the same sums in any order, with no sort and no string
# built (an md5 per row joined by string_agg hit PostgreSQL's 1 GB value limit near 33M rows).
_table_sums_sql = """
SELECT count(*),
       coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),
       coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)
FROM (SELECT md5(t::text) AS h FROM ONLY {table} AS t) AS x
"""


async def contents(target: Target, tenant: str) -> dict[str, str]:
    """`{"table <schema>.<name>": "<rows>:<md5 of the row-hash sums>", "sequence <schema>.<name>": "<last_value>:<is_called>"}`.

    Names come quoted by the server (`format('%I')`), so they go back into the statements as they are.
    Raises BackendRefused when the database does not exist or a table cannot be read.
    """
    async with _AsOwner(target, tenant) as owner:
        async def work(conn: asyncpg.Connection) -> dict[str, str]:
            await conn.execute(f"SET ROLE {sql.ident(owner)}")
            out: dict[str, str] = {}
            for row in await conn.fetch(_contents_sql):
                name = row["name"]
                if row["relkind"] == "S":
                    seq = await conn.fetchrow(f"SELECT last_value, is_called FROM {name}")
                    out[f"sequence {name}"] = f"{seq['last_value']}:{seq['is_called']}"
                    continue
                rows, high, low = await conn.fetchrow(_table_sums_sql.format(table=name))
                out[f"table {name}"] = f"{rows}:{hashlib.md5(f'{high}:{low}'.encode()).hexdigest()}"
            return out
        return await _admin(target, work, names.pg_database(tenant), _TEXT_SETTINGS)


def digest(found: dict[str, str]) -> str:
    """One checksum over `contents()`: equal digests mean equal tables, rows and sequences."""
    return hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(found.items())).encode()).hexdigest()


def _major(version: str) -> int:
    return int(re.match(r"\d+", version).group())


def tools_for(source_version: str, target_version: str, roots: str = "/usr/lib/postgresql") -> Path:
    """The bin folder of the client tools to use: the target's major version, else the oldest
    installed one that is at least both servers' (pg_dump refuses servers newer than itself)."""
    need = max(_major(source_version), _major(target_version))
    installed = sorted((int(Path(p).parent.name), Path(p)) for p in glob.glob(f"{roots}/*/bin")
                       if Path(p).parent.name.isdigit() and Path(p, "pg_dump").exists())
    fitting = [p for v, p in installed if v >= need]
    fitting = [p for v, p in installed if v == _major(target_version) and v >= need] or fitting
    if not fitting:
        raise ToolsMissing(f"no pg_dump/pg_restore of major version {need} or newer under {roots} "
                           f"(found {', '.join(str(v) for v, _ in installed) or 'none'}); install the client tools "
                           f"of PostgreSQL {_major(target_version)}")
    return fitting[0]


def _env(target: Target) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=target.password, PGSSLMODE="require" if target.tls else "prefer", PGCONNECT_TIMEOUT="10")
    return env


async def _tool(argv: list[str], env: dict[str, str], what: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackendRefused(f"{what} failed ({proc.returncode}): {err.decode(errors='replace').strip()[-800:]}")


async def copy(source: Target, target: Target, tenant: str) -> dict[str, str]:
    """Dump the tenant's database on `source` and restore it into the (empty) one on `target`.

    The target database must exist, owned by the tenant's owner role (the adapter's `ensure` makes
    it). Returns `{"copySeconds", "copyBytes", "tools"}`. Raises BackendRefused with the tool's own
    message when either tool fails, ToolsMissing when no suitable tools are installed.
    """
    versions = [await _admin(t, lambda c: c.fetchval("SHOW server_version")) for t in (source, target)]
    bindir = tools_for(*versions)
    database = names.pg_database(tenant)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tenancy-move-") as folder:
        dump = Path(folder) / "dump"
        async with _AsOwner(source, tenant) as owner:
            await _tool([str(bindir / "pg_dump"), "-h", source.host, "-p", str(source.port), "-U", source.username,
                         "-d", database, f"--role={owner}", "-Fc", "--no-owner", "--no-privileges", "-f", str(dump)],
                        _env(source), f"pg_dump of {database} on {source.name}")
        async with load_role(target, tenant) as loader:
            await _tool([str(bindir / "pg_restore"), "-h", loader.host, "-p", str(loader.port), "-U", loader.username,
                         "-d", database, f"--role={owner}", "--no-owner", "--no-privileges", "--exit-on-error",
                         "--single-transaction", str(dump)],
                        _env(loader), f"pg_restore of {database} on {target.name}")
        size = dump.stat().st_size
    return {"copySeconds": f"{time.monotonic() - started:.2f}", "copyBytes": str(size), "tools": str(bindir)}


async def drop_database(target: Target, tenant: str) -> bool:
    """Drop the tenant's database on this server (its roles stay); returns whether it existed."""
    database = names.pg_database(tenant)

    async def work(conn: asyncpg.Connection) -> bool:
        if not await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", database):
            return False
        await conn.execute(sql.not_a_template(database))
        await conn.execute(sql.drop_database(database))
        return True
    async with _AsOwner(target, tenant):  # DROP DATABASE is its owner's
        return await _admin(target, work)
