"""A Tenant whose name slipped past the CRD (made under an older one) never loops and always deletes.

The API server now refuses such names at apply (e2e/test_names_ownership.py proves that), so the
operator-side path is reached only with objects made before; it is driven here directly, with no
server: both paths must return before touching any API or backend.
"""

import asyncio
import logging

import pytest
from tenancy_operator.api.conditions import Reason
from tenancy_operator.handlers import tenant, tenant_services

TOO_LONG = "bh-long-" + "x" * 48  # 56 characters, the tenant L


class NoServers:
    def __getattr__(self, name):
        raise AssertionError(f"touched the API server: kube.{name}")


@pytest.fixture
def events(monkeypatch):
    posted = []
    monkeypatch.setattr(tenant.events, "post", lambda body, **kw: posted.append(kw))
    for module in (tenant, tenant_services):
        monkeypatch.setattr(module, "kube", NoServers())
    monkeypatch.setattr(tenant.namespace_part, "kube", NoServers())
    return posted


@pytest.mark.parametrize("name", [TOO_LONG, "a" * 64])
def test_reconcile_stalls_with_invalid_name(events, name):
    outcome = asyncio.run(tenant._converge(name, "uid-1", {"spec": {}}, logging.getLogger("t"), {}))
    [part] = outcome.parts
    assert (part.ok, part.stalled, part.reason) == (False, True, Reason.INVALID_NAME)
    assert f"{len(name)} characters; at most 55" in part.message and "Delete this Tenant" in part.message


@pytest.mark.parametrize("name", [TOO_LONG, "a" * 64, "Not_A_Label"])
def test_delete_of_an_invalid_name_completes(events, name):
    asyncio.run(tenant.deleted(body={"metadata": {"name": name}}, meta={"name": name}, status={},
                               logger=logging.getLogger("t")))
    assert [e["reason"] for e in events] == [Reason.INVALID_NAME]
    assert "nothing on the backends or namespaces was touched" in events[0]["message"]
