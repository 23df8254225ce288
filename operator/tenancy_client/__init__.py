"""tenancy_client: what an application inside a tenant namespace uses to reach its slice.

It needs nothing but what the operator provisions in the tenant namespace: the `tenant-credentials`
Secret and the ConfigMaps `tenant-cache` and `tenant-session-keys` (mounted as folders or given as
environment variables). It never imports the operator, kopf or the Kubernetes client: install it with
`pip install ./client` (the `tenancy-client` distribution) into an application image.
"""

from .cache import AsyncCache, Cache, CacheSettings
from .config import TenantConfig, load

__all__ = ["TenantConfig", "load", "Cache", "AsyncCache", "CacheSettings"]
# `tenancy_client.sessions` (Sessions, AsyncSessions) needs PyJWT and urllib3 from the `client` extra:
# import it by name.
