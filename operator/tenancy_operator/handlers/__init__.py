"""kopf glue: importing this package registers every handler."""

from . import backend, policies, protection, settings, tenant, workflow_run

__all__ = ["backend", "policies", "protection", "settings", "tenant", "workflow_run"]
