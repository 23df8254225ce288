"""The pieces of `tenancy_client.cache` that need no server: settings, the stored form, the L1 tier."""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import TenantConfig

__all__ = ["CacheSettings", "L1", "encode", "decode", "Value", "MISS"]

Value = bytes | str
MISS = object()
"""What `L1.get` returns for a key it does not hold (None is a value nobody stores, but keep them apart)."""


@dataclass(frozen=True)
class CacheSettings:
    """The effective settings (cache.json), with the defaults used when the Tenant names no CachePolicy."""

    prefix: str
    channel: str
    l1_max_bytes: int = 32 * 2**20
    l1_ttl: float = 30.0
    default_ttl: float = 3600.0
    tiers: Mapping[str, float] = field(default_factory=dict)
    compression_threshold: int = 1024

    @classmethod
    def from_config(cls, config: TenantConfig) -> CacheSettings:
        doc = dict(config.cache)
        prefix = doc.get("prefix") or config.require("REDIS_KEY_PREFIX")
        l1 = doc.get("l1") or {}
        return cls(prefix=prefix, channel=doc.get("invalidationChannel") or prefix + "invalidate",
                   l1_max_bytes=int(l1.get("maxBytes", cls.l1_max_bytes)),
                   l1_ttl=float(l1.get("ttlSeconds", cls.l1_ttl)),
                   default_ttl=float(doc.get("defaultTtlSeconds", cls.default_ttl)),
                   tiers={k: float(v["ttlSeconds"]) for k, v in (doc.get("tiers") or {}).items()},
                   compression_threshold=int(doc.get("compressionThresholdBytes", cls.compression_threshold)))

    def key(self, key: str, tier: str | None) -> str:
        return f"{self.prefix}{tier}:{key}" if tier else self.prefix + key

    def ttl_ms(self, ttl: float | None, tier: str | None) -> int:
        """Milliseconds; `ValueError` for a tier the policy does not have."""
        if ttl is None:
            if tier is not None and tier not in self.tiers:
                raise ValueError(f"tier {tier!r} is not in the CachePolicy (tiers: {sorted(self.tiers)})")
            ttl = self.tiers[tier] if tier is not None else self.default_ttl
        return max(1, int(ttl * 1000))


def encode(value: Value, threshold: int) -> bytes:
    """The stored form: a header byte, then the (maybe compressed) bytes. `TypeError` for other types."""
    if isinstance(value, str):
        raw, tag = value.encode(), b"s"
    elif isinstance(value, bytes | bytearray | memoryview):
        raw, tag = bytes(value), b"b"
    else:
        raise TypeError(f"cache values are bytes or str, not {type(value).__name__}")
    if threshold > 0 and len(raw) >= threshold:
        return tag.upper() + zlib.compress(raw, 1)
    return tag + raw


def decode(stored: bytes) -> Value:
    """The value `encode` stored; `ValueError` for bytes that no `encode` made (written by other code)."""
    tag, body = stored[:1], stored[1:]
    if tag in (b"B", b"S"):
        body, tag = zlib.decompress(body), tag.lower()
    if tag == b"b":
        return body
    if tag == b"s":
        return body.decode()
    raise ValueError("not a value tenancy_client.cache stored (unknown header byte)")


class L1:
    """In-process tier: LRU by bytes with a per-entry TTL; thread-safe."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self.max_bytes, self.ttl = max_bytes, ttl
        self._entries: OrderedDict[str, tuple[float, Value, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_bytes > 0

    def get(self, key: str) -> Any:
        # The hit path takes no lock: each OrderedDict call is atomic under the GIL, and writers evict
        # with popitem (never an iterator a concurrent move_to_end could invalidate).
        entry = self._entries.get(key)
        if entry is None:
            return MISS
        if entry[0] < time.monotonic():
            self.drop(key)
            return MISS
        try:
            self._entries.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile: still a valid read of a moment ago
            pass
        return entry[1]

    def put(self, key: str, value: Value) -> None:
        if not self.enabled:
            return
        size = len(value) + len(key)
        if size > self.max_bytes:
            self.drop(key)
            return
        with self._lock:
            self._remove(key)
            self._entries[key] = (time.monotonic() + self.ttl, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                self._bytes -= self._entries.popitem(last=False)[1][2]

    def drop(self, key: str) -> None:
        with self._lock:
            self._remove(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes
