"""CachePolicy decisions: the effective settings a tenant's apps read, the budget estimate, who goes first.

Pure: no I/O. `backends/redis_cache.py` gathers the samples; this module turns them into an
estimate with its error bound, decides which keys to evict, and words the CacheReady message.

Estimate (docs/cache.md): one pass visits at most `max_visited` keys of the whole database with
SCAN from cursor 0 (a cursor range is a uniform sample of the hash table, whatever the key names),
keeps the tenant's keys among them, and reads `MEMORY USAGE` of at most `max_sized` of those.
Usage = mean sampled size x estimated key count, where the count is exact when the scan covered the
whole database and `matched / visited x DBSIZE` otherwise. The cost is flat in the number of keys;
the relative error (95%) is `1.96 * sqrt(count_var + size_var)` with `count_var = (1 - p) / (n p)`
for a share `p` seen among `n` visited keys (0 for a full scan) and `size_var = cv^2 / m * (1 - m / N)`
for `m` sized of `N` keys with size coefficient of variation `cv`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..api import names
from ..api.cache_policy import CachePolicySpec
from ..api.common import parse_duration
from ..api.quantity import parse as parse_quantity
from . import labels
from .namespace import owner_reference

__all__ = ["CONFIGMAP", "KEY", "EVICT_TO", "effective", "desired_configmap", "Sample", "Estimate", "estimate",
           "coldest_first", "message", "human_bytes"]

CONFIGMAP = "tenant-cache"
KEY = "cache.json"
EVICT_TO = 0.9
"""Eviction brings usage down to this fraction of the budget, so the estimate's error does not leave
the tenant just over it (and evicting again) on the next pass."""


def _bytes(text: str) -> int:
    return int(parse_quantity(text))


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def invalidation_channel(tenant: str) -> str:
    """The Pub/Sub channel the client library broadcasts invalidations on (inside `&t:<name>:*`)."""
    return names.redis_prefix(tenant) + "invalidate"


def effective(tenant: str, policy_name: str, spec: CachePolicySpec) -> dict[str, Any]:
    """The settings `tenancy_client.cache` reads from `cache.json` (camelCase, bytes and seconds)."""
    return {
        "policy": policy_name,
        "prefix": names.redis_prefix(tenant),
        "invalidationChannel": invalidation_channel(tenant),
        "l1": {"maxBytes": _bytes(spec.l1.max_size), "ttlSeconds": _seconds(spec.l1.ttl)},
        "tiers": {t.name: {"ttlSeconds": _seconds(t.ttl)} for t in spec.tiers},
        "defaultTtlSeconds": _seconds(spec.default_ttl),
        "memoryBudgetBytes": _bytes(spec.memory_budget),
        "evictionOrder": spec.eviction_order,
        "compressionThresholdBytes": _bytes(spec.compression_threshold),
    }


def desired_configmap(tenant: str, uid: str, settings: dict[str, Any]) -> dict[str, Any]:
    """ConfigMap `tenant-cache`; the JSON is canonical (sorted keys), so equal settings compare equal."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": names.namespace(tenant), "labels": labels.owned_labels(tenant),
                     "ownerReferences": [owner_reference(tenant, uid)]},
        "data": {KEY: json.dumps(settings, sort_keys=True, separators=(",", ":"))},
    }


@dataclass(frozen=True)
class Sample:
    """What one measuring pass saw on the server."""

    dbsize: int
    visited: int
    """Keys of every tenant the SCAN returned."""
    complete: bool
    """The SCAN went round the whole table (the count below is exact)."""
    matched: int
    """The tenant's keys among the visited ones."""
    sizes: tuple[int, ...]
    """`MEMORY USAGE` of the sized keys (a uniform subset of the matched ones)."""


@dataclass(frozen=True)
class Estimate:
    keys: int
    usage_bytes: int
    relative_error: float
    """Half-width of the 95% interval, as a fraction of `usage_bytes`."""


def estimate(sample: Sample) -> Estimate:
    if sample.matched == 0 or not sample.sizes:
        if sample.complete or sample.visited == 0:
            return Estimate(0, 0, 0.0)
        # None seen among n visited keys: the share is below ~3/n (rule of three), usage unknown but small.
        return Estimate(0, 0, 1.0)
    if sample.complete:
        count, count_var = sample.matched, 0.0
    else:
        p = sample.matched / sample.visited
        count = max(sample.matched, round(p * sample.dbsize))
        count_var = (1 - p) / (sample.visited * p)
    m = len(sample.sizes)
    mean = sum(sample.sizes) / m
    var = sum((s - mean) ** 2 for s in sample.sizes) / (m - 1) if m > 1 else 0.0
    cv2 = var / (mean * mean) if mean else 0.0
    size_var = cv2 / m * max(0.0, 1 - m / count)
    return Estimate(count, round(mean * count), 1.96 * math.sqrt(count_var + size_var))


SESSION_KEYS = ("sess:", "sess-user:")
"""Where `tenancy_client.sessions` keeps session records under the tenant's prefix. They go after every
other key: evicting one ends a signed-in user's session, and a session validated often still reads as
idle (`EXISTS` does not touch a key's LRU clock), so it would otherwise go first."""


def coldest_first(candidates: list[tuple[Any, int, float]], to_free: int, prefix: str | bytes = "") -> list[Any]:
    """Keys to evict, coldest first, until their sizes add up to `to_free` bytes.

    `candidates`: (key, size in bytes, coldness); larger coldness goes first (idle seconds; for
    Frequency the caller passes -freq; for TTL, -remaining seconds, with keys without a TTL last).
    Keys (str or bytes, as `prefix`) under `prefix` + a SESSION_KEYS part go after all others. Ties
    break by key name, so the choice is repeatable.
    """
    sessions = tuple(prefix + (p.encode() if isinstance(prefix, bytes) else p) for p in SESSION_KEYS)
    chosen: list[Any] = []
    freed = 0
    for key, size, _ in sorted(candidates, key=lambda c: (c[0].startswith(sessions), -c[2], c[0])):
        if freed >= to_free:
            break
        chosen.append(key)
        freed += size
    return chosen


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def message(policy: str, est: Estimate, budget: int, evicted_total: int, last_eviction: dict[str, Any] | None,
            note: str = "") -> str:
    """The CacheReady line: usage against budget, evictions, the last evicting pass.

    Usage is shown to 1% of the budget and the error to whole percents (no key count: expiring keys
    would move it every pass), so an idle tenant's message
    (and status) stays the same pass after pass; the duration shown is that of the last pass that
    evicted (every pass's duration is the `tenancy_cache_pass_seconds` metric).
    """
    share = round(100 * est.usage_bytes / budget) if budget else 0
    text = (f"cache policy {policy}: ~{share}% of the {human_bytes(budget)} budget "
            f"(±{round(100 * est.relative_error)}%), {evicted_total} keys evicted")
    if last_eviction:
        text += (f"; last eviction pass removed {last_eviction.get('keys', 0)} keys "
                 f"({human_bytes(last_eviction.get('bytes', 0))}) in {last_eviction.get('seconds', 0):.3f} s")
    return text + (f"; {note}" if note else "")
