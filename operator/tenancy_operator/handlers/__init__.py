"""kopf glue: importing this package registers every handler."""

from . import backend, cache_part, policies, protection, settings, tenant

__all__ = ["backend", "cache_part", "policies", "protection", "settings", "tenant"]
