"""A service's `backend:` names the Backend it is placed on, for every placed service alike."""

from __future__ import annotations

import asyncio

import pytest
from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.backends.base import Target
from tenancy_operator.handlers import services_part


def _backend(name: str, type_: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"type": type_, "capacity": 100},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch):
    async def target_for(backend):  # the admin Secret read is the only I/O resolve does
        return Target(name=backend["metadata"]["name"], type=backend["spec"]["type"], host="h", port=1)

    monkeypatch.setattr(services_part, "target_for", target_for)


@pytest.mark.parametrize("service", sorted(services_part.SERVICES))
def test_a_named_backend_is_used_for_every_service(service):
    # "b-emptier" has more free capacity; without the name, placement would choose it.
    backends = {"a-named": _backend("a-named", service), "b-emptier": _backend("b-emptier", service),
                "wrong-type": _backend("wrong-type", "vault" if service != "vault" else "postgres")}
    counts = {(service, "a-named"): 50}
    named = TenantSpec.model_validate({service: {"enabled": True, "backend": "a-named"}})
    assert asyncio.run(services_part.resolve(named, {}, backends, counts)).placement == {service: "a-named"}
    unnamed = TenantSpec.model_validate({service: {"enabled": True}})
    assert asyncio.run(services_part.resolve(unnamed, {}, backends, counts)).placement == {service: "b-emptier"}
    wrong = TenantSpec.model_validate({service: {"enabled": True, "backend": "wrong-type"}})
    problem = asyncio.run(services_part.resolve(wrong, {}, backends, counts)).problems[service]
    assert problem.reason == "BackendTypeMismatch" and problem.stalled
