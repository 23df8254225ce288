"""The `CachePolicy` kind: cache tiers, TTLs, a per-tenant memory budget and eviction."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import DNSLabel, Duration, Quantity, Spec

__all__ = ["CacheTier", "CachePolicySpec", "ROOT_RULES"]


class CacheTier(Spec):
    name: DNSLabel
    """Tier name; keys of this tier live under `t:<tenant>:<tier>:`."""
    ttl: Duration
    """Default time to live of keys in this tier."""


class CachePolicySpec(Spec):
    tiers: list[CacheTier] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Cache tiers."""
    default_ttl: Duration = "1h"
    """TTL for keys outside any tier."""
    memory_budget: Quantity = "256Mi"
    """Memory each tenant may use in Redis; reported against `MEMORY USAGE` of its keys."""
    eviction: Literal["allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "volatile-ttl", "noeviction"] = (
        "volatile-lru"
    )
    """Eviction the tenant's applications should assume; maps to Redis `maxmemory-policy` on dedicated backends."""


ROOT_RULES: list[dict[str, str]] = []
