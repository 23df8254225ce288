"""kopf glue: importing this package registers every handler."""

from . import (
    archive_purge,
    audit_trail,
    backend,
    cache_part,
    heap_trim,
    policies,
    protection,
    settings,
    tenant,
    workflow_run,
    workflow_run_end,
)

__all__ = ["archive_purge", "audit_trail", "backend", "cache_part", "heap_trim", "policies", "protection", "settings", "tenant",
           "workflow_run", "workflow_run_end"]
