"""A tenant's shard limit on a search Backend (`spec.search.maxShards`), for both flavours.

OpenSearch and Elasticsearch have no per-index-pattern shard quota: a request body's
`number_of_shards` overrides the template, and replicas can be raised by a settings update. So the
operator counts the shards of `t-<name>_*` on each verify pass and, at the limit, takes index
creation and settings updates out of the tenant's role: from then on the server refuses them. One
request between two passes can still go past the limit; `cluster.max_shards_per_node` stays the
server's own bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Report, TenantSlice
from .search_names import pattern

__all__ = ["settings_path", "shard_count", "limit_note", "role_for_limit"]


def settings_path(tenant: str) -> str:
    """`GET` it for the settings of every index of the tenant, open or closed ({} when none)."""
    return f"/{pattern(tenant)}/_settings?expand_wildcards=all"


def shard_count(settings: dict[str, Any]) -> int:
    """Shards, primaries and replicas, of the indices in `GET /<pattern>/_settings` (open and closed)."""
    total = 0
    for index in (settings or {}).values():
        found = ((index or {}).get("settings") or {}).get("index") or {}
        total += int(found.get("number_of_shards") or 1) * (1 + int(found.get("number_of_replicas") or 0))
    return total


def limit_note(tenant: str, held: int, limit: int) -> str:
    """What the tenant's part says at its limit ("" below it, or with no limit)."""
    if not 0 < limit <= held:
        return ""
    return (f"shard limit reached: the indices {pattern(tenant)} hold {held} shards of spec.search.maxShards {limit}; "
            "creating indices and changing index settings are refused until indices are deleted")


RoleBody = Callable[[str, str, bool], dict[str, Any]]


def role_for_limit(want: TenantSlice, report: Report, settings: dict[str, Any] | None, live_role: dict[str, Any] | None,
                   role_body: RoleBody, differs: Callable[[dict[str, Any], dict[str, Any]], list[str]],
                   ) -> tuple[dict[str, Any], list[str], bool]:
    """(the role to want at this shard count, its drift from the live role, whether writing it is only the
    limit's decision, not drift: the live role is the other variant). Sets `report.limit`. `settings`:
    what `settings_path` read (None or {} when nothing, or when the tenant has no limit)."""
    tenant = want.tenant
    held = shard_count(settings or {}) if want.max_shards else 0
    report.limit = limit_note(tenant, held, want.max_shards)
    at_limit = bool(report.limit)
    wanted = role_body(tenant, want.uid, at_limit)
    drift = ["missing"] if live_role is None else differs(live_role, wanted)
    decided = bool(drift and live_role is not None and not differs(live_role, role_body(tenant, want.uid, not at_limit)))
    return wanted, drift, decided
