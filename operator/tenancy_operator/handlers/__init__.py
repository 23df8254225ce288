"""kopf glue: importing this package registers every handler."""

from . import backend, settings, tenant

__all__ = ["backend", "settings", "tenant"]
