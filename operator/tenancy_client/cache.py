"""A two-tier cache for a tenant application: in-process (L1) in front of the tenant's Redis slice (L2).

    from tenancy_client import load
    from tenancy_client.cache import Cache
    cache = Cache(load())                       # or AsyncCache(load()) under asyncio
    cache.set("user:42", b"...", tier="hot")    # Redis key t:<tenant>:hot:user:42, the hot tier's TTL
    value = cache.get_or_load("user:42", load_user, tier="hot")   # one loader call per key at a time

Settings come from ConfigMap `tenant-cache` (`cache.json`, the CachePolicy the Tenant names), the
connection from the `tenant-credentials` Secret (`REDIS_URL`, `REDIS_KEY_PREFIX`). Without a policy
the defaults below apply. Every key gets the tenant's prefix; the Redis ACL user allows that prefix
alone, so a key or channel of another tenant is refused by the server (NOPERM), not only here.

- L1: least recently used values go first past `l1.maxBytes` (value sizes); an entry lives at most
  `l1.ttlSeconds` (0 turns L1 off).
- Single flight: concurrent misses of one key in one process call the loader once; the others wait.
- Invalidation: `set`, `delete` and `invalidate` publish the key on `t:<tenant>:invalidate`; every
  other instance subscribed drops its L1 copy (`listen=True`, the default).
- Values are `bytes` or `str` (the type comes back as it went in). Stored with a one-byte header:
  `b`/`s` plain, `B`/`S` zlib-compressed (values of at least `compressionThresholdBytes`).

Errors: redis-py's (`redis.exceptions.NoPermissionError` for a refused key or channel,
`ConnectionError`, ...) pass through unchanged; `KeyError` when the Secret lacks the Redis keys.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.connection
import redis.connection

try:  # C packing of whole commands (the `client` extra installs it); redis-py's own packing otherwise
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - depends on the install
    _pack_command = None

from .config import TenantConfig, load
from .tiers import L1, MISS, CacheSettings, Value, decode, encode

__all__ = ["Cache", "AsyncCache", "CacheSettings", "L1", "encode", "decode", "Value"]

_MISS = MISS


class _Base:
    def __init__(self, config: TenantConfig | None) -> None:
        self.config = config if config is not None else load()
        self.settings = CacheSettings.from_config(self.config)
        self.l1 = L1(self.settings.l1_max_bytes, self.settings.l1_ttl)
        self._id = uuid.uuid4().hex[:12]

    def _message(self, full_key: str) -> str:
        return f"{self._id} {full_key}"

    def _on_invalidation(self, data: Any) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        sender, _, key = text.partition(" ")
        if sender != self._id:
            self.l1.drop(key)

    def _redis_kwargs(self) -> tuple[str, dict[str, Any]]:
        return self.config.require("REDIS_URL"), {"socket_timeout": 5, "socket_connect_timeout": 3}


def _round_trip(client: redis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send the commands in one write and read every reply: redis-py's pipeline costs tens of microseconds
    per command in Python, this path packs with hiredis when installed (the `client` extra has it).

    An error reply (NOPERM, ...) is raised after every reply was read, so the connection stays in step.
    """
    try:
        conn = client.connection_pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = client.connection_pool.get_connection("GET")
    try:
        if _pack_command is not None and isinstance(conn, redis.connection.AbstractConnection):
            conn.send_packed_command([b"".join([_pack_command(c) for c in commands])])
        else:
            conn.send_packed_command(conn.pack_commands(commands))
        replies, error = [], None
        for _ in commands:
            try:
                replies.append(conn.read_response(disconnect_on_error=False))
            except redis.exceptions.ResponseError as exc:
                error = error or exc
                replies.append(exc)
        if error is not None:
            raise error
        return replies
    except BaseException:
        conn.disconnect()  # a half-read connection must never serve another call
        raise
    finally:
        client.connection_pool.release(conn)


class Cache(_Base):
    """The blocking API. `client`: a `redis.Redis` to use instead of one made from REDIS_URL."""

    def __init__(self, config: TenantConfig | None = None, *, client: redis.Redis | None = None,
                 listen: bool = True) -> None:
        super().__init__(config)
        url, kwargs = self._redis_kwargs()
        self.redis = client if client is not None else redis.Redis.from_url(url, **kwargs)
        self._flights: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._flights_lock = threading.Lock()
        self._listener = None
        if listen:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(**{self.settings.channel: lambda m: self._on_invalidation(m["data"])})
            pubsub.get_message(timeout=2.0)  # reads the server's answer: a refused channel raises here (NOPERM)
            self._listener = pubsub.run_in_thread(sleep_time=0.25, daemon=True,
                                                  exception_handler=self._listener_failed)

    def _listener_failed(self, exc: BaseException, pubsub: Any, thread: Any) -> None:
        """The subscription broke (Redis restarted, network): invalidations may have been missed, so L1
        starts empty; redis-py reconnects and subscribes again on the next read."""
        self.l1.clear()
        time.sleep(0.5)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(2)
        self.redis.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def get(self, key: str, tier: str | None = None, default: Any = None) -> Any:
        full = self.settings.prefix + key if tier is None else self.settings.key(key, tier)
        value = self.l1.get(full)
        if value is not _MISS:
            return value
        stored = _round_trip(self.redis, [("GET", full)])[0]
        if stored is None:
            return default
        value = decode(stored)
        self.l1.put(full, value)
        return value

    def get_many(self, keys: Iterable[str], tier: str | None = None) -> dict[str, Value]:
        """Values of the keys found (L1 first, the rest in one MGET)."""
        found: dict[str, Value] = {}
        missing: list[tuple[str, str]] = []
        for key in keys:
            full = self.settings.key(key, tier)
            value = self.l1.get(full)
            if value is _MISS:
                missing.append((key, full))
            else:
                found[key] = value
        if missing:
            replies = _round_trip(self.redis, [("MGET", *[f for _, f in missing])])[0]
            for (key, full), stored in zip(missing, replies, strict=True):
                if stored is not None:
                    found[key] = value = decode(stored)
                    self.l1.put(full, value)
        return found

    def set(self, key: str, value: Value, ttl: float | None = None, tier: str | None = None,
            broadcast: bool = True) -> None:
        self.set_many({key: value}, ttl, tier, broadcast)

    def set_many(self, items: Mapping[str, Value], ttl: float | None = None, tier: str | None = None,
                 broadcast: bool = True) -> None:
        """SET each (with the TTL) and publish the invalidations, in one pipelined round trip."""
        ms = str(self.settings.ttl_ms(ttl, tier))
        commands: list[tuple[Any, ...]] = []
        written = []
        for key, value in items.items():
            full = self.settings.key(key, tier)
            commands.append(("SET", full, encode(value, self.settings.compression_threshold), "PX", ms))
            if broadcast:
                commands.append(("PUBLISH", self.settings.channel, self._message(full)))
            written.append((full, value))
        _round_trip(self.redis, commands)
        for full, value in written:
            self.l1.put(full, value)

    def delete(self, key: str, tier: str | None = None) -> None:
        full = self.settings.key(key, tier)
        self.l1.drop(full)
        _round_trip(self.redis, [("DEL", full), ("PUBLISH", self.settings.channel, self._message(full))])

    def invalidate(self, key: str, tier: str | None = None) -> None:
        """Drop the key from every instance's L1 (this one's at once), leaving Redis as it is."""
        full = self.settings.key(key, tier)
        self.l1.drop(full)
        _round_trip(self.redis, [("PUBLISH", self.settings.channel, self._message(full))])

    def get_or_load(self, key: str, loader: Callable[[], Value], ttl: float | None = None,
                    tier: str | None = None) -> Value:
        """The cached value, or the loader's (stored in both tiers); one loader call per key at a time.

        A loader's exception reaches every caller waiting on that flight; nothing is stored.
        """
        value = self.get(key, tier, _MISS)
        if value is not _MISS:
            return value
        full = self.settings.key(key, tier)
        with self._flights_lock:
            flight = self._flights.get(full)
            leader = flight is None
            if leader:
                flight = self._flights[full] = (threading.Event(), [])
        event, result = flight
        if not leader:
            event.wait()
            if isinstance(result[0], BaseException):
                raise result[0]
            return result[0]
        try:
            value = self.get(key, tier, _MISS)  # another process may have stored it meanwhile
            if value is _MISS:
                value = loader()
                self.set(key, value, ttl, tier)
            result.append(value)
            return value
        except BaseException as exc:
            result.append(exc)
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(full, None)
            event.set()


async def _round_trip_async(client: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """`_round_trip` under asyncio: one write, every reply read, the first error reply raised."""
    pool = client.connection_pool
    try:
        conn = await pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = await pool.get_connection("GET")
    try:
        if _pack_command is not None and isinstance(conn, aioredis.connection.AbstractConnection):
            await conn.send_packed_command([b"".join([_pack_command(c) for c in commands])])
        else:
            await conn.send_packed_command(conn.pack_commands(commands))
        replies, error = [], None
        for _ in commands:
            try:
                replies.append(await conn.read_response(disconnect_on_error=False))
            except redis.exceptions.ResponseError as exc:
                error = error or exc
                replies.append(exc)
        if error is not None:
            raise error
        return replies
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


class AsyncCache(_Base):
    """The asyncio API: the same operations as `Cache`, awaited. Call `await cache.start()` to listen."""

    def __init__(self, config: TenantConfig | None = None, *, client: aioredis.Redis | None = None,
                 listen: bool = True) -> None:
        super().__init__(config)
        url, kwargs = self._redis_kwargs()
        self.redis = client if client is not None else aioredis.Redis.from_url(url, **kwargs)
        self._flights: dict[str, asyncio.Future[Value]] = {}
        self._listen = listen
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> AsyncCache:
        """Subscribe to the invalidation channel (once; returns self)."""
        if self._listen and self._task is None:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self.settings.channel)
            await pubsub.get_message(timeout=2.0)  # the server's answer: a refused channel raises here (NOPERM)
            self._task = asyncio.create_task(self._run(pubsub))
        return self

    async def _run(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._on_invalidation(message["data"])
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncCache:
        return await self.start()

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def get(self, key: str, tier: str | None = None, default: Any = None) -> Any:
        full = self.settings.key(key, tier)
        value = self.l1.get(full)
        if value is not _MISS:
            return value
        stored = (await _round_trip_async(self.redis, [("GET", full)]))[0]
        if stored is None:
            return default
        value = decode(stored)
        self.l1.put(full, value)
        return value

    async def get_many(self, keys: Iterable[str], tier: str | None = None) -> dict[str, Value]:
        found: dict[str, Value] = {}
        missing: list[tuple[str, str]] = []
        for key in keys:
            full = self.settings.key(key, tier)
            value = self.l1.get(full)
            if value is _MISS:
                missing.append((key, full))
            else:
                found[key] = value
        if missing:
            stored_all = (await _round_trip_async(self.redis, [("MGET", *[f for _, f in missing])]))[0]
            for (key, full), stored in zip(missing, stored_all, strict=True):
                if stored is not None:
                    found[key] = value = decode(stored)
                    self.l1.put(full, value)
        return found

    async def set(self, key: str, value: Value, ttl: float | None = None, tier: str | None = None,
                  broadcast: bool = True) -> None:
        await self.set_many({key: value}, ttl, tier, broadcast)

    async def set_many(self, items: Mapping[str, Value], ttl: float | None = None, tier: str | None = None,
                       broadcast: bool = True) -> None:
        ms = str(self.settings.ttl_ms(ttl, tier))
        commands: list[tuple[Any, ...]] = []
        written = []
        for key, value in items.items():
            full = self.settings.key(key, tier)
            commands.append(("SET", full, encode(value, self.settings.compression_threshold), "PX", ms))
            if broadcast:
                commands.append(("PUBLISH", self.settings.channel, self._message(full)))
            written.append((full, value))
        await _round_trip_async(self.redis, commands)
        for full, value in written:
            self.l1.put(full, value)

    async def delete(self, key: str, tier: str | None = None) -> None:
        full = self.settings.key(key, tier)
        self.l1.drop(full)
        await _round_trip_async(self.redis, [("DEL", full), ("PUBLISH", self.settings.channel, self._message(full))])

    async def invalidate(self, key: str, tier: str | None = None) -> None:
        full = self.settings.key(key, tier)
        self.l1.drop(full)
        await _round_trip_async(self.redis, [("PUBLISH", self.settings.channel, self._message(full))])

    async def get_or_load(self, key: str, loader: Callable[[], Awaitable[Value]], ttl: float | None = None,
                          tier: str | None = None) -> Value:
        """As `Cache.get_or_load`, with an async loader; waiters share the leader's result or exception."""
        value = await self.get(key, tier, _MISS)
        if value is not _MISS:
            return value
        full = self.settings.key(key, tier)
        flight = self._flights.get(full)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = self._flights[full] = asyncio.get_running_loop().create_future()
        try:
            value = await self.get(key, tier, _MISS)
            if value is _MISS:
                value = await loader()
                await self.set(key, value, ttl, tier)
            flight.set_result(value)
            return value
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            self._flights.pop(full, None)
