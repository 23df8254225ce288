"""tenancy_client.cache without a server: L1 size and TTL, the stored form, single flight, settings.

The Redis tier here is a dict behind the few calls the cache makes; the real server (prefix, TTLs,
NOPERM for another tenant) is proven in e2e/test_cache_policy.py.
"""

import asyncio
import threading
import time

import pytest
from tenancy_client import TenantConfig
from tenancy_client.cache import L1, AsyncCache, Cache, CacheSettings, decode, encode


class _Conn:
    """The connection calls the sync client's one-round-trip path makes."""

    def __init__(self, store):
        self.store, self.replies = store, []

    def pack_commands(self, commands):
        return commands

    def send_packed_command(self, commands):
        for name, *args in commands:
            if name == "GET":
                self.replies.append(self.store.data.get(args[0]))
            elif name == "MGET":
                self.replies.append([self.store.data.get(k) for k in args])
            elif name == "SET":
                self.store.data[args[0]], self.store.ttls[args[0]] = args[1], int(args[3])
                self.replies.append(b"OK")
            elif name == "DEL":
                self.replies.append(int(self.store.data.pop(args[0], None) is not None))
            elif name == "PUBLISH":
                self.store.published.append(tuple(args))
                self.replies.append(0)

    def read_response(self, disconnect_on_error=True):
        return self.replies.pop(0)

    def disconnect(self):
        pass


class _Pool:
    def __init__(self, store):
        self.store = store

    def get_connection(self):
        return _Conn(self.store)

    def release(self, conn):
        pass


class _Redis:
    def __init__(self):
        self.data, self.ttls, self.published, self.gets = {}, {}, [], 0
        self.connection_pool = _Pool(self)

    def get(self, key):
        self.gets += 1
        return self.data.get(key)

    def mget(self, keys):
        return [self.data.get(k) for k in keys]

    def publish(self, channel, message):
        self.published.append((channel, message))

    def close(self):
        pass


CONFIG = TenantConfig(credentials={"REDIS_KEY_PREFIX": "t:acme:", "REDIS_URL": "redis://unused:1/0"},
                      cache={"prefix": "t:acme:", "invalidationChannel": "t:acme:invalidate",
                             "l1": {"maxBytes": 100, "ttlSeconds": 0.2}, "tiers": {"hot": {"ttlSeconds": 5}},
                             "defaultTtlSeconds": 60, "compressionThresholdBytes": 64})


def test_l1_keeps_max_bytes_least_recently_used_going_first():
    l1 = L1(max_bytes=30, ttl=60)
    l1.put("a", b"x" * 9)  # 10 bytes with the key
    l1.put("b", b"x" * 9)
    l1.put("c", b"x" * 9)
    assert l1.get("a") == b"x" * 9  # a is now the most recent
    l1.put("d", b"x" * 9)  # 40 > 30: the least recently used (b) goes
    assert l1.get("b") != b"x" * 9 and len(l1) == 3 and l1.bytes == 30
    assert l1.get("a") == b"x" * 9 and l1.get("c") == b"x" * 9
    l1.put("huge", b"x" * 100)  # larger than the whole tier: not kept
    assert len(l1) == 3


def test_l1_entries_expire_after_the_ttl():
    cache = Cache(CONFIG, client=_Redis(), listen=False)
    cache.set("k", "v")
    assert cache.l1.get("t:acme:k") == "v"
    time.sleep(0.25)
    cache.redis.data.clear()
    assert cache.get("k") is None  # L1 expired, and Redis no longer has it


def test_values_above_the_threshold_are_compressed():
    small, big = "a" * 10, "a" * 1000
    assert encode(small, 64) == b"s" + small.encode()
    stored = encode(big, 64)
    assert stored[:1] == b"S" and len(stored) < 100
    assert decode(stored) == big and decode(encode(b"\x00" * 500, 64)) == b"\x00" * 500
    assert encode(big, 0)[:1] == b"s"  # 0 turns compression off
    fake = _Redis()
    Cache(CONFIG, client=fake, listen=False).set("big", big)
    assert fake.data["t:acme:big"][:1] == b"S"
    with pytest.raises(ValueError):
        decode(b"?raw")


def test_prefix_tiers_ttls_and_broadcast():
    fake = _Redis()
    cache = Cache(CONFIG, client=fake, listen=False)
    cache.set("a", b"1", tier="hot")
    cache.set("b", b"2")
    assert fake.ttls == {"t:acme:hot:a": 5000, "t:acme:b": 60000}
    assert [c for c, _ in fake.published] == ["t:acme:invalidate"] * 2
    with pytest.raises(ValueError, match="tier 'cold'"):
        cache.set("c", b"3", tier="cold")
    assert cache.get_many(["a", "zz"], tier="hot") == {"a": b"1"}


def test_an_invalidation_from_another_instance_drops_the_l1_copy_but_not_its_own():
    cache = Cache(CONFIG, client=_Redis(), listen=False)
    cache.set("k", "v")
    cache._on_invalidation(cache._message("t:acme:k"))  # noqa: SLF001 - its own broadcast
    assert cache.l1.get("t:acme:k") == "v"
    cache._on_invalidation(b"someone-else t:acme:k")  # noqa: SLF001
    assert cache.l1.get("t:acme:k") != "v"


def test_single_flight_calls_the_loader_once_for_concurrent_misses():
    cache = Cache(CONFIG, client=_Redis(), listen=False)
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.2)
        return "loaded"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", loader))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and results == ["loaded"] * 8


async def test_async_single_flight_shares_the_result_and_the_error():
    cache = AsyncCache(CONFIG, client=_AsyncRedis(), listen=False)
    calls = []

    async def loader():
        calls.append(1)
        await asyncio.sleep(0.05)
        return b"v"

    assert await asyncio.gather(*[cache.get_or_load("k", loader) for _ in range(5)]) == [b"v"] * 5
    assert calls == [1]

    async def failing():
        await asyncio.sleep(0.05)
        raise RuntimeError("backend down")

    results = await asyncio.gather(*[cache.get_or_load("e", failing) for _ in range(3)], return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


class _AsyncConn(_Conn):
    async def send_packed_command(self, commands):
        _Conn.send_packed_command(self, commands)

    async def read_response(self, disconnect_on_error=True):
        return self.replies.pop(0)

    async def disconnect(self):
        pass


class _AsyncPool(_Pool):
    async def get_connection(self):
        return _AsyncConn(self.store)

    async def release(self, conn):
        pass


class _AsyncRedis(_Redis):
    def __init__(self):
        super().__init__()
        self.connection_pool = _AsyncPool(self)


def test_settings_default_without_a_policy():
    s = CacheSettings.from_config(TenantConfig(credentials={"REDIS_KEY_PREFIX": "t:acme:"}))
    assert s.prefix == "t:acme:" and s.channel == "t:acme:invalidate" and s.default_ttl == 3600
