"""Reading the API server's audit log: who wrote what, from a given point on."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from .kube import STATE

LOG = STATE / "logs" / "audit.log"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def mark() -> int:
    """The current end of the audit log; pass it to `writes` to read what came after."""
    return LOG.stat().st_size if LOG.exists() else 0


def writes(since: int, username: str, exclude_resources: frozenset[str] = frozenset({"leases"}),
           namespace: str | None = None) -> Counter:
    """Write requests by `username` after `since` (in `namespace` if given), counted by (verb, resource, name)."""
    counts: Counter = Counter()
    with Path(LOG).open("rb") as f:
        f.seek(since)
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("stage") not in (None, "ResponseComplete"):
                continue
            if entry.get("user", {}).get("username") != username or entry.get("verb") not in WRITE_VERBS:
                continue
            resource = entry.get("objectRef", {}).get("resource", "")
            if resource in exclude_resources:
                continue
            if namespace is not None and entry.get("objectRef", {}).get("namespace") != namespace:
                continue
            counts[(entry["verb"], resource, entry.get("objectRef", {}).get("name", ""))] += 1
    return counts


def by_field_manager(since: int, manager: str) -> Counter:
    """Write requests after `since` that named field manager `manager`, counted by
    (verb, resource, subresource, name) (the manager is a query parameter of the logged requestURI)."""
    counts: Counter = Counter()
    with Path(LOG).open("rb") as f:
        f.seek(since)
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("stage") not in (None, "ResponseComplete") or entry.get("verb") not in WRITE_VERBS:
                continue
            if not re.search(rf"[?&]fieldManager={re.escape(manager)}(&|$)", entry.get("requestURI", "")):
                continue
            ref = entry.get("objectRef", {})
            counts[(entry["verb"], ref.get("resource", ""), ref.get("subresource", ""), ref.get("name", ""))] += 1
    return counts
