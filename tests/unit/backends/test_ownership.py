"""The ownership verdict every adapter reaches before its first write (backends.base.Ownership)."""

import pytest
from tenancy_operator.backends import postgres_sql as sql
from tenancy_operator.backends.base import OwnedByAnotherTenant, Ownership, TenantSlice

ME, OLD, OTHER = "uid-me", "uid-old", "uid-other"


def verdict(marks: dict[str, str | None], adopt: frozenset[str] = frozenset()) -> Ownership:
    o = Ownership("pg-main", TenantSlice("acme", "tenant-acme", uid=ME, adopt_uids=adopt))
    for obj, uid in marks.items():
        o.see(obj, uid)
    o.check()
    return o


def test_ours_needs_nothing():
    o = verdict({"role a": ME, "database d": ME})
    assert o.to_mark == [] and o.adopted == []


def test_new_or_unmarked_objects_are_marked_as_ours():
    o = verdict({"role a": None, "database d": ME})
    assert o.to_mark == ["role a"] and o.adopted == []


def test_another_uid_is_refused_before_anything_is_written():
    with pytest.raises(OwnedByAnotherTenant) as info:
        verdict({"role a": ME, "role b": OTHER, "database d": OTHER})
    assert info.value.owner_uid == OTHER and info.value.objects == ["role b", "database d"]


def test_retained_data_is_adopted_only_when_listed():
    with pytest.raises(OwnedByAnotherTenant):
        verdict({"database d": OLD})
    o = verdict({"database d": OLD, "role a": None}, adopt=frozenset({OLD}))
    assert o.to_mark == ["database d", "role a"] and o.adopted == ["database d"]


def test_a_slice_without_uid_is_a_bug_not_an_adoption():
    o = Ownership("pg-main", TenantSlice("acme", "tenant-acme"))
    o.see("role a", None)
    with pytest.raises(ValueError):
        o.check()


def test_marks_are_quoted_as_literals():
    assert sql.comment_on_role("t_acme_a", "tenancy.dev/tenant-uid=abc") == \
        "COMMENT ON ROLE \"t_acme_a\" IS 'tenancy.dev/tenant-uid=abc'"
    assert sql.comment_on_database("t_acme", "x'y") == "COMMENT ON DATABASE \"t_acme\" IS 'x''y'"


def test_only_grants_by_the_tenant_to_another_tenant_or_public_count_as_doors():
    import json

    from tenancy_operator.api import names
    from tenancy_operator.backends.postgres import open_doors

    other, old = "0b0b0b0b-0000-4000-8000-000000000002", "0c0c0c0c-0000-4000-8000-000000000003"
    ours = ("t_acme_owner", "t_acme_a", "t_acme_b")
    grants = [{**g, "privileges": ["CONNECT"]} for g in [
        {"role": "t_b_a", "grantor": "t_acme_owner", "mark": names.owner_mark(other)},  # a door: revoked
        {"role": "t_b_owner", "grantor": "t_acme_a", "mark": names.owner_mark(other)},  # by a login role
        {"role": "", "grantor": "t_acme_b", "mark": ""},  # PUBLIC, by a login role (the owner's: another rule)
        {"role": "", "grantor": "t_acme_owner", "mark": ""},
        {"role": "t_acme_a", "grantor": "t_acme_owner", "mark": names.owner_mark(ME)},  # ours
        {"role": "t_acme_old", "grantor": "t_acme_owner", "mark": names.owner_mark(old)},  # a restore's earlier UID
        {"role": "backup_reader", "grantor": "t_acme_owner", "mark": ""},  # platform roles keep their grants
        {"role": "monitoring", "grantor": "t_acme_owner", "mark": "read-only role for Grafana"},
        {"role": "t_b_b", "grantor": "platform_admin", "mark": names.owner_mark(other)},  # not the tenant's grant
    ]]
    want = TenantSlice("acme", "tenant-acme", uid=ME, adopt_uids=frozenset({old}))
    assert open_doors({"grantees": json.dumps(grants)}, want, ours) == [
        ("", "t_acme_b", ["CONNECT"]), ("t_b_a", "t_acme_owner", ["CONNECT"]), ("t_b_owner", "t_acme_a", ["CONNECT"])]
    assert open_doors({"grantees": "[]"}, want, ours) == []
    assert open_doors(None, want, ours) == []


def test_a_member_of_the_tenants_roles_marked_as_another_tenants_is_a_door():
    import json

    from tenancy_operator.api import names
    from tenancy_operator.backends.base import foreign_members

    other, old = "0b0b0b0b-0000-4000-8000-000000000002", "0c0c0c0c-0000-4000-8000-000000000003"
    roles = {
        "t_acme_owner": {"members": json.dumps({"t_acme_a": names.owner_mark(ME), "t_acme_b": names.owner_mark(ME),
                                                "tenancy_admin": ""})},  # the admin joining for a moment
        "t_acme_a": {"members": json.dumps({"t_b_a": names.owner_mark(other), "t_acme_old": names.owner_mark(old),
                                            "reporting": "read-only role of the platform"})},
        "t_acme_b": {"members": "{}"},
    }
    want = TenantSlice("acme", "tenant-acme", uid=ME, adopt_uids=frozenset({old}))
    assert foreign_members(roles, want) == [("t_acme_a", "t_b_a")]
