"""The one table of service adapters: a new backend is one module and one line here.

An adapter module is imported the first time a Backend of its type needs it (lazy_modules.py says why).

Every caller reaches an adapter through `adapter()`, so that is where backend calls are traced: with
tracing on (observability/tracing.py) each of its async verbs runs in a child span of the reconcile
pass, named `<type>.<verb>` and carrying the tenant, the Backend's name and the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..observability import tracing
from .base import Target, TenantSlice
from .lazy_modules import LazyModules

__all__ = ["ADAPTERS", "adapter", "preload", "loaded", "describe_call", "wrap_with"]

ADAPTERS = LazyModules(__package__, {
    "postgres": "postgres",
    "redis": "redis_acl",
    "search": "search",
    "vault": "vault",
    "mongodb": "mongodb",
})
"""Backend type -> its adapter module (imported on first use)."""


def describe_call(arguments: dict[str, Any]) -> dict[str, str]:
    """Span attributes of one adapter call: the Backend's name and the tenant, nothing from a credential.

    `arguments` maps parameter names to values: `target` (a Target), `want` (a TenantSlice) or
    `tenant` (the tenant's name, as close, delete and the archive verbs take it).
    """
    out: dict[str, str] = {}
    for value in arguments.values():
        if isinstance(value, Target):
            out["tenancy.backend"] = value.name
        elif isinstance(value, TenantSlice):
            out["tenancy.tenant"] = value.tenant
    if isinstance(arguments.get("tenant"), str) and arguments["tenant"]:
        out["tenancy.tenant"] = arguments["tenant"]
    return out


def _unwrapped(service: str, module: ModuleType) -> Any:
    return module


_wrap: Callable[[str, ModuleType], Any] = _unwrapped


def wrap_with(wrap: Callable[[str, ModuleType], Any]) -> None:
    """Every adapter handed out is `wrap(service, module)`: the audit trail's seam (handlers/audit_trail.py)."""
    global _wrap
    _wrap = wrap


def adapter(backend_type: str) -> Any:
    """The adapter module for a backend type, or None: wrapped by the audit trail (see `wrap_with`), and
    that in a span per call when tracing is on (observability/tracing.py)."""
    module = ADAPTERS.get(backend_type)
    return None if module is None else tracing.traced(_wrap(backend_type, module), backend_type, describe_call)


async def preload(backend_type: str) -> None:
    """Import the adapter of `backend_type` in a thread: a client library takes up to ~1 s to import and
    would hold the event loop meanwhile. The Backend's probe calls it before anything else uses the
    adapter (no tenant is placed on a Backend before a probe finds it Ready). Unknown types and adapters
    already imported: nothing (no thread hop on every probe)."""
    if backend_type in ADAPTERS and not ADAPTERS.imported(backend_type):
        await asyncio.to_thread(ADAPTERS.get, backend_type)


def loaded() -> list[ModuleType]:
    """The adapter modules imported so far (those whose caches can hold anything)."""
    return ADAPTERS.loaded()
