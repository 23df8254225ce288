"""Admin views of each backend, for asserting what exists (pg_catalog, ACL GETUSER, OpenBao reads, OpenSearch)."""

from __future__ import annotations

import asyncio
import os
import ssl

import asyncpg
import hvac
import redis
from opensearchpy import OpenSearch


def pg_admin(sql: str, *args, database: str = "postgres"):
    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                                     user=os.environ["PGUSER"], password=os.environ["PGPASSWORD"], database=database)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def pg_roles(prefix: str) -> set[str]:
    return {r["rolname"] for r in pg_admin("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")}


def pg_databases(prefix: str) -> set[str]:
    return {r["datname"] for r in pg_admin("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%")}


def redis_admin() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def vault_admin() -> hvac.Client:
    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    client.session.trust_env = False
    return client


def vault_exists(path: str) -> bool:
    try:
        return vault_admin().read(path) is not None
    except hvac.exceptions.InvalidPath:
        return False


def search_admin() -> OpenSearch:
    """The platform's OpenSearch as its admin (all_access; SEARCH_* of .platform/opensearch.env)."""
    return OpenSearch(hosts=[os.environ["SEARCH_URL"]],
                      http_auth=(os.environ["SEARCH_ADMIN_USERNAME"], os.environ["SEARCH_ADMIN_PASSWORD"]),
                      ssl_context=ssl.create_default_context(cafile=os.environ["SEARCH_CA_FILE"]), timeout=30,
                      max_retries=0)
