"""kopf glue: importing this package registers every handler."""

from . import backend, policies, settings, tenant

__all__ = ["backend", "policies", "settings", "tenant"]
