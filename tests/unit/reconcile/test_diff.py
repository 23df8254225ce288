import pytest
from tenancy_operator.reconcile.diff import Action, contains, plan


def _obj(kind="ConfigMap", name="x", **rest):
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, **rest.pop("metadata", {})}, **rest}


@pytest.mark.parametrize(
    "observed,desired,expected",
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"l": [1, 2]}, {"l": [1, 2]}, True),
        ({"l": [1, 2, 3]}, {"l": [1, 2]}, False),
        ({"hard": {"memory": "16Gi"}}, {"hard": {"memory": "16384Mi"}}, True),
        ({"hard": {"memory": "16Gi"}}, {"hard": {"memory": "8Gi"}}, False),
        (None, {}, True),
        ({"labels": {"a": "1"}}, {"labels": {"a": "1", "b": "2"}}, False),
    ],
    ids=["subset", "value", "list-equal", "list-extra", "quantity-equal", "quantity-diff", "empty", "label-missing"],
)
def test_contains(observed, desired, expected):
    assert contains(observed, desired) is expected


def test_plan_orders_create_patch_noop_replace_delete():
    desired = [
        _obj(name="new"),
        _obj(name="same", data={"k": "v"}),
        _obj(name="drifted", data={"k": "v"}),
        _obj(kind="RoleBinding", name="rb", roleRef={"name": "admin"}, subjects=[{"name": "a"}]),
    ]
    observed = {
        ("ConfigMap", "same"): _obj(name="same", data={"k": "v"}, metadata={"uid": "1"}),
        ("ConfigMap", "drifted"): _obj(name="drifted", data={"k": "edited"}),
        ("RoleBinding", "rb"): _obj(kind="RoleBinding", name="rb", roleRef={"name": "view"}, subjects=[{"name": "a"}]),
    }
    stale = _obj(name="old")
    result = plan(desired, observed, prune=[stale])
    assert [(s.action, s.name) for s in result.steps] == [
        (Action.CREATE, "new"),
        (Action.NOOP, "same"),
        (Action.PATCH, "drifted"),
        (Action.REPLACE, "rb"),
        (Action.DELETE, "old"),
    ]
    assert len(result.writes) == 4


def test_removed_label_is_drift():
    desired = [_obj(metadata={"labels": {"tenancy.dev/tenant": "a"}})]
    observed = {("ConfigMap", "x"): _obj(metadata={"labels": {"other": "1"}})}
    assert plan(desired, observed).steps[0].action is Action.PATCH


def test_steady_state_plans_no_writes():
    desired = [_obj(metadata={"labels": {"a": "1"}}, data={"k": "v"})]
    observed = {("ConfigMap", "x"): _obj(metadata={"labels": {"a": "1", "extra": "2"}, "resourceVersion": "9"},
                                         data={"k": "v"})}
    assert plan(desired, observed).writes == []
