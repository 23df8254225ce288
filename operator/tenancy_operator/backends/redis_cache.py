"""Redis cache budget: measure one tenant's memory under its prefix by sampling, evict its coldest keys.

Read `reconcile/cache.py` for the estimate and its error bound. Every key this module reads or
removes is checked to start with the tenant's prefix `t:<name>:` (SCAN's MATCH pattern is a glob,
and tenant names hold no glob characters, but the check costs nothing): another tenant's key, and
the operator's own `tenancy:owner:<name>` marks, are never touched.

The admin user needs DBSIZE, SCAN, MEMORY USAGE, OBJECT, PTTL and UNLINK. Key names are read as
bytes (a tenant may use any bytes in its key names). Coldness per order: `OBJECT IDLETIME` (works
only while the server's `maxmemory-policy` is not an LFU one), `OBJECT FREQ` (only under an LFU
one), `PTTL`. When the server refuses the order's command, the other of IDLETIME/FREQ is used and
the pass says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..api import names
from . import redis_acl
from .base import BackendRefused, BackendUnavailable, Target

__all__ = ["Measured", "measure", "candidates", "unlink", "SCAN_COUNT", "MAX_VISITED", "MAX_SIZED"]

SCAN_COUNT = 1000
MAX_VISITED = 20_000
"""Keys of the whole database one measuring pass visits at most: the pass's cost, whatever the size."""
MAX_SIZED = 256
"""Keys of the tenant whose `MEMORY USAGE` one measuring pass reads at most."""
MAX_CANDIDATES = 200_000
"""Keys one eviction pass considers at most (the next pass continues)."""
_BATCH = 500

_clients: dict[tuple[str, str, int], aioredis.Redis] = {}


def _client(target: Target) -> aioredis.Redis:
    key = (target.name, target.host, target.port)
    if key not in _clients:
        _clients[key] = redis_acl.queueing_client(target, socket_timeout=10, decode_responses=False)
    return _clients[key]


def _fail(target: Target, exc: Exception) -> Exception:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return BackendUnavailable(f"redis backend {target.name} unreachable: {exc}")
    if isinstance(exc, ResponseError):
        return BackendRefused(f"redis backend {target.name} refused: {exc}")
    return BackendUnavailable(f"redis backend {target.name} failed: {exc}")


@dataclass(frozen=True)
class Measured:
    dbsize: int
    visited: int
    complete: bool
    matched: int
    sizes: tuple[int, ...]


def _spread(items: list[bytes], k: int) -> list[bytes]:
    """`k` items evenly spread over `items` (deterministic, so an idle tenant measures the same twice)."""
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


async def measure(target: Target, tenant: str) -> Measured:
    prefix = names.redis_prefix(tenant).encode()
    client = _client(target)
    try:
        dbsize = int(await client.dbsize())
        cursor, visited, matched, complete = 0, 0, [], False
        while True:
            cursor, keys = await client.scan(cursor, count=SCAN_COUNT)
            visited += len(keys)
            matched += [k for k in keys if k.startswith(prefix)]
            if int(cursor) == 0:
                complete = True
                break
            if visited >= MAX_VISITED:
                break
        sized = _spread(sorted(set(matched)), MAX_SIZED)
        pipe = client.pipeline(transaction=False)
        for key in sized:
            pipe.memory_usage(key)
        sizes = tuple(int(s) for s in await pipe.execute() if s is not None)  # None: gone since the scan
    except RedisError as exc:
        raise _fail(target, exc) from exc
    return Measured(dbsize, visited, complete, len(set(matched)), sizes)


_COMMAND = {"IdleTime": ("OBJECT", "IDLETIME"), "Frequency": ("OBJECT", "FREQ"), "TTL": ("PTTL",)}
_FALLBACK = {"IdleTime": "Frequency", "Frequency": "IdleTime"}


def _coldness(order: str, value: int) -> float:
    if order == "IdleTime":
        return float(value)
    if order == "Frequency":
        return -float(value)
    return -math.inf if value < 0 else -float(value)  # PTTL -1 (no TTL) goes last


async def _score(client: aioredis.Redis, keys: list[bytes], order: str) -> tuple[list[tuple[bytes, int, float]], bool]:
    """(key, size, coldness) of the keys still there; False when the server refused the order's command."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
        pipe.execute_command(*_COMMAND[order], key)
    replies = await pipe.execute(raise_on_error=False)
    scored = []
    for i, key in enumerate(keys):
        size, value = replies[2 * i], replies[2 * i + 1]
        if isinstance(value, ResponseError):
            if "no such key" in str(value).lower():
                continue
            return [], False
        if size is None or value is None:
            continue  # expired or deleted meanwhile
        scored.append((key, int(size), _coldness(order, int(value))))
    return scored, True


async def candidates(target: Target, tenant: str, needed: int, order: str,
                     ) -> tuple[list[tuple[bytes, int, float]], str]:
    """The tenant's keys scored for eviction: (key, size, coldness), and the order that scored them.

    Candidates: the tenant's keys by SCAN MATCH from cursor 0, until twice the `needed` keys are in
    hand (or the scan completes, or MAX_CANDIDATES); larger coldness goes first. With fewer candidates
    than the whole tenant, "coldest" is among a uniform sample, as Redis's own approximated LRU is.
    The order used differs from `order` when the server refused its command (see the module text).
    """
    prefix = names.redis_prefix(tenant).encode()
    client = _client(target)
    used = order
    try:
        cursor, found = 0, set()
        while True:
            cursor, keys = await client.scan(cursor, match=prefix + b"*", count=SCAN_COUNT)
            found.update(k for k in keys if k.startswith(prefix))
            if int(cursor) == 0 or len(found) >= max(2 * needed, _BATCH) or len(found) >= MAX_CANDIDATES:
                break
        ordered = sorted(found)
        scored: list[tuple[bytes, int, float]] = []
        for i in range(0, len(ordered), _BATCH):
            batch, ok = await _score(client, ordered[i:i + _BATCH], used)
            if not ok and used in _FALLBACK and i == 0:
                used = _FALLBACK[used]
                batch, ok = await _score(client, ordered[i:i + _BATCH], used)
            if not ok:
                raise BackendRefused(f"redis backend {target.name} refused {' '.join(_COMMAND[used])} "
                                     "for every eviction order it was tried with")
            scored += batch
    except RedisError as exc:
        raise _fail(target, exc) from exc
    return scored, used


async def unlink(target: Target, tenant: str, keys: list[bytes]) -> int:
    """UNLINK the keys that are the tenant's (any other is skipped); returns how many were removed."""
    prefix = names.redis_prefix(tenant).encode()
    client = _client(target)
    removed = 0
    try:
        for i in range(0, len(keys), _BATCH):
            chunk = [k for k in keys[i:i + _BATCH] if k.startswith(prefix)]
            if chunk:
                removed += int(await client.unlink(*chunk))
    except RedisError as exc:
        raise _fail(target, exc) from exc
    return removed
