"""Redis part of an archive: every key under the tenant prefix with DUMP and PTTL, RESTORE back.

Read with SCAN by the operator's admin user (tenants may not SCAN). One JSON line per key: the key
without the prefix and the DUMP payload (both base64, keys may be binary), its type and the
remaining time to live in milliseconds (0: none). RESTORE writes the key under the target tenant's
prefix with that TTL, so a key has as long left after a restore as it had when archived. A DUMP
payload is tied to the server's RDB version: the manifest records the server version.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..api import names
from .base import BackendRefused, BackendUnavailable, Target

__all__ = ["dump", "restore", "holds_data", "server_version"]

_BATCH = 500


def _client(target: Target) -> aioredis.Redis:
    return aioredis.Redis(host=target.host, port=target.port, username=target.username or None,
                          password=target.password or None, ssl=target.tls, socket_timeout=30,
                          socket_connect_timeout=5, decode_responses=False, protocol=2)


async def _guard(target: Target, work):
    client = _client(target)
    try:
        return await work(client)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise BackendUnavailable(f"redis backend {target.name} unreachable: {exc}") from exc
    except ResponseError as exc:
        raise BackendRefused(f"redis backend {target.name} refused: {exc}") from exc
    except RedisError as exc:
        raise BackendUnavailable(f"redis backend {target.name} failed: {exc}") from exc
    finally:
        await client.aclose()


async def server_version(target: Target) -> str:
    async def work(client):
        info = await client.info("server")
        return str(info.get("redis_version", ""))
    return await _guard(target, work)


async def dump(target: Target, tenant: str, out: Path) -> int:
    """Writes the tenant's keys to `out`; returns how many."""
    prefix = names.redis_prefix(tenant).encode()

    async def work(client) -> int:
        count, cursor = 0, 0
        with out.open("wb") as f:
            while True:
                cursor, keys = await client.scan(cursor, match=prefix + b"*", count=_BATCH)
                if keys:
                    pipe = client.pipeline(transaction=False)
                    for key in keys:
                        pipe.type(key)
                        pipe.pttl(key)
                        pipe.dump(key)
                    replies = await pipe.execute()
                    for i, key in enumerate(keys):
                        kind, ttl, payload = replies[3 * i: 3 * i + 3]
                        if payload is None or ttl == -2:  # expired between SCAN and DUMP
                            continue
                        f.write(json.dumps({"k": base64.b64encode(key[len(prefix):]).decode(),
                                            "t": kind.decode() if isinstance(kind, bytes) else str(kind),
                                            "ttl": max(int(ttl), 0),
                                            "v": base64.b64encode(payload).decode()}).encode() + b"\n")
                        count += 1
                if int(cursor) == 0:
                    return count
    return await _guard(target, work)


async def holds_data(target: Target, tenant: str) -> bool:
    prefix = names.redis_prefix(tenant).encode()

    async def work(client) -> bool:
        cursor = 0
        while True:
            cursor, keys = await client.scan(cursor, match=prefix + b"*", count=_BATCH)
            if keys:
                return True
            if int(cursor) == 0:
                return False
    return await _guard(target, work)


async def restore(target: Target, tenant: str, lines: Path) -> int:
    """RESTOREs every key of the archive under the tenant's prefix (REPLACE: a rerun is the same)."""
    prefix = names.redis_prefix(tenant).encode()

    async def work(client) -> int:
        count = 0
        pipe = client.pipeline(transaction=False)
        with lines.open("rb") as f:
            for line in f:
                item = json.loads(line)
                key = prefix + base64.b64decode(item["k"])
                pipe.restore(key, int(item["ttl"]), base64.b64decode(item["v"]), replace=True)
                count += 1
                if count % _BATCH == 0:
                    await pipe.execute()
                    pipe = client.pipeline(transaction=False)
        await pipe.execute()
        return count
    return await _guard(target, work)
