"""Acting as a tenant's application: read its Secret, then talk to each server with those credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl

import asyncpg
import hvac
import redis
from opensearchpy import OpenSearch

from .kube import kubectl


def credentials(tenant: str, namespace: str | None = None) -> dict[str, str]:
    out = kubectl("get", "secret", "tenant-credentials", "-n", namespace or f"tenant-{tenant}", "-o", "json").stdout
    return {k: base64.b64decode(v).decode() for k, v in json.loads(out)["data"].items()}


def pg(creds: dict[str, str], sql: str, database: str | None = None, *args):
    async def go():
        conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                     password=creds["PGPASSWORD"], database=database or creds["PGDATABASE"], timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def redis_client(creds: dict[str, str]) -> redis.Redis:
    return redis.Redis(host=creds["REDIS_HOST"], port=int(creds["REDIS_PORT"]), username=creds["REDIS_USERNAME"],
                       password=creds["REDIS_PASSWORD"], socket_timeout=5, decode_responses=True)


def vault_login(creds: dict[str, str], namespace: str, role: str | None = None) -> hvac.Client:
    """Log in the way the tenant's pods would: a token of ServiceAccount tenant-app."""
    jwt = kubectl("create", "token", "tenant-app", "-n", namespace).stdout.strip()
    client = hvac.Client(url=creds["VAULT_ADDR"])
    client.session.trust_env = False
    client.auth.kubernetes.login(role or creds["VAULT_ROLE"], jwt, mount_point="kubernetes")
    return client


def search_client(creds: dict[str, str]) -> OpenSearch:
    """OpenSearch as the tenant's app: its URL, user and password, the CA from its Secret."""
    context = ssl.create_default_context(cadata=creds["SEARCH_CA_CERT"])
    return OpenSearch(hosts=[creds["SEARCH_URL"]], http_auth=(creds["SEARCH_USERNAME"], creds["SEARCH_PASSWORD"]),
                      ssl_context=context, timeout=10, max_retries=0)
