"""Reading the platform's Jaeger (JAEGER_QUERY_URL) through its HTTP query API, for the trace tests."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

SERVICE = "tenancy-operator"


def query_url() -> str:
    url = os.environ.get("JAEGER_QUERY_URL", "")
    assert url, "JAEGER_QUERY_URL is not set: the platform has no Jaeger (platform/jaeger.sh start, or make up)"
    return url


def passes(tenant: str, since: float | None = None, limit: int = 200) -> list[dict]:
    """Traces whose root is a `reconcile Tenant` pass over `tenant` (started after `since`, Unix seconds)."""
    params = {"service": SERVICE, "operation": "reconcile Tenant", "tags": json.dumps({"tenancy.tenant": tenant}),
              "limit": limit, "lookback": "1h"}
    if since is not None:
        params["start"] = int(since * 1e6)
    with urllib.request.urlopen(f"{query_url()}/api/traces?{urllib.parse.urlencode(params)}", timeout=10) as reply:
        return json.load(reply)["data"]


def tags(span: dict) -> dict:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def parent(span: dict) -> str | None:
    return next((r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"), None)
