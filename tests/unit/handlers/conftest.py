"""Shared by the tests that drive handlers/tenant.py's `_reconcile` with a fake API server.

`FakeTenantApi` holds Tenants by name and applies each status patch as the API server does (a JSON
merge patch, RFC 7386: `reconcile.status_patch.apply`, which tests/unit/reconcile/test_status_patch.py
holds to a merge written from the RFC); it counts patches and reads. The `tenant_pass` fixture puts it and a given converge outcome in place of the pass's I/O.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tenancy_operator.handlers import tenant, tenant_services
from tenancy_operator.reconcile.status_patch import apply


class FakeTenantApi:
    """Tenants by name; `merge_patch` applies RFC 7386, `get` returns a copy; both counted."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.patches: list[dict[str, Any]] = []
        self.gets = 0

    def obj(self, name: str) -> dict[str, Any]:
        return self.objects.setdefault(name, {"metadata": {"name": name}, "spec": {}, "status": {}})

    def status(self, name: str) -> dict[str, Any]:
        return self.obj(name)["status"]

    async def merge_patch(self, kind, name, namespace, patch, subresource=None):
        self.patches.append(copy.deepcopy(patch))
        self.objects[name] = apply(self.obj(name), patch)
        return copy.deepcopy(self.objects[name])

    async def get(self, kind, name, namespace=None):
        self.gets += 1
        return copy.deepcopy(self.obj(name))


@pytest.fixture
def tenant_pass(monkeypatch):
    """`install(converge)` puts a FakeTenantApi, `converge` (tenant._converge's signature) and an Event
    recorder in place of the pass's I/O; returns (api, events), each Event the keywords it was posted with."""
    kept = (tenant._written, tenant_services.carried, tenant._locks)
    before = [set(k) for k in kept]

    def install(converge):
        api, events = FakeTenantApi(), []

        async def mirror(*args, **kwargs):
            return False

        for module in (tenant, tenant_services):
            monkeypatch.setattr(module, "kube", api)
        monkeypatch.setattr(tenant, "_converge", converge)
        monkeypatch.setattr(tenant.protection, "mirror", mirror)
        monkeypatch.setattr(tenant.events, "post", lambda body, **kw: events.append(kw))
        return api, events

    yield install
    for state, had in zip(kept, before, strict=True):  # the passes' per-tenant memory goes with the test
        for name in set(state) - had:
            state.pop(name, None)
