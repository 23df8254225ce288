"""The Elasticsearch flavour's requests, read at the one place they leave (search_es._send); no server.

A small in-memory stand-in answers like Elasticsearch's security API does (GET of a missing role or
user is a 404, a DELETE of one too), so ensure's read-then-write logic runs whole. These tests are
the only proof of the Elasticsearch path (docs/how-it-works.md says so).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import AuthenticationException, NotFoundError
from tenancy_operator.api.conditions import Reason
from tenancy_operator.backends import search, search_es
from tenancy_operator.backends.base import BackendRefused, OwnedByAnotherTenant, Target, TenantSlice
from tenancy_operator.handlers import services_part

ES = Target(name="es-1", type="search", host="es.example", port=9200, username="admin", password="pw", tls=True,
            extra={"flavor": "elasticsearch"})


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("https", "es.example", 9200))


class FakeElasticsearch:
    """Objects by path; every request recorded as (method, path, body, user)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.passwords: dict[str, str] = {}
        self.requests: list[tuple[str, str, Any, str]] = []

    async def send(self, client: Any, method: str, path: str, body: Any) -> Any:
        user = client._headers.get("authorization", "")  # recorded for "as whom"
        self.requests.append((method, path, body, user))
        name = path.rsplit("/", 1)[-1]
        if path == "/":
            return {"version": {"number": "9.1.0"}}
        if path.endswith("/_has_privileges"):
            return {"has_all_requested": True}
        if path.endswith("/_authenticate"):
            return {"username": "?"}
        if path.endswith("/_settings?expand_wildcards=all"):
            return {k[1:]: v for k, v in self.objects.items() if fnmatch.fnmatchcase(k[1:], path.split("/")[1])}
        if method == "GET" and path.startswith("/_index_template/"):
            if path not in self.objects:
                raise NotFoundError("missing", _meta(404), {})
            return {"index_templates": [{"name": name, "index_template": self.objects[path]}]}
        if method == "GET":
            if path not in self.objects:
                raise NotFoundError("missing", _meta(404), {})
            return {name: self.objects[path]}
        if method == "PUT":
            stored = {k: v for k, v in body.items() if k != "password"}
            self.objects[path] = stored
            return {"created": True}
        if method == "DELETE":
            if self.objects.pop(path, None) is None:
                raise NotFoundError("missing", _meta(404), {"found": False})
            return {"found": True}
        raise AssertionError(f"unexpected {method} {path}")

    def writes(self) -> list[tuple[str, str, Any]]:
        return [(m, p, b) for m, p, b, _ in self.requests if m in ("PUT", "DELETE", "POST") and
                not p.endswith("/_has_privileges")]


@pytest.fixture
def es(monkeypatch):
    fake = FakeElasticsearch()
    monkeypatch.setattr(search_es, "_send", fake.send)
    search_es.forget_cache()
    yield fake
    search_es.forget_cache()


def slice_(**kw) -> TenantSlice:
    return TenantSlice(**{"tenant": "acme", "namespace": "tenant-acme", "uid": "uid-1", "password": "s3cret", **kw})


def run(coro):
    return asyncio.run(coro)


def test_first_ensure_sends_role_template_and_user_bodies_through_the_search_adapter(es):
    report = run(search.ensure(ES, slice_()))  # the registered adapter dispatches on the flavour
    puts = {p: b for m, p, b in es.writes() if m == "PUT"}
    assert puts["/_security/role/tenant-acme"] == {
        "cluster": [], "applications": [], "run_as": [], "metadata": {"tenancy.dev/tenant-uid": "uid-1"},
        "indices": [{"names": ["t-acme_*"], "privileges": ["read", "write", "create_index", "delete_index",
                                                           "view_index_metadata", "monitor", "maintenance"],
                     "allow_restricted_indices": False}]}
    assert puts["/_security/user/tenant-acme_a"] == {"password": "s3cret", "roles": ["tenant-acme"], "enabled": True,
                                                     "metadata": {"tenancy.dev/tenant-uid": "uid-1"}}
    assert puts["/_index_template/tenant-acme"]["index_patterns"] == ["t-acme_*"]
    assert puts["/_index_template/tenant-acme"]["_meta"] == {"tenancy.dev/tenant-uid": "uid-1"}
    assert "/_security/user/tenant-acme_b" not in puts and not any("role_mapping" in p for p in puts)
    assert report.endpoints["SEARCH_USERNAME"] == "tenant-acme_a" and report.endpoints["SEARCH_URL"].startswith("https://")
    assert sorted(report.repaired) == ["index template tenant-acme", "role tenant-acme", "user tenant-acme_a"]


def test_role_privileges_hold_no_alias_settings_or_cluster_power():
    body = search_es.role_body("acme", "u")
    privileges = set(body["indices"][0]["privileges"])
    assert not privileges & {"all", "manage", "manage_aliases", "manage_ilm", "*"}
    assert body["cluster"] == [] and body["run_as"] == []
    assert not fnmatch.fnmatchcase("t-acme-b_x", body["indices"][0]["names"][0])


def test_steady_state_only_reads_and_authenticates_once_as_the_tenant(es):
    run(search.ensure(ES, slice_()))
    es.requests.clear()
    report = run(search.ensure(ES, slice_()))
    assert report.repaired == [] and es.writes() == []
    assert [p for m, p, _b, _u in es.requests if p.endswith("_authenticate")] == ["/_security/_authenticate"]


def test_a_wrong_password_is_put_again_and_drift_in_the_role_is_repaired(es, monkeypatch):
    run(search.ensure(ES, slice_()))
    es.objects["/_security/role/tenant-acme"]["indices"][0]["names"] = ["*"]

    async def refused(target, method, path, body=None, *, auth=None, missing_ok=False):
        raise BackendRefused("search backend es-1: the user's username/password were refused (HTTP 401)")

    original = search_es._call

    async def call(target, method, path, body=None, *, auth=None, missing_ok=False):
        if auth:
            return await refused(target, method, path, body, auth=auth)
        return await original(target, method, path, body, auth=auth, missing_ok=missing_ok)

    monkeypatch.setattr(search_es, "_call", call)
    es.requests.clear()
    report = run(search.ensure(ES, slice_()))
    assert report.diffs["role tenant-acme"].startswith("indices") and report.diffs["user tenant-acme_a"] == "password"
    assert es.objects["/_security/role/tenant-acme"]["indices"][0]["names"] == ["t-acme_*"]


def test_rotation_overlap_then_end_deletes_the_previous_slots_user(es):
    run(search.ensure(ES, slice_()))
    run(search.ensure(ES, slice_(slot="b", password="new", previous_valid=True)))
    assert {"/_security/user/tenant-acme_a", "/_security/user/tenant-acme_b"} <= set(es.objects)
    es.requests.clear()
    run(search.ensure(ES, slice_(slot="b", password="new")))
    assert es.writes() == [("DELETE", "/_security/user/tenant-acme_a", None)]


def test_suspend_and_close_delete_both_users_and_keep_role_template_and_indices(es):
    run(search.ensure(ES, slice_()))
    es.objects["/t-acme_docs"] = {}
    run(search.ensure(ES, slice_(suspended=True)))
    assert not any("/_security/user/" in p for p in es.objects)
    assert {"/_security/role/tenant-acme", "/_index_template/tenant-acme", "/t-acme_docs"} <= set(es.objects)
    assert run(search.close(ES, "acme")) == []


def test_delete_removes_indices_by_exact_name_then_template_then_role(es):
    run(search.ensure(ES, slice_()))
    es.objects["/t-acme_docs"] = {}
    es.objects["/t-acme-b_docs"] = {}  # another tenant's: never touched
    es.requests.clear()
    done = run(search.delete(ES, "acme", "uid-1"))
    deletes = [p for m, p, _b in es.writes() if m == "DELETE"]
    assert deletes == ["/_security/user/tenant-acme_a", "/t-acme_docs", "/_index_template/tenant-acme",
                       "/_security/role/tenant-acme"]
    assert "/t-acme-b_docs" in es.objects and "role tenant-acme" in done


def test_another_tenants_mark_refuses_before_any_write(es):
    es.objects["/_security/role/tenant-acme"] = search_es.role_body("acme", "uid-other")
    with pytest.raises(OwnedByAnotherTenant):
        run(search.ensure(ES, slice_()))
    with pytest.raises(OwnedByAnotherTenant):
        run(search.delete(ES, "acme", "uid-1"))
    assert es.writes() == []


def test_probe_asks_has_privileges_for_what_the_adapter_needs(es):
    assert run(search.probe(ES)) == "9.1.0"
    assert ("POST", "/_security/user/_has_privileges", search_es.ADMIN_PRIVILEGES) in [
        (m, p, b) for m, p, b, _ in es.requests]


def test_a_refused_admin_login_names_the_secret(monkeypatch):
    async def send(client, method, path, body):
        raise AuthenticationException("unauthorized", _meta(401), {})

    monkeypatch.setattr(search_es, "_send", send)
    search_es.forget_cache()
    with pytest.raises(BackendRefused, match="admin Secret's username/password were refused"):
        run(search.probe(ES))


def test_client_is_the_elasticsearch_client_with_basic_auth_and_the_secrets_ca():
    search_es.forget_cache()
    client = search_es._client(Target(name="es-2", type="search", host="h", port=9200, username="u", password="p"))
    assert type(client).__name__ == "AsyncElasticsearch"
    assert client._headers["authorization"].startswith("Basic ")
    search_es.forget_cache()


BIG = {"settings": {"index": {"number_of_shards": "5", "number_of_replicas": "1"}}}


def test_elasticsearch_role_is_fenced_at_the_limit_and_given_back_after_a_delete(es):
    asyncio.run(search.ensure(ES, slice_(max_shards=3)))
    es.objects["/t-acme_big"] = BIG
    es.requests.clear()
    report = asyncio.run(search.ensure(ES, slice_(max_shards=3)))
    puts = {p: b for m, p, b in es.writes() if m == "PUT"}
    assert "create_index" not in puts["/_security/role/tenant-acme"]["indices"][0]["privileges"]
    assert report.repaired == [] and "10 shards of spec.search.maxShards 3" in report.limit
    es.requests.clear()
    assert asyncio.run(search.ensure(ES, slice_(max_shards=3))).repaired == [] and es.writes() == []
    del es.objects["/t-acme_big"]
    report = asyncio.run(search.ensure(ES, slice_(max_shards=3)))
    assert "create_index" in es.objects["/_security/role/tenant-acme"]["indices"][0]["privileges"]
    assert report.limit == "" and report.repaired == []


def test_the_part_stays_true_with_reason_limit_reached(es):
    es.objects["/t-acme_big"] = BIG
    part, _ = asyncio.run(services_part.run("search", ES, slice_(max_shards=10), logging.getLogger("t")))
    assert part.ok and part.reason == Reason.LIMIT_REACHED and "10 shards" in part.message
