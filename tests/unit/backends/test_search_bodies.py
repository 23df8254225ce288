"""The OpenSearch adapter's request bodies: what the security plugin is asked to hold (no server)."""

from __future__ import annotations

import fnmatch

import pytest
from tenancy_operator.api import names
from tenancy_operator.backends import search


def test_role_grants_the_tenants_pattern_only_and_no_alias_or_admin_actions():
    body = search.role_body("acme", "uid-1")
    assert body["description"] == names.owner_mark("uid-1")
    assert body["index_permissions"] == [{"index_patterns": ["t-acme_*"], "allowed_actions": list(search.INDEX_ACTIONS),
                                          "fls": [], "masked_fields": []}]
    actions = set(search.INDEX_ACTIONS)
    assert not actions & {"indices_all", "manage", "manage_aliases", "*"}
    assert not any("alias" in a for a in actions)
    assert body["cluster_permissions"] == ["indices:data/write/bulk", "indices:data/read/mget", "indices:data/read/msearch",
                                           "indices:data/read/mtv", "indices:data/read/scroll"]


@pytest.mark.parametrize("a,b", [("a", "a-b"), ("a-b", "a"), ("iso-a", "iso-a-x"), ("x", "x-y-z")])
def test_one_tenants_pattern_never_covers_anothers_indices(a, b):
    assert not fnmatch.fnmatchcase(names.search_prefix(b) + "docs", search.pattern(a))
    assert fnmatch.fnmatchcase(names.search_prefix(a) + "docs", search.pattern(a))
    assert search.role_name(a) != search.role_name(b)
    assert {search.user_name(a, s) for s in search.SLOTS}.isdisjoint({search.user_name(b, s) for s in search.SLOTS})


def test_template_and_mapping_carry_the_mark_and_name_both_slots():
    template = search.template_body("acme", "uid-1")
    assert template["index_patterns"] == ["t-acme_*"] and template["_meta"] == {search.MARK_ATTRIBUTE: "uid-1"}
    assert template["template"]["settings"]["index"]["number_of_replicas"] == "0"
    mapping = search.mapping_body("acme", "uid-1")
    assert mapping["users"] == ["tenant-acme_a", "tenant-acme_b"] and mapping["backend_roles"] == []
    assert search.user_body("uid-1", None) == {"attributes": {search.MARK_ATTRIBUTE: "uid-1"}, "backend_roles": []}
    assert search.user_body("uid-1", "pw")["password"] == "pw"


def test_bad_names_and_slots_are_refused():
    for bad in ("", "A", "a_b", "-a", "x" * 56):
        with pytest.raises(ValueError):
            search.role_body(bad, "uid-1")
    with pytest.raises(ValueError):
        search.user_name("acme", "c")
    with pytest.raises(ValueError):
        search.role_body("acme", "not a uid!")


def test_role_drift_is_described_without_secrets():
    want = search.role_body("acme", "uid-1")
    assert search._role_differs(want, want) == []
    widened = {**want, "index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["indices_all"]}]}
    assert any("index_permissions" in d for d in search._role_differs(widened, want))


def test_a_mapping_that_reaches_every_tenants_user_is_unsafe_and_named():
    stock = {"own_index": {"users": ["*"], "backend_roles": [], "hosts": []},
             "all_access": {"users": [], "backend_roles": ["admin"], "hosts": []},
             "tenant-acme": {"users": ["tenant-acme_a", "tenant-acme_b"], "backend_roles": [], "hosts": []},
             "by_host": {"users": [], "hosts": ["10.0.0.*"]},
             "tenants_wildcard": {"users": ["tenant-*"]},
             "other_users": {"users": ["kibana*"]}}
    found = search.unsafe_mappings(stock)
    assert found == ["by_host (hosts ['10.0.0.*'])", "own_index (users ['*'])", "tenants_wildcard (users ['tenant-*'])"]
    assert search.unsafe_mappings({k: stock[k] for k in ("all_access", "tenant-acme", "other_users")}) == []
