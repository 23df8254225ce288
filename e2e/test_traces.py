"""Traces: a tenant's provisioning pass is found in the platform's Jaeger, through its query API.

The e2e operator exports spans over OTLP/HTTP to Jaeger (conftest sets TENANCY_OTLP_ENDPOINT from
the platform's JAEGER_OTLP_URL). The test asks Jaeger, not the operator, for the tenant's traces and
finds one pass whose root span `reconcile Tenant` has a child span `<type>.ensure` on each of its
Backends (PostgreSQL, Redis, OpenBao), every one with the tenant, the Backend and outcome `ok`, and
which wrote (provisioning, not a verify pass). No span may carry a value of the tenant's credentials.
"""

from __future__ import annotations

import base64
import json
import secrets

from . import kube
from .kube import kubectl, tenant_yaml
from .traces import parent, passes, tags

EXPECTED = {"postgres": "pg-main", "redis": "redis-main", "vault": "vault-main"}


def _provisioning(trace: dict, tenant: str) -> dict | None:
    """The trace's root span and its ensure children by backend type, if it is a complete provisioning pass."""
    roots = [s for s in trace["spans"] if s["operationName"] == "reconcile Tenant" and parent(s) is None]
    if len(roots) != 1 or tags(roots[0]).get("tenancy.tenant") != tenant:
        return None
    root = roots[0]
    children = {}
    for span in trace["spans"]:
        if span["operationName"].endswith(".ensure") and parent(span) == root["spanID"]:
            children[tags(span).get("tenancy.backend_type")] = tags(span)
    if not all(children.get(t, {}).get("tenancy.outcome") == "ok" for t in EXPECTED):
        return None
    if not sum(int(children[t].get("tenancy.writes", 0)) for t in EXPECTED):
        return None  # a verify pass: everything was already there
    return {"root": root, "children": children}


def test_a_tenants_provisioning_trace_is_in_jaeger_with_a_child_span_per_backend(operator, backends, cleanup_tenants):
    assert operator.extra_env.get("TENANCY_OTLP_ENDPOINT"), "the e2e operator runs without tracing"
    name = f"traced-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    kubectl("apply", "-f", "-", input=tenant_yaml(name, postgres={"enabled": True}, redis={"enabled": True},
                                                     vault={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=120s", timeout=140)

    def found():
        return next((p for t in passes(name) if (p := _provisioning(t, name))), None)

    # Spans leave the operator in batches every 2 s; Jaeger stores them a moment later.
    provisioning = kube.eventually(found, timeout=30, interval=1, message=f"a provisioning trace of {name} in Jaeger")
    root = tags(provisioning["root"])
    assert root["tenancy.outcome"] == "ok", root
    for backend_type, backend in EXPECTED.items():
        span = provisioning["children"][backend_type]
        assert span["tenancy.tenant"] == name and span["tenancy.backend"] == backend, span

    # Nothing of the tenant's credentials reaches a span, also not base64-encoded.
    secret = json.loads(kubectl("get", "secret", "-n", f"tenant-{name}", "-l", "tenancy.dev/tenant", "-o", "json").stdout)
    values = {key: base64.b64decode(v).decode(errors="replace") for s in secret["items"]
              for key, v in (s.get("data") or {}).items()
              if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET", "_URL"))}  # URLs hold passwords
    assert values.keys() >= {"PGPASSWORD", "REDIS_PASSWORD"}, f"the tenant's credentials Secret has {sorted(values)}"
    stored = json.dumps(passes(name))
    for key, value in values.items():
        assert value not in stored and base64.b64encode(value.encode()).decode() not in stored, f"{key} is in a span"
