"""CachePolicy on the real Redis: settings published, budgets enforced per tenant, the library fenced by the server.

Tenants here are named `cachepol-*`. The shared Redis keeps `maxmemory-policy noeviction`; the
comparison with plain `allkeys-lru` runs on a throwaway redis-server (the Debian binary) this test
starts on a free port and stops, so the shared server's settings are never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError
from tenancy_client import TenantConfig
from tenancy_client.cache import AsyncCache, Cache

from . import kube
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials

A, B, C = "cachepol-a", "cachepol-b", "cachepol-c"
POLICY = "cachepol-small"
BUDGET = 2**20  # memoryBudget 1Mi
VALUE = 1000  # bytes per value: MEMORY USAGE about 1.06 KiB, so a batch of 1000 keys is about the budget
BATCHES, PER_BATCH, B_KEYS = 5, 1000, 200


def _policy(name: str, **spec) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "CachePolicy", "metadata": {"name": name},
                       "spec": spec})


def _admin() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=10)


def _config(tenant: str) -> TenantConfig:
    out = kubectl("get", "configmap", "tenant-cache", "-n", f"tenant-{tenant}", "-o", "json").stdout
    return TenantConfig(credentials=credentials(tenant), cache=json.loads(json.loads(out)["data"]["cache.json"]))


def _keys(client: redis.Redis, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=prefix + "*", count=1000))


def _usage(client: redis.Redis, prefix: str) -> int:
    """Exact: MEMORY USAGE of every key under the prefix (the operator only samples)."""
    keys = list(_keys(client, prefix))
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k)
    return sum(s or 0 for s in pipe.execute())


@pytest.fixture(scope="module")
def two_tenants(operator, backends):
    kube.apply(_policy(POLICY, memoryBudget="1Mi", l1={"maxSize": "256Ki", "ttl": "30s"},
                       tiers=[{"name": "hot", "ttl": "5m"}], defaultTtl="1h", evictionOrder="IdleTime"))
    for name in (A, B):
        kube.apply(tenant_yaml(name, redis={"enabled": True}, cachePolicyRef=POLICY))
    try:
        for name in (A, B):
            kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
            eventually(lambda n=name: get("configmap", "tenant-cache", f"tenant-{n}"), 30,
                       message=f"ConfigMap tenant-cache in tenant-{name}")
        yield _config(A), _config(B)
    finally:
        for name in (A, B):
            kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)
        kubectl("delete", "cachepolicy", POLICY, "--ignore-not-found", "--wait=false", check=False)


def _workload(write_a, read_b, stop: threading.Event) -> None:
    """B reads its whole hot set every 5 s (in a thread); A writes 5x its budget in 5 batches 1.3 s apart.

    The gap is more than Redis's idle-time clock (1 s units, updated every 100 ms): each batch is colder than the next.
    """
    def reader():
        while not stop.is_set():
            read_b()
            stop.wait(5)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for batch in range(BATCHES):
            write_a({f"b{batch}:{i:05d}": os.urandom(VALUE) for i in range(PER_BATCH)})
            time.sleep(1.3)
    finally:
        stop.set()
        thread.join(10)


def test_tenant_aware_eviction_keeps_every_key_of_b(operator, two_tenants):
    config_a, config_b = two_tenants
    admin = _admin()
    cache_a, cache_b = Cache(config_a, listen=False), Cache(config_b, listen=False)
    b_keys = [f"hot:{i:04d}" for i in range(B_KEYS)]
    cache_b.set_many({k: os.urandom(VALUE) for k in b_keys})

    def read_b():
        cache_b.l1.clear()  # every read reaches Redis: B's keys are hot there, not only in this process
        assert len(cache_b.get_many(b_keys)) == B_KEYS

    _workload(lambda items: cache_a.set_many(items, broadcast=False), read_b, threading.Event())
    written_at = time.monotonic()
    prefix_a, prefix_b = f"t:{A}:", f"t:{B}:"
    # Under budget within two verify passes of the last write (a pass may be running as it ends: + one).
    eventually(lambda: _usage(admin, prefix_a) <= BUDGET, 3 * operator.verify_interval * 1.2 + 10, 1,
               message="tenant A's usage under its 1Mi budget")
    print(f"\nA under budget {time.monotonic() - written_at:.1f} s after its last write "
          f"(verify interval {operator.verify_interval} s); usage {_usage(admin, prefix_a)} of {BUDGET}")

    survivors = {k.decode().removeprefix(prefix_a) for k in _keys(admin, prefix_a)}
    written = {f"b{b}:{i:05d}" for b in range(BATCHES) for i in range(PER_BATCH)}
    evicted = written - survivors
    assert evicted and survivors, (len(evicted), len(survivors))
    batch = lambda key: int(key[1:key.index(":")])  # noqa: E731
    # Coldest first: no key of a batch survives while a key of a later (warmer) batch was evicted.
    assert max(map(batch, evicted)) <= min(map(batch, survivors)), (
        sorted({batch(k) for k in evicted}), sorted({batch(k) for k in survivors}))
    assert not any(batch(k) == 0 for k in survivors), "the oldest batch went first"
    # Every one of B's keys survives.
    assert admin.exists(*[prefix_b + k for k in b_keys]) == B_KEYS
    cache_b.l1.clear()
    assert len(cache_b.get_many(b_keys)) == B_KEYS

    def reported():
        a, b = get("tenant", A), get("tenant", B)
        return (a["status"].get("cache", {}).get("evictedKeys", 0) > 0 and a["status"]["cache"]["usageBytes"] <= BUDGET
                and b["status"]["cache"]["evictedKeys"] == 0 and (a, b))
    a, b = eventually(reported, 3 * operator.verify_interval + 10, message="usage and evictions in status")
    message = condition(a, "CacheReady")["message"]
    assert f"cache policy {POLICY}:" in message and "1.0 MiB budget" in message and "last eviction pass" in message
    assert "0 keys evicted" in condition(b, "CacheReady")["message"]
    plugin = str(Path(sys.executable).parent / "kubectl-tenant")  # this checkout's plugin, not one on PATH
    out = subprocess.run([plugin, "status", A], capture_output=True, text=True, timeout=60).stdout
    assert f"Cache: policy {POLICY}" in out and "keys evicted" in out, out
    cache_a.close()
    cache_b.close()


def test_ttl_order_evicts_the_nearest_expiry_first_and_keys_without_ttl_last(operator, two_tenants):
    """evictionOrder TTL: over budget, A's keys go by remaining TTL, shortest first; keys without a TTL last."""
    admin, prefix_a = _admin(), f"t:{A}:"
    stale = list(_keys(admin, prefix_a))
    if stale:
        admin.delete(*stale)
    kubectl("patch", "cachepolicy", POLICY, "--type=merge", "-p", '{"spec":{"evictionOrder":"TTL"}}')
    try:
        pipe = admin.pipeline(transaction=False)
        for batch in range(6):  # 6 x 400 keys with a TTL: 2.4x the budget; batch k expires in (k + 1) x 10 min
            for i in range(400):
                pipe.set(f"{prefix_a}ttl{batch}:{i:04d}", os.urandom(VALUE), ex=600 * (batch + 1))
        for i in range(300):  # about a third of the budget, without a TTL: these go last
            pipe.set(f"{prefix_a}keep:{i:04d}", os.urandom(VALUE))
        pipe.execute()
        eventually(lambda: _usage(admin, prefix_a) <= BUDGET, 3 * operator.verify_interval * 1.2 + 10, 1,
                   message="tenant A's usage under its budget, by TTL")
        survivors = {k.decode().removeprefix(prefix_a) for k in _keys(admin, prefix_a)}
        batches = lambda keys: {int(k[3:k.index(":")]) for k in keys if k.startswith("ttl")}  # noqa: E731
        evicted = {f"ttl{b}:{i:04d}" for b in range(6) for i in range(400)} - survivors
        print(f"\nby TTL: evicted batches {sorted(batches(evicted))}, kept {sorted(batches(survivors))}")
        assert evicted and max(batches(evicted)) <= min(batches(survivors) or {6}), (batches(evicted), batches(survivors))
        assert 0 in batches(evicted) and sum(k.startswith("keep:") for k in survivors) == 300
    finally:
        kubectl("patch", "cachepolicy", POLICY, "--type=merge", "-p", '{"spec":{"evictionOrder":"IdleTime"}}')
        left = list(_keys(admin, prefix_a))
        if left:
            admin.delete(*left)


def test_plain_allkeys_lru_at_the_same_maxmemory_loses_keys_of_b():
    """The same workload without the operator: one Redis, allkeys-lru, maxmemory = B's set + A's budget."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = kube.free_port()
    folder = tempfile.mkdtemp(prefix="cachepol-lru-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", folder, "--maxmemory-policy", "noeviction"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=10)
        eventually(lambda: client.ping(), 10, 0.2, message="the throwaway redis-server answers")
        b_keys = [f"t:{B}:hot:{i:04d}".encode() for i in range(B_KEYS)]
        pipe = client.pipeline(transaction=False)
        for k in b_keys:
            pipe.set(k, os.urandom(VALUE + 1), px=3_600_000)  # +1: the library's header byte
        pipe.execute()
        maxmemory = int(client.info("memory")["used_memory"]) + BUDGET
        client.config_set("maxmemory", maxmemory)
        client.config_set("maxmemory-policy", "allkeys-lru")

        def write_a(items):
            p = client.pipeline(transaction=False)
            for k, v in items.items():
                p.set(f"t:{A}:{k}", v, px=3_600_000)
            p.execute()

        _workload(write_a, lambda: client.mget(b_keys), threading.Event())
        left = client.exists(*b_keys)
        print(f"\nplain allkeys-lru at maxmemory {maxmemory}: B kept {left} of {B_KEYS} keys, "
              f"evicted_keys {client.info('stats')['evicted_keys']}")
        assert left < B_KEYS, "without tenant-aware enforcement, A's writes push out B's keys"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_session_records_outlive_a_cache_flood(operator, two_tenants):
    """A's session records (where tenancy_client.sessions keeps them) are its coldest keys by IdleTime (a
    validation's EXISTS does not touch them), yet a cache flood 3x the budget evicts cache keys only."""
    config_a, _ = two_tenants
    admin, prefix = _admin(), f"t:{A}:"
    cache = Cache(config_a, listen=False)
    try:
        records = {f"sess:r{i:02d}": "x" * 200 for i in range(20)} | {f"sess-user:u{i}": "y" * 200 for i in range(5)}
        cache.set_many(records, broadcast=False)
        time.sleep(2.5)  # idle-time is counted in seconds: every record is colder than every flood key
        for batch in range(3):
            cache.set_many({f"flood{batch}:{i:05d}": os.urandom(VALUE) for i in range(PER_BATCH)}, broadcast=False)
            time.sleep(1.3)
        eventually(lambda: _usage(admin, prefix) <= BUDGET, 60, message="A back under its budget")
        kept = {k.decode()[len(prefix):] for k in _keys(admin, prefix + "sess")}
        assert set(records) <= kept, f"session records evicted: {sorted(set(records) - kept)}"
    finally:
        cache.close()


def test_library_applies_prefix_tiers_and_ttls_and_b_is_refused_by_the_server(operator, two_tenants):
    config_a, config_b = two_tenants
    admin = _admin()
    with Cache(config_a) as one, Cache(config_a) as two:
        one.set("x", "1", tier="hot")
        one.set("y", b"2")
        assert 290_000 < admin.pttl(f"t:{A}:hot:x") <= 300_000  # the hot tier's 5m
        assert 3_590_000 < admin.pttl(f"t:{A}:y") <= 3_600_000  # defaultTtl 1h
        assert two.get("x", tier="hot") == "1" and two.l1.get(f"t:{A}:hot:x") == "1"
        one.set("x", "changed", tier="hot")  # broadcast on t:cachepol-a:invalidate
        eventually(lambda: two.get("x", tier="hot") == "changed", 10, 0.1,
                   message="the other instance dropped its L1 copy on the invalidation")
        big = "z" * 5000  # above the default 1Ki threshold: stored compressed
        one.set("big", big)
        assert admin.get(f"t:{A}:big")[:1] == b"S" and len(admin.get(f"t:{A}:big")) < 200
        assert two.get("big") == big

    async def go():
        async with AsyncCache(config_a) as cache:
            await cache.set("async", "v", tier="hot")
            assert await cache.get("async", tier="hot") == "v"
            calls = []

            async def loader():
                calls.append(1)
                return b"loaded"
            assert await asyncio.gather(*[cache.get_or_load("sf", loader) for _ in range(5)]) == [b"loaded"] * 5
            assert calls == [1]

    async def thief_async():
        thief = AsyncCache(forged, listen=False)
        try:
            with pytest.raises(NoPermissionError):
                await thief.get("secret")
            with pytest.raises(NoPermissionError):
                await thief.set("secret", "stolen")
        finally:
            await thief.close()

    asyncio.run(go())

    # A's credentials with B's prefix and channel: the library sends it, the server refuses (NOPERM).
    forged = TenantConfig(credentials=dict(config_a.credentials) | {"REDIS_KEY_PREFIX": f"t:{B}:"},
                          cache=dict(config_b.cache))
    with Cache(config_b, listen=False) as b:
        b.set("secret", "b's")
    thief = Cache(forged, listen=False)
    assert thief.settings.prefix == f"t:{B}:"
    for attempt in (lambda: thief.get("secret"), lambda: thief.set("secret", "stolen"),
                    lambda: thief.invalidate("secret"), lambda: thief.delete("secret")):
        with pytest.raises(NoPermissionError):
            attempt()
    with pytest.raises(NoPermissionError):
        Cache(forged)  # subscribing to B's invalidation channel
    assert admin.get(f"t:{B}:secret") == b"s" + b"b's"
    thief.close()
    asyncio.run(thief_async())
    assert admin.get(f"t:{B}:secret") == b"s" + b"b's"


def test_missing_policy_is_policy_not_found_until_it_exists_and_changes_reach_the_configmap(operator, backends,
                                                                                           cleanup_tenants):
    cleanup_tenants.append(C)
    later = "cachepol-later"
    kubectl("delete", "cachepolicy", later, "--ignore-not-found")
    bad = subprocess.run(["kubectl", "apply", "-f", "-"], input=_policy("cachepol-bad", memoryBudget="1Mi",
                                                                          l1={"maxSize": "2Mi"}),
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "memoryBudget must not be smaller than l1.maxSize" in bad.stderr
    try:
        kube.apply(tenant_yaml(C, redis={"enabled": True}, cachePolicyRef=later))
        tenant = eventually(lambda: (t := get("tenant", C)) and condition(t, "Ready").get("reason") == "PolicyNotFound"
                            and t, 60, message="Ready=False, reason PolicyNotFound")
        assert condition(tenant, "Ready")["status"] == "False"
        assert f"CachePolicy {later}" in condition(tenant, "CacheReady")["message"]
        assert get("configmap", "tenant-cache", f"tenant-{C}") is None

        kube.apply(_policy(later, memoryBudget="64Mi"))  # nothing touches the Tenant: it recovers by itself
        kubectl("wait", "--for=condition=Ready", f"cachepolicy/{later}", "--timeout=30s", timeout=40)
        kubectl("wait", "--for=condition=Ready", f"tenant/{C}", f"--timeout={int(3 * operator.verify_interval + 30)}s",
                timeout=3 * operator.verify_interval + 40)

        def budget():
            cm = get("configmap", "tenant-cache", f"tenant-{C}")
            return cm and json.loads(cm["data"]["cache.json"])["memoryBudgetBytes"]
        assert eventually(budget, 10) == 64 * 2**20
        kubectl("patch", "cachepolicy", later, "--type=merge", "-p", '{"spec":{"memoryBudget":"128Mi"}}')
        eventually(lambda: budget() == 128 * 2**20, 2 * operator.verify_interval + 10,
                   message="the policy change reached the tenant's ConfigMap within a verify interval")
        # Steady state: neither the ConfigMap nor the Tenant is written again.
        time.sleep(operator.verify_interval + 1)
        before = (get("configmap", "tenant-cache", f"tenant-{C}")["metadata"]["resourceVersion"],
                  get("tenant", C)["metadata"]["resourceVersion"])
        time.sleep(2 * operator.verify_interval + 1)
        after = (get("configmap", "tenant-cache", f"tenant-{C}")["metadata"]["resourceVersion"],
                 get("tenant", C)["metadata"]["resourceVersion"])
        assert before == after
        # Without a policy the ConfigMap goes.
        kubectl("patch", "tenant", C, "--type=merge", "-p", '{"spec":{"cachePolicyRef":null}}')
        eventually(lambda: get("configmap", "tenant-cache", f"tenant-{C}") is None, 2 * operator.verify_interval + 10,
                   message="tenant-cache removed with the reference")
    finally:
        kubectl("delete", "cachepolicy", later, "--ignore-not-found", check=False)
