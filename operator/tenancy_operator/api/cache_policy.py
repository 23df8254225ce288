"""The `CachePolicy` kind: cache tiers, TTLs, a per-tenant memory budget and eviction.

Tenants name one in `spec.cachePolicyRef`. The operator publishes the effective settings to the
ConfigMap `tenant-cache` (key `cache.json`) in the tenant namespace, where `tenancy_client.cache`
reads them, and enforces `memoryBudget` on the shared Redis: it measures the tenant's usage under
its prefix by sampling and, when over budget, evicts only that tenant's own coldest keys in
`evictionOrder` (docs/cache.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import QUANTITY_RULE, DNSLabel, Duration, Quantity, Spec, cel

_BUDGET = Annotated[Quantity, Field(json_schema_extra={"x-kubernetes-validations": [
    QUANTITY_RULE, cel("isQuantity(self) && quantity(self).compareTo(quantity('64Ki')) >= 0",
                       "memoryBudget must be at least 64Ki")]})]
_SIZE = Annotated[str, Field(pattern=r"^[0-9]+(Ki|Mi|Gi)?$", max_length=16)]

__all__ = ["CacheTier", "L1Tier", "CachePolicySpec", "ROOT_RULES"]


class CacheTier(Spec):
    name: DNSLabel
    """Tier name; keys of this tier live under `t:<tenant>:<tier>:` in Redis (the L2 tier)."""
    ttl: Duration
    """Default time to live, in Redis, of keys in this tier."""


class L1Tier(Spec):
    max_size: _SIZE = "32Mi"
    """Bytes of values each application process keeps in memory (least recently used go first)."""
    ttl: Duration = "30s"
    """How long a process serves a value from memory before asking Redis again. Writes through the
    client library also broadcast an invalidation on the tenant's channel, so other processes drop
    their copy at once; this bounds staleness for writes made without the library."""


class CachePolicySpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("quantity(self.memoryBudget).compareTo(quantity(self.l1.maxSize)) >= 0",
                    "memoryBudget must not be smaller than l1.maxSize: one process's in-memory tier "
                    "alone would not fit the tenant's Redis budget"),
            ]
        }
    }

    l1: L1Tier = L1Tier()  # a value, not a factory: the CRD then defaults an omitted l1 (CEL reads it)
    """The in-process tier of `tenancy_client.cache`: size and time to live."""
    tiers: list[CacheTier] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Redis (L2) tiers, each with its default TTL."""
    default_ttl: Duration = "1h"
    """Redis TTL for keys outside any tier."""
    memory_budget: _BUDGET = "256Mi"
    """Redis memory each tenant may use (`MEMORY USAGE` of its keys, measured by sampling). Over it, the
    operator evicts the tenant's own coldest keys down to 90% of the budget."""
    eviction_order: Literal["IdleTime", "Frequency", "TTL"] = "IdleTime"
    """Which of the tenant's keys go first when it is over budget: longest idle (`OBJECT IDLETIME`),
    least frequently used (`OBJECT FREQ`; needs an LFU `maxmemory-policy` on the server) or nearest
    expiry (`TTL`; keys without a TTL go last). When the server cannot answer IdleTime or Frequency
    (its policy is of the other kind) the other one is used, and the CacheReady condition of the pass
    that evicts says so. Session keys (TenantSessionPolicy) go after every other key."""
    compression_threshold: _SIZE = "1Ki"
    """Values at least this many bytes are compressed (zlib) by the client library; "0" turns it off."""


ROOT_RULES: list[dict[str, str]] = []
