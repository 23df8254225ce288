from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.reconcile import labels, ownership
from tenancy_operator.reconcile.namespace import desired_objects


def _desired(spec=None):
    return desired_objects("acme", "uid-1", TenantSpec.model_validate(spec or {}))


def test_objects_and_labels():
    objs = _desired({"owners": [{"kind": "Group", "name": "acme-admins"}]})
    assert [o["kind"] for o in objs] == ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "RoleBinding"]
    ns = objs[0]
    assert ns["metadata"]["name"] == "tenant-acme"
    assert ns["metadata"]["labels"][labels.TENANT] == "acme"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objs[1:]:
        assert obj["metadata"]["namespace"] == "tenant-acme"
        assert obj["metadata"]["labels"][labels.TENANT] == "acme"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_no_owners_no_rolebinding():
    assert "RoleBinding" not in [o["kind"] for o in _desired()]


def test_a_system_owner_stored_before_the_crd_refused_it_is_never_bound():
    """system:authenticated as an owner gave every identity, other tenants' pods included, admin of the
    namespace and its credentials Secret. The CRD refuses it now; one stored earlier is left out."""
    from tenancy_operator.reconcile.namespace import system_wide_owners

    spec = {"owners": [{"kind": "Group", "name": "system:authenticated"}, {"kind": "User", "name": "system:anonymous"},
                       {"kind": "Group", "name": "acme-admins"}, {"kind": "ServiceAccount", "name": "ci:deployer"}]}
    binding = next(o for o in _desired(spec) if o["kind"] == "RoleBinding")
    assert [s["name"] for s in binding["subjects"]] == ["acme-admins", "deployer"]
    assert system_wide_owners(TenantSpec.model_validate(spec)) == ["Group system:authenticated", "User system:anonymous"]
    only = {"owners": [{"kind": "Group", "name": "system:serviceaccounts"}]}
    assert "RoleBinding" not in [o["kind"] for o in _desired(only)]  # the live one is then pruned


def test_quota_follows_spec():
    quota = _desired({"quota": {"cpu": "2", "pods": "3"}})[1]
    assert quota["spec"]["hard"]["pods"] == "3" and quota["spec"]["hard"]["requests.cpu"] == "2"


def test_quota_maps_every_field():
    hard = _desired({"quota": {"cpu": "3", "memory": "5Gi", "pods": "7", "storage": "11Gi", "workflowRuns": "4"}}
                    )[1]["spec"]["hard"]
    assert hard == {"requests.cpu": "3", "limits.cpu": "3", "requests.memory": "5Gi", "limits.memory": "5Gi",
                    "pods": "7", "requests.storage": "11Gi", "count/workflowruns.tenancy.dev": "4"}


def test_network_policy_admits_only_same_namespace_and_platform():
    netpol = _desired()[3]["spec"]
    assert netpol["policyTypes"] == ["Ingress"]
    assert netpol["ingress"] == [{"from": [{"podSelector": {}},
                                           {"namespaceSelector": {"matchLabels": {labels.PLATFORM: "true"}}}]}]


def test_service_account_owner_binds_in_its_namespace():
    rb = _desired({"owners": [{"kind": "ServiceAccount", "name": "ci:deployer"}, {"kind": "ServiceAccount", "name": "bot"}]})[-1]
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"},
                              {"kind": "ServiceAccount", "name": "bot", "namespace": "tenant-acme"}]


def _ns(labels_=None, deleting=False):
    meta = {"name": "tenant-acme", "labels": labels_ or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


def test_ownership():
    own = ownership.Ownership
    assert ownership.classify(None, "acme", False) is own.ABSENT
    assert ownership.classify(_ns({labels.TENANT: "acme"}), "acme", False) is own.OURS
    assert ownership.classify(_ns(), "acme", False) is own.FOREIGN
    assert ownership.classify(_ns(), "acme", True) is own.ADOPTABLE
    assert ownership.classify(_ns({labels.TENANT: "other"}), "acme", True) is own.FOREIGN
    assert ownership.classify(_ns({labels.TENANT: "acme"}, deleting=True), "acme", False) is own.TERMINATING


def test_operator_binds_itself_to_secrets_in_the_tenant_namespace_only():
    from tenancy_operator.reconcile.namespace import SECRETS_BINDING, OperatorIdentity

    identity = OperatorIdentity("tenancy-system", "tenancy-operator", "tenancy-operator-tenant-secrets")
    objs = desired_objects("acme", "uid-1", TenantSpec.model_validate({}), identity)
    binding = next(o for o in objs if o["metadata"]["name"] == SECRETS_BINDING)
    assert binding["metadata"]["namespace"] == "tenant-acme"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "tenancy-operator-tenant-secrets"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenancy-operator", "namespace": "tenancy-system"}]


def test_namespace_owned_by_this_tenant_uid_is_ours_even_without_its_label():
    ns = {"metadata": {"name": "tenant-acme", "labels": {}, "ownerReferences": [{"uid": "uid-1"}]}}
    assert ownership.classify(ns, "acme", False, "uid-1") is ownership.Ownership.OURS
    assert ownership.classify(ns, "acme", False, "uid-2") is ownership.Ownership.FOREIGN
