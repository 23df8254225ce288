"""The pure parts of the deletion guards: effective protection, abandoned data, and what was left."""

from tenancy_operator.handlers import protection, teardown


class _Index(dict):
    """A kopf index as the handlers see it: key -> a store of values."""


def _backend(name: str, **annotations: str) -> dict:
    return {"metadata": {"name": name, "annotations": annotations}}


def test_the_label_mirrors_the_policys_protection_only():
    policies = _Index({"protect": [True], "plain": [False]})
    assert protection.wanted({"lifecyclePolicyRef": "protect"}, policies)
    assert not protection.wanted({"lifecyclePolicyRef": "plain"}, policies)
    # The Tenant's own flag is read by the admission policy directly: lifting it must act at once.
    assert not protection.wanted({"lifecyclePolicyRef": "plain", "deletionProtection": True}, policies)
    assert not protection.wanted({"lifecyclePolicyRef": "missing"}, policies)
    assert not protection.wanted({}, None)


def test_data_is_abandoned_only_where_a_person_said_so():
    tenant = {"metadata": {"name": "acme", "annotations": {"tenancy.dev/abandon-data": "pg-old, redis-old"}}}
    assert teardown.abandoned(tenant, _backend("pg-old"))
    assert teardown.abandoned(tenant, _backend("redis-old"))
    assert not teardown.abandoned(tenant, _backend("pg-main"))
    assert not teardown.abandoned({"metadata": {}}, _backend("pg-main"))
    assert teardown.abandoned({"metadata": {}}, _backend("pg-dead", **{"tenancy.dev/abandon-backend-data": "true"}))
    assert not teardown.abandoned({"metadata": {}}, _backend("pg-dead", **{"tenancy.dev/abandon-backend-data": "no"}))


def test_the_abandon_event_names_what_was_left():
    assert teardown.left_behind("postgres", "acme-co") == (
        "database t_acme_co, roles t_acme_co_owner, t_acme_co_a, t_acme_co_b")
    assert "tenant:acme" in teardown.left_behind("redis", "acme")
