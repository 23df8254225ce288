"""Names of a tenant's objects on a search server, the same for OpenSearch (search.py) and Elasticsearch
(search_es.py): role `tenant-<name>`, users `tenant-<name>_a/_b`, indices `t-<name>_*` (api/names.py)."""

from __future__ import annotations

from ..api import names

__all__ = ["SLOTS", "MARK_ATTRIBUTE", "role_name", "user_name", "pattern"]

SLOTS = ("a", "b")
MARK_ATTRIBUTE = "tenancy.dev/tenant-uid"


def role_name(tenant: str) -> str:
    return f"tenant-{names.check(tenant)}"


def user_name(tenant: str, slot: str) -> str:
    if slot not in SLOTS:
        raise ValueError(f"credential slot must be 'a' or 'b', not {slot!r}")
    return f"tenant-{names.check(tenant)}_{slot}"


def pattern(tenant: str) -> str:
    return names.search_prefix(tenant) + "*"
