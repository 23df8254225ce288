"""kopf glue: importing this package registers every handler."""

from . import backend, policies, protection, settings, tenant

__all__ = ["backend", "policies", "protection", "settings", "tenant"]
