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
    assert protection.wanted({}, None) is False
    # A policy that is gone (or not made yet) decides nothing: deleting a protecting policy must not lift
    # its protection (found live: the label went within 5 s, then `kubectl delete tenant` went through).
    assert protection.wanted({"lifecyclePolicyRef": "missing"}, policies) is None


def test_deleting_the_protecting_policy_keeps_the_label(monkeypatch):
    import asyncio
    import logging

    patches = []

    async def merge_patch(kind, name, namespace, patch):
        patches.append(patch)

    monkeypatch.setattr(protection.kube, "merge_patch", merge_patch)
    labelled = {"spec": {"lifecyclePolicyRef": "prot"}, "metadata": {"labels": {"tenancy.dev/deletion-protected": "true"}}}
    log = logging.getLogger("test")
    assert not asyncio.run(protection.mirror("race3", labelled, _Index({}), log)) and patches == []
    unlabelled = {"spec": {"lifecyclePolicyRef": "prot"}, "metadata": {}}
    assert not asyncio.run(protection.mirror("race4", unlabelled, _Index({}), log)) and patches == []
    # Pointing the reference at nothing (or a policy without protection) lifts it.
    assert asyncio.run(protection.mirror("race3", {**labelled, "spec": {}}, _Index({}), log))
    assert patches == [{"metadata": {"labels": {"tenancy.dev/deletion-protected": None}}}]


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
