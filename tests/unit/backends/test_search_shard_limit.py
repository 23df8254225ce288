"""spec.search.maxShards: counting the tenant's shards and fencing its role at the limit (both flavours).

The OpenSearch path is proven against the real server by e2e/test_search.py; here the decisions, and
the Elasticsearch flavour's requests are in test_search_es.
"""

from __future__ import annotations

from tenancy_operator.backends import search, search_es
from tenancy_operator.backends.base import Report, TenantSlice
from tenancy_operator.backends.search_limits import limit_note, role_for_limit, shard_count

BIG = {"settings": {"index": {"number_of_shards": "5", "number_of_replicas": "1"}}}


def test_shards_count_primaries_and_replicas_of_every_index():
    assert shard_count({}) == 0
    assert shard_count({"t-a_x": BIG, "t-a_y": {"settings": {"index": {"number_of_shards": "1"}}}}) == 11


def test_the_note_appears_at_the_limit_and_names_the_numbers():
    assert limit_note("a", 2, 3) == ""
    assert limit_note("a", 3, 0) == ""  # no limit
    note = limit_note("a", 3, 3)
    assert "3 shards of spec.search.maxShards 3" in note and "t-a_*" in note


def test_at_the_limit_the_role_loses_creation_and_settings_only():
    full, fenced = (set(search.role_body("a", "u", at)["index_permissions"][0]["allowed_actions"]) for at in (False, True))
    assert full - fenced == {"create_index", "indices:admin/settings/update"}
    assert {"crud", "indices:admin/delete", "indices_monitor"} <= fenced
    es_full, es_fenced = (set(search_es.role_body("a", "u", at)["indices"][0]["privileges"]) for at in (False, True))
    assert es_full - es_fenced == {"create_index"} and {"read", "write", "delete_index"} <= es_fenced


def _decide(live, settings, max_shards=3):
    report = Report()
    want = TenantSlice(tenant="a", namespace="tenant-a", uid="u", max_shards=max_shards)
    wanted, drift, decided = role_for_limit(want, report, settings, live, search.role_body, search._role_differs)
    return wanted, drift, decided, report


def test_putting_the_fence_on_and_off_is_a_decision_not_drift():
    at = {"t-a_x": BIG}
    wanted, drift, decided, report = _decide(search.role_body("a", "u"), at)
    assert "create_index" not in wanted["index_permissions"][0]["allowed_actions"] and drift and decided
    assert report.limit.startswith("shard limit reached")
    wanted, drift, decided, report = _decide(search.role_body("a", "u", True), {})
    assert "create_index" in wanted["index_permissions"][0]["allowed_actions"] and drift and decided
    assert report.limit == ""
    assert _decide(search.role_body("a", "u", True), at)[1:3] == ([], False)  # steady at the limit: no write


def test_a_missing_or_otherwise_changed_role_is_drift():
    assert _decide(None, {"t-a_x": BIG})[1:3] == (["missing"], False)
    changed = search.role_body("a", "u")
    changed["index_permissions"][0]["index_patterns"] = ["*"]
    assert _decide(changed, {})[2] is False
