"""kopf glue: importing this package registers every handler."""

from . import backend, protection, settings, tenant

__all__ = ["backend", "protection", "settings", "tenant"]
