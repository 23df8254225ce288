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


@pytest.mark.parametrize("service", sorted(services_part.SERVICES))
def test_a_named_backend_paused_or_full_takes_no_new_tenant_and_keeps_those_it_holds(service):
    """Backend.spec.paused and capacity bind a new placement on a named Backend as they bind placement's
    own choice; a tenant already placed there stays (it is the Backend's, not a new one)."""
    paused, full = _backend("paused", service), _backend("full", service)
    paused["spec"]["paused"] = True
    full["spec"]["capacity"] = 2
    backends, counts = {"paused": paused, "full": full}, {(service, "full"): 2}
    for name, reason, words in (("paused", "BackendPaused", "is paused"), ("full", "BackendFull", "capacity is 2")):
        spec = TenantSpec.model_validate({service: {"enabled": True, "backend": name}})
        got = asyncio.run(services_part.resolve(spec, {}, backends, counts))
        problem = got.problems[service]
        assert (problem.reason, problem.stalled, got.placement) == (reason, True, {}), problem
        assert words in problem.message and "spec." in problem.message
        kept = asyncio.run(services_part.resolve(spec, {service: name}, backends, counts))
        assert kept.placement == {service: name} and not kept.problems
    room = TenantSpec.model_validate({service: {"enabled": True, "backend": "full"}})
    assert asyncio.run(services_part.resolve(room, {}, backends, {(service, "full"): 1})).placement == {service: "full"}
