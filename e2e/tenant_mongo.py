"""MongoDB clients for e2e: a tenant's own (from its Secret) and the platform's PostgreSQL view of FerretDB."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pymongo


def mongo(creds: dict[str, str]) -> pymongo.MongoClient:
    """A fresh client from the tenant's MONGODB_URI, as its application would make one."""
    return pymongo.MongoClient(creds["MONGODB_URI"], serverSelectionTimeoutMS=4000, connectTimeoutMS=4000,
                               socketTimeoutMS=8000, retryWrites=False)


def ferret_pg(sql: str, *args):
    """A superuser statement in FerretDB's PostgreSQL database (the platform's `postgres` role)."""
    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), user=os.environ["PGUSER"],
                                     password=os.environ["PGPASSWORD"], database="ferretdb", timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def ferretdb_writes() -> int:
    """Rows inserted, updated or deleted in FerretDB's database (its tables and catalogs) and in the
    shared catalogs (roles, memberships, comments: PostgreSQL counts those under no database, for
    the whole server, so another tenant's role write counts too; at steady state there is none)."""
    row = ferret_pg("SELECT sum(tup_inserted + tup_updated + tup_deleted) AS n FROM pg_stat_database "
                    "WHERE datname = 'ferretdb' OR datid = 0")
    return int(row[0]["n"])


def purge_retained(*tenants: str) -> list[str]:
    """Drop what deleted Tenants of these names retained (an earlier run's Retain), through the adapter's
    own `delete`, which checks the ownership mark; a live Tenant's data is never touched."""
    import json

    from tenancy_operator.api import names
    from tenancy_operator.backends import mongodb
    from tenancy_operator.backends.base import Target

    from .backends_fixtures import ferretdb_admin
    from .kube import kubectl

    live = {t["metadata"]["name"] for t in json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]}
    admin = ferretdb_admin()
    target = Target("mongo-main", "mongodb", "127.0.0.1", int(admin["port"]), admin["username"], admin["password"],
                    extra={k: admin[k] for k in ("postgresHost", "postgresPort", "postgresDatabase")})
    done: list[str] = []
    for tenant in tenants:
        if tenant in live:
            continue
        row = ferret_pg("SELECT shobj_description(oid, 'pg_authid') AS m FROM pg_roles WHERE rolname = $1",
                        names.mongo_owner_role(tenant))
        uid = names.parse_owner_mark(row[0]["m"]) if row else None
        if uid:
            done += asyncio.run(mongodb.delete(target, tenant, uid))
    return done
