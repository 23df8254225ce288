"""Tenant core on the real API server: the namespace slice, RBAC, admission, status, drift, events."""

from __future__ import annotations

import json
import time

from . import kube
from .kube import condition, eventually, get, kubectl, tenant_yaml

EXPECTED_KINDS = ["resourcequota/tenant-quota", "limitrange/tenant-limits", "networkpolicy/tenant-isolation",
                  "serviceaccount/tenant-app"]


def _ready(name: str, timeout: int = 30) -> None:
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", f"--timeout={timeout}s", timeout=timeout + 10)


def test_minimal_example_becomes_ready_with_every_object(operator, cleanup_tenants):
    cleanup_tenants.append("minimal")
    kubectl("apply", "-f", str(kube.REPO / "examples" / "tenant-minimal.yaml"))
    _ready("minimal")
    ns = get("namespace", "tenant-minimal")
    assert ns["metadata"]["labels"]["tenancy.dev/tenant"] == "minimal"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for ref in EXPECTED_KINDS:
        kind, name = ref.split("/")
        obj = get(kind, name, "tenant-minimal")
        assert obj is not None, f"{ref} missing"
        assert obj["metadata"]["labels"]["tenancy.dev/tenant"] == "minimal"
    tenant = get("tenant", "minimal")
    assert tenant["status"]["phase"] == "Ready"
    assert tenant["status"]["observedGeneration"] == tenant["metadata"]["generation"]
    assert condition(tenant, "NamespaceReady")["status"] == "True"
    assert "tenancy.dev/finalizer" in tenant["metadata"]["finalizers"]
    columns = kubectl("get", "tenant", "minimal").stdout.splitlines()[0].split()
    assert columns[:5] == ["NAME", "PHASE", "READY", "NAMESPACE", "BACKENDS"]


def test_owner_rbac_is_fenced_to_their_namespace(operator, cleanup_tenants):
    cleanup_tenants += ["rbac-a", "rbac-b"]
    kube.apply(tenant_yaml("rbac-a", owners=[{"kind": "User", "name": "alice"}]))
    kube.apply(tenant_yaml("rbac-b", owners=[{"kind": "Group", "name": "b-admins"}]))
    _ready("rbac-a")
    _ready("rbac-b")
    deployment = json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
                 "spec": {"containers": [{"name": "api", "image": "example.invalid/api:1"}]}}},
    })
    kubectl("apply", "--as=alice", "-n", "tenant-rbac-a", "-f", "-", input=deployment)
    denied = kubectl("get", "secrets", "--as=alice", "-n", "tenant-rbac-b", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    denied = kubectl("create", "configmap", "x", "--as=alice", "-n", "kube-system", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    allowed_b = kubectl("auth", "can-i", "create", "deployments", "-n", "tenant-rbac-b", "--as=bob", "--as-group=b-admins",
                        check=False)
    assert allowed_b.stdout.strip() == "yes"


def test_what_the_operator_keeps_changes_only_through_the_tenant(operator, cleanup_tenants):
    """The owner holds admin in the namespace, which may edit or delete NetworkPolicies, RoleBindings and
    ServiceAccounts: the chart's admission policy refuses that for the operator's own objects (the verify
    pass would only put them back a verify interval later), also through a ServiceAccount the owner made
    and bound admin to. Objects the owner makes stay the owner's."""
    cleanup_tenants.append("guarded")
    kube.apply(tenant_yaml("guarded", owners=[{"kind": "User", "name": "carol"}]))
    _ready("guarded")
    ns = "tenant-guarded"
    helper = f"system:serviceaccount:{ns}:helper"
    kubectl("create", "serviceaccount", "helper", "-n", ns, "--as=carol")
    kubectl("create", "rolebinding", "helper-admin", "--clusterrole=admin", f"--serviceaccount={ns}:helper", "-n", ns,
            "--as=carol")
    for who in ("carol", helper):
        for args in [("delete", "networkpolicy", "tenant-isolation"),
                     ("label", "networkpolicy", "tenant-isolation", "app.kubernetes.io/managed-by-"),
                     ("patch", "networkpolicy", "tenant-isolation", "--type=merge", "-p", '{"spec":{"ingress":[{}]}}'),
                     ("delete", "rolebinding", "tenancy-operator-secrets"),
                     ("delete", "rolebinding", "tenant-owners"),
                     ("delete", "serviceaccount", "tenant-app")]:
            refused = kubectl(*args, "-n", ns, f"--as={who}", check=False)
            assert refused.returncode != 0, (who, args, refused.stdout)
            assert "kept by the tenancy operator for Tenant guarded" in refused.stderr, (who, args, refused.stderr)
    kubectl("create", "configmap", "mine", "-n", ns, "--as=carol")
    kubectl("label", "configmap", "mine", "x=y", "-n", ns, "--as=carol")
    kubectl("delete", "configmap", "mine", "-n", ns, "--as=carol")
    kubectl("delete", "rolebinding", "helper-admin", "-n", ns, "--as=carol")
    kubectl("delete", "serviceaccount", "helper", "-n", ns, "--as=carol")
    assert condition(get("tenant", "guarded"), "Ready")["status"] == "True"


def _pod(name: str, privileged: bool = False) -> str:
    container = {"name": "app", "image": "example.invalid/app:1"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    else:
        container["securityContext"] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000,
                                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}})


def test_api_server_enforces_pod_security_and_quota(operator, cleanup_tenants):
    cleanup_tenants.append("admission")
    kube.apply(tenant_yaml("admission", quota={"pods": "1"}))
    _ready("admission")
    for name, privileged in (("privileged", True), ("root", False)):
        pod = _pod(name, privileged=True) if privileged else json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
             "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
        refused = kubectl("apply", "-n", "tenant-admission", "-f", "-", input=pod, check=False)
        assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, refused.stderr
    # The quota controller must have computed usage before admission can count against it.
    eventually(lambda: (get("resourcequota", "tenant-quota", "tenant-admission") or {}).get("status", {}).get("hard"),
               30, message="quota status computed")
    kubectl("apply", "-n", "tenant-admission", "-f", "-", input=_pod("one"))
    over = kubectl("apply", "-n", "tenant-admission", "-f", "-", input=_pod("two"), check=False)
    assert over.returncode != 0 and "exceeded quota" in over.stderr, over.stderr


def test_drift_is_repaired_within_a_verify_interval(operator, cleanup_tenants):
    cleanup_tenants.append("drift")
    kube.apply(tenant_yaml("drift"))
    _ready("drift")
    bound = operator.verify_interval * 1.2 + 5  # one interval, its jitter, and API latency
    kubectl("delete", "resourcequota", "tenant-quota", "-n", "tenant-drift")
    kubectl("patch", "networkpolicy", "tenant-isolation", "-n", "tenant-drift", "--type=merge",
            "-p", '{"spec":{"ingress":[{}]}}')
    kubectl("label", "namespace", "tenant-drift", "pod-security.kubernetes.io/enforce-")
    started = time.monotonic()

    def repaired():
        quota = get("resourcequota", "tenant-quota", "tenant-drift")
        netpol = get("networkpolicy", "tenant-isolation", "tenant-drift")
        ns = get("namespace", "tenant-drift")
        return (quota is not None and len(netpol["spec"]["ingress"][0].get("from", [])) == 2
                and ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted")

    eventually(repaired, bound, message="drift repaired")
    print(f"\ndrift repaired in {time.monotonic() - started:.1f}s (verify interval {operator.verify_interval}s)")
    eventually(lambda: any(e["reason"] == "DriftRepaired" for e in kube.object_events("Tenant", "drift")), 10,
               message="DriftRepaired event")
    # Where a person looks: kubectl describe selects a cluster-scoped object's Events by an empty
    # involvedObject.namespace and its uid (kopf's own Events carried its namespace: none showed).
    eventually(lambda: "DriftRepaired" in kubectl("describe", "tenant", "drift").stdout.split("Events:")[-1], 10,
               message="DriftRepaired in kubectl describe tenant")


def test_spec_change_reconciles_to_the_new_generation(operator, cleanup_tenants):
    cleanup_tenants.append("generations")
    kube.apply(tenant_yaml("generations"))
    _ready("generations")
    kubectl("patch", "tenant", "generations", "--type=merge", "-p", '{"spec":{"quota":{"cpu":"3"}}}')
    generation = get("tenant", "generations")["metadata"]["generation"]
    assert generation >= 2

    def caught_up():
        t = get("tenant", "generations")
        return (t["status"].get("observedGeneration") == generation
                and condition(t, "Ready").get("status") == "True"
                and condition(t, "Ready").get("observedGeneration") == generation)

    eventually(caught_up, 30, message="observedGeneration caught up and Ready")
    quota = get("resourcequota", "tenant-quota", "tenant-generations")
    assert quota["spec"]["hard"]["requests.cpu"] == "3"
    events = kube.object_events("Tenant", "generations")
    assert any(e["reason"] == "SpecChanged" and f"generation {generation}" in e["message"] for e in events), events
    kubectl("wait", "--for=condition=Reconciling=False", "tenant/generations", "--timeout=10s")


def test_namespace_owned_by_someone_else_stalls(operator, cleanup_tenants):
    cleanup_tenants.append("squat")
    kubectl("create", "namespace", "tenant-squat")
    try:
        kube.apply(tenant_yaml("squat"))
        kubectl("wait", "--for=condition=Stalled", "tenant/squat", "--timeout=30s", timeout=40)
        tenant = get("tenant", "squat")
        stalled = condition(tenant, "Stalled")
        assert stalled["reason"] == "NamespaceOwnedElsewhere"
        assert "adoptNamespace" in stalled["message"]
        assert tenant["status"]["phase"] == "Stalled"
        eventually(lambda: any(e["type"] == "Warning" and e["reason"] == "NamespaceOwnedElsewhere"
                               for e in kube.object_events("Tenant", "squat")), 10, message="Stalled event")
        assert get("namespace", "tenant-squat")["metadata"].get("labels", {}).get("tenancy.dev/tenant") is None
        # Asking for adoption resolves it.
        kubectl("patch", "tenant", "squat", "--type=merge", "-p", '{"spec":{"adoptNamespace":true}}')
        _ready("squat")
    finally:
        kubectl("delete", "tenant", "squat", "--ignore-not-found", "--wait=false", check=False)


def test_delete_removes_the_namespace(operator):
    kube.apply(tenant_yaml("goner"))
    _ready("goner")
    kubectl("delete", "tenant", "goner", "--timeout=30s")
    eventually(lambda: get("namespace", "tenant-goner") is None, 60, message="namespace gone")


def test_metrics_report_conditions(operator, cleanup_tenants):
    import urllib.request

    cleanup_tenants.append("metered")
    kube.apply(tenant_yaml("metered"))
    _ready("metered")

    def scraped():
        text = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).read().decode()
        return 'tenancy_tenant_condition{status="True",tenant="metered",type="Ready"} 1.0' in text and text

    text = eventually(scraped, 20, message="Ready condition in /metrics")
    assert "tenancy_reconcile_seconds_bucket" in text
