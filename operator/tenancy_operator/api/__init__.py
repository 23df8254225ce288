"""The API: pydantic models of every kind (the single source of the CRDs), names and conditions.

No I/O lives here; every other layer may import it.
"""

from . import (
    backend,
    cache_policy,
    common,
    conditions,
    kinds,
    lifecycle_policy,
    names,
    quantity,
    session_policy,
    tenant,
    workflow_run,
)

__all__ = [
    "backend", "cache_policy", "common", "conditions", "kinds", "lifecycle_policy", "names",
    "quantity", "session_policy", "tenant", "workflow_run",
]
