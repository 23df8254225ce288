"""kopf glue: importing this package registers every handler."""

from . import settings, tenant

__all__ = ["settings", "tenant"]
