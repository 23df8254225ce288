"""MongoDB part of an archive: every collection of the tenant's database, its indexes and documents.

Read through FerretDB as a short-lived login, `m_<name>_dump` (api.names.mongo_dump_role): a member
of the tenant's owner role and nothing else, never the Backend's admin. Each collection is a table the
tenant owns and can change from PostgreSQL directly (its MongoDB user logs in there too): a forced
row-security policy calling its own function, or a view in the table's place, runs that function as
whoever reads. As the admin, a member of every tenant's owner role (and CREATEROLE), that would read
every tenant; as the dump role it has only what the tenant has. The role can log in for a few minutes
(VALID UNTIL), is dropped after the dump whatever happened, and a leftover is dropped before the next
one and with the tenant's other roles on delete. One JSON line per collection, `{"c": name, "indexes": [{"key": [[field, 1|-1], ...],
"name", "unique"}]}`, followed by one line per document, `{"c": name, "d": <document>}`, the document
in MongoDB Extended JSON (canonical mode: types such as ObjectId, dates and 64-bit integers come back
as they were). Restore writes through FerretDB as the admin, then gives each new collection's table
to the tenant's owner role, as a collection the tenant made itself would be. The database is always
the target tenant's (named here, never read from the archive); before the first write `check` refuses
the part (archive_checks.Unsafe) for a collection name MongoDB reserves (`system.*`, FerretDB's
`_ferretdb_*`, `$`, control characters) or a document outside any collection.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pymongo
from bson import json_util

from ..api import names
from . import postgres_sql as sql
from .archive_checks import Unsafe
from .base import Target
from .mongodb import _in_mongo, _in_pg, _mongo_as

DUMP_LIFETIME = datetime.timedelta(minutes=10)
"""How long the dump role may log in (the dump's sessions start right after it is made)."""

__all__ = ["dump", "dump_login", "drop_dump_role", "check", "restore", "holds_data", "server_version"]

_BATCH = 500
_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True)


async def server_version(target: Target) -> str:
    info = await _in_mongo(target, lambda c: c.admin.command("buildInfo"))
    return str(info.get("version", ""))


def _collections(db: pymongo.database.Database) -> list[str]:
    return sorted(db.list_collection_names())


async def drop_dump_role(target: Target, tenant: str) -> bool:
    """Remove the tenant's dump role if there is one (a finished dump's, or a killed operator's): no
    login, its sessions ended, what it came to own dropped, then the role. Returns whether there was one."""
    role = names.mongo_dump_role(tenant)

    async def work(conn: asyncpg.Connection) -> bool:
        if not await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role):
            return False
        await conn.execute(sql.no_login(role))
        await conn.fetchval(sql.terminate_sessions_sql, [role])
        await conn.execute(sql.drop_owned([role]))
        await conn.execute(sql.drop_role(role))
        return True

    return await _in_pg(target, work)


@asynccontextmanager
async def dump_login(target: Target, tenant: str) -> AsyncIterator[Target]:
    """`target` with the admin's credentials swapped for a fresh dump role's, for the duration."""
    role, owner = names.mongo_dump_role(tenant), names.mongo_owner_role(tenant)
    await drop_dump_role(target, tenant)
    password = secrets.token_urlsafe(32)
    until = (datetime.datetime.now(datetime.UTC) + DUMP_LIFETIME).strftime("%Y-%m-%d %H:%M:%S+00")

    async def make(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute(f"{sql.create_role(role, login=True)} INHERIT CONNECTION LIMIT 4 "
                               f"PASSWORD {sql.literal(sql.scram_verifier(password))} VALID UNTIL {sql.literal(until)}")
            # The admin's membership: ending the role's sessions and DROP OWNED BY it need it (not superuser).
            await conn.execute(f"GRANT {sql.ident(role)} TO CURRENT_USER")
            await conn.execute(sql.grant_membership(owner, role))

    try:
        await _in_pg(target, make)
        yield dataclasses.replace(target, username=role, password=password)
    finally:
        await drop_dump_role(target, tenant)


async def dump(target: Target, tenant: str, out: Path) -> dict[str, int]:
    """Writes the tenant's collections to `out`, read as the dump role; returns `{collections, documents}`."""
    database = names.mongo_database(tenant)

    def work(client: pymongo.MongoClient) -> dict[str, int]:
        db, documents = client[database], 0
        collections = _collections(db)
        with out.open("w") as f:
            for name in collections:
                indexes = [{"key": [[k, v] for k, v in spec["key"]], "name": index, "unique": bool(spec.get("unique"))}
                           for index, spec in sorted(db[name].index_information().items()) if index != "_id_"]
                f.write(json.dumps({"c": name, "indexes": indexes}) + "\n")
                for doc in db[name].find({}, sort=[("_id", 1)], batch_size=_BATCH):
                    f.write(json.dumps({"c": name, "d": json.loads(json_util.dumps(doc, json_options=_OPTIONS))}) + "\n")
                    documents += 1
        return {"collections": len(collections), "documents": documents}

    async with dump_login(target, tenant) as login:
        return await _mongo_as(login, work)


async def holds_data(target: Target, tenant: str) -> bool:
    return bool(await _in_mongo(target, lambda c: _collections(c[names.mongo_database(tenant)])))


def _collection(name: Any) -> str:
    if (not isinstance(name, str) or not name or len(name.encode()) > 235 or "$" in name
            or any(ord(ch) < 32 for ch in name) or name.startswith(("system.", "_ferretdb_"))):
        raise Unsafe("mongodb", f"collection name {name!r} is not one a tenant's collection can have (empty, over "
                                "235 bytes, '$', a control character, or reserved: system.*, _ferretdb_*)")
    return name


def _line(raw: str, number: int, current: str | None) -> tuple[dict[str, Any], str | None]:
    """One line of the part and the collection it belongs to; Unsafe when it is neither a collection
    (with a safe name) nor a document of the collection above it."""
    item = json.loads(raw)
    if isinstance(item, dict) and "indexes" in item and isinstance(item["indexes"], list):
        return item, _collection(item.get("c"))
    if isinstance(item, dict) and isinstance(item.get("d"), dict) and current is not None:
        return item, current
    raise Unsafe("mongodb", f"line {number} is neither a collection nor a document of one")


def check(lines: Path) -> int:
    """How many collections the part holds, once every line is safe to load; writes nothing."""
    current, collections = None, 0
    with lines.open() as f:
        for number, raw in enumerate(f, 1):
            item, current = _line(raw, number, current)
            collections += "indexes" in item
    return collections


async def restore(target: Target, tenant: str, lines: Path) -> int:
    """Loads every collection of the archive (an archived collection already there is dropped first:
    the caller refuses a tenant holding data unless overwrite); returns the documents written."""
    database, owner = names.mongo_database(tenant), names.mongo_owner_role(tenant)

    def work(client: pymongo.MongoClient) -> int:
        db, count, batch, current = client[database], 0, [], None

        def flush() -> None:
            if batch:
                db[current].insert_many(batch, ordered=True)
                batch.clear()

        with lines.open() as f:
            for number, line in enumerate(f, 1):
                item, name = _line(line, number, current)
                if "indexes" in item:
                    flush()
                    current = name
                    db.drop_collection(current)
                    db.create_collection(current)
                    for index in item["indexes"]:
                        db[current].create_index([(k, v) for k, v in index["key"]], name=index["name"],
                                                 unique=index["unique"])
                    continue
                batch.append(json_util.loads(json.dumps(item["d"]), json_options=_OPTIONS))
                count += 1
                if len(batch) >= _BATCH:
                    flush()
        flush()
        return count

    count = await _in_mongo(target, work)

    async def give_to_owner(conn: asyncpg.Connection) -> None:
        # Collections the admin made belong to it; the tenant's roles reach only what its owner owns.
        for row in await conn.fetch("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                    "WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> $2 "
                                    "AND pg_get_userbyid(c.relowner) <> $3", database,
                                    "_ferretdb_database_metadata", owner):
            await conn.execute(f"ALTER TABLE {sql.ident(database)}.{sql.ident(row['relname'])} "
                               f"OWNER TO {sql.ident(owner)}")

    await _in_pg(target, give_to_owner)
    return count
