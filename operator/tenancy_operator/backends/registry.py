"""The one table of service adapters: a new backend is one module and one line here."""

from __future__ import annotations

from types import ModuleType

from . import mongodb, postgres, redis_acl, search, vault

__all__ = ["ADAPTERS", "adapter"]

ADAPTERS: dict[str, ModuleType] = {
    "postgres": postgres,
    "redis": redis_acl,
    "search": search,
    "vault": vault,
    "mongodb": mongodb,
}


def adapter(backend_type: str) -> ModuleType | None:
    return ADAPTERS.get(backend_type)
