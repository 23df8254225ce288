"""CachePolicy decisions: the published settings, the sampled estimate and its bound, who is evicted first."""

import json
import random

import pytest
from pydantic import ValidationError
from tenancy_operator.api.cache_policy import CachePolicySpec
from tenancy_operator.reconcile import cache


def test_effective_settings_are_camel_case_bytes_and_seconds():
    spec = CachePolicySpec.model_validate({"l1": {"maxSize": "1Mi", "ttl": "10s"}, "tiers": [{"name": "hot", "ttl": "5m"}],
                                           "defaultTtl": "1h", "memoryBudget": "16Mi", "evictionOrder": "TTL",
                                           "compressionThreshold": "2Ki"})
    got = cache.effective("acme", "std", spec)
    assert got == {"policy": "std", "prefix": "t:acme:", "invalidationChannel": "t:acme:invalidate",
                   "l1": {"maxBytes": 2**20, "ttlSeconds": 10.0}, "tiers": {"hot": {"ttlSeconds": 300.0}},
                   "defaultTtlSeconds": 3600.0, "memoryBudgetBytes": 16 * 2**20, "evictionOrder": "TTL",
                   "compressionThresholdBytes": 2048}
    cm = cache.desired_configmap("acme", "uid-1", got)
    assert cm["metadata"]["namespace"] == "tenant-acme" and json.loads(cm["data"]["cache.json"]) == got
    assert cm["data"] == cache.desired_configmap("acme", "uid-1", dict(reversed(got.items())))["data"]  # canonical


def test_unknown_fields_and_orders_are_refused():
    with pytest.raises(ValidationError):
        CachePolicySpec.model_validate({"evictionOrder": "Random"})
    with pytest.raises(ValidationError):
        CachePolicySpec.model_validate({"eviction": "allkeys-lru"})


def test_a_full_scan_counts_exactly_and_the_error_comes_from_sizes_only():
    est = cache.estimate(cache.Sample(dbsize=5000, visited=5000, complete=True, matched=1000, sizes=(100,) * 50))
    assert est.keys == 1000 and est.usage_bytes == 100_000 and est.relative_error == 0.0
    assert cache.estimate(cache.Sample(5000, 5000, True, 0, ())).usage_bytes == 0


def test_a_partial_scan_scales_by_the_share_and_the_bound_holds():
    rng = random.Random(7)
    # 200k keys, 10% the tenant's, sizes 50..150: one pass sees 20k keys and sizes 256 of the tenant's.
    truth = 20_000 * 100
    misses = 0
    for _ in range(200):
        seen = [rng.random() < 0.1 for _ in range(20_000)]
        matched = sum(seen)
        sizes = tuple(rng.randint(50, 150) for _ in range(256))
        est = cache.estimate(cache.Sample(200_000, 20_000, False, matched, sizes))
        if abs(est.usage_bytes - truth) > est.relative_error * est.usage_bytes:
            misses += 1
    assert misses <= 20  # a 95% interval: about 10 of 200 outside, allow noise


def test_coldest_first_by_each_order():
    # (key, size, coldness): IdleTime passes idle seconds; Frequency -freq; TTL -remaining (no TTL: -inf).
    idle = [("a", 10, 5.0), ("b", 10, 50.0), ("c", 10, 1.0)]
    assert cache.coldest_first(idle, 15) == ["b", "a"]
    freq = [("hot", 10, -200.0), ("cold", 10, -1.0)]
    assert cache.coldest_first(freq, 5) == ["cold"]
    ttl = [("forever", 10, float("-inf")), ("soon", 10, -1000.0), ("later", 10, -9000.0)]
    assert cache.coldest_first(ttl, 25) == ["soon", "later", "forever"]


def test_session_records_go_after_every_cache_key():
    """tenancy_client.sessions keeps records under the prefix; a session validated all day still reads as
    idle since its creation (EXISTS does not touch), so by IdleTime alone it went before the cache."""
    scored = [(b"t:a:sess:s1", 100, 9000.0), (b"t:a:sess-user:ada", 100, 9000.0), (b"t:a:page:1", 100, 10.0),
              (b"t:a:page:2", 100, 20.0), (b"t:a-b:sess:x", 100, 1.0)]
    assert cache.coldest_first(scored, 250, b"t:a:") == [b"t:a:page:2", b"t:a:page:1", b"t:a-b:sess:x"]
    assert cache.coldest_first(scored, 10_000, b"t:a:")[-2:] == [b"t:a:sess-user:ada", b"t:a:sess:s1"]


def test_message_is_stable_for_the_same_usage_and_says_what_was_evicted():
    est = cache.Estimate(keys=812, usage_bytes=3_300_000, relative_error=0.041)
    text = cache.message("std", est, 16 * 2**20, 1520, {"keys": 7, "bytes": 7000, "seconds": 0.0123})
    assert text == ("cache policy std: ~20% of the 16.0 MiB budget (±4%), 1520 keys evicted; "
                    "last eviction pass removed 7 keys (6.8 KiB) in 0.012 s")
