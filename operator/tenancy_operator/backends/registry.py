"""The one table of service adapters: a new backend is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import mongodb, postgres, redis_acl, search, vault

__all__ = ["ADAPTERS", "adapter", "wrap_with"]

ADAPTERS: dict[str, ModuleType] = {
    "postgres": postgres,
    "redis": redis_acl,
    "search": search,
    "vault": vault,
    "mongodb": mongodb,
}


def _unwrapped(service: str, module: ModuleType) -> Any:
    return module


_wrap: Callable[[str, ModuleType], Any] = _unwrapped


def wrap_with(wrap: Callable[[str, ModuleType], Any]) -> None:
    """Every adapter handed out is `wrap(service, module)`: the audit trail's seam (handlers/audit_trail.py)."""
    global _wrap
    _wrap = wrap


def adapter(backend_type: str) -> Any:
    """The adapter module for a backend type (wrapped, see `wrap_with`), or None."""
    module = ADAPTERS.get(backend_type)
    return None if module is None else _wrap(backend_type, module)
