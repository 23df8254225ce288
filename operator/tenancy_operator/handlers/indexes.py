"""Lookups in kopf's in-memory indexes (`kopf.Index`: key -> a store of the values objects gave it)."""

from __future__ import annotations

from typing import Any

__all__ = ["first_stored", "backends_of"]


def first_stored(index: Any, key: Any) -> Any:
    """The first value a kopf index holds under `key`, or None (no index yet, an empty key, no object)."""
    store = index.get(key) if index is not None and key else None
    return next(iter(store), None) if store else None


def backends_of(index: Any) -> dict[str, dict[str, Any]]:
    """Every Backend the `backends_by_name` index holds, by name."""
    return {name: first_stored(index, name) for name in (index or {})}
