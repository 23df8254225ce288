"""From a Backend object and its admin Secret to the Target an adapter connects with."""

from __future__ import annotations

import asyncio
import base64

import pytest
from tenancy_operator.handlers import targets


@pytest.fixture
def admin_secret(monkeypatch):
    async def get(kind, name, namespace=None):
        assert kind == "Secret"
        data = {"username": "admin", "password": "pw", "ca.crt": "CA"}
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}} if name == "s" else None

    monkeypatch.setattr(targets.kube, "get", get)


def _search(**search) -> dict:
    spec = {"type": "search", "endpoint": {"host": "h", "port": 9200, "tls": True}, "adminSecretRef": {"name": "s"}}
    return {"metadata": {"name": "es"}, "spec": {**spec, **({"search": search} if search else {})}}


def test_search_flavor_reaches_the_adapter_and_defaults_to_opensearch(admin_secret):
    """Backend.spec.search.flavor picks the security API the search adapter speaks (backends/search_es.py)."""
    es = asyncio.run(targets.target_for(_search(flavor="elasticsearch")))
    assert (es.extra["flavor"], es.tls, es.username, es.extra["ca.crt"]) == ("elasticsearch", True, "admin", "CA")
    assert asyncio.run(targets.target_for(_search())).extra["flavor"] == "opensearch"
    assert "password" not in es.extra


def test_a_missing_admin_secret_names_it(admin_secret):
    backend = _search()
    backend["spec"]["adminSecretRef"] = {"name": "gone"}
    with pytest.raises(targets.TargetError, match="admin Secret .*/gone not found"):
        asyncio.run(targets.target_for(backend))
