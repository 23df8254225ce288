"""One scaler per workload (issue 21, item 4), on the real API server and the real HPA controller.

Two autoscaling rules on one target are refused at apply (CEL). A user's own HPA on a rule's target
makes AutoscalingReady False `TargetAlreadyScaled` naming it, and the operator writes nothing to its
own HPA (audit log) until that HPA is gone; added later, it makes the operator remove its own. The
HPA controller's own conditions on the operator's HPA show in the rule's status: a metric it cannot
read (this platform serves no external metrics API) is shown, scaling disabled stops the rule.
No forecast is needed for any of this: the rules' query returns no data, so they stay reactive.
"""

from __future__ import annotations

import json
import secrets
import time

from . import audit, kube
from .kube import condition, eventually, get, kubectl, tenant_yaml

OPERATOR_USER = "system:serviceaccount:tenancy-system:tenancy-operator"
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}}},
}


def _rule(name: str, mode: str = "Observe", max_replicas: int = 15) -> dict:
    return {"name": name, "targetRef": {"kind": "Deployment", "name": "web"},
            "metric": {"prometheus": 'max(loadgen_request_rate{series="none-scalers"})'},
            "capacityPerReplica": 50, "minReplicas": 2, "maxReplicas": max_replicas, "mode": mode}


def _user_hpa(name: str) -> str:
    return json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                               "target": {"type": "Utilization", "averageUtilization": 80}}}]},
    })


def _ready(name: str) -> dict:
    return condition(get("tenant", name), "AutoscalingReady")


def _entry(name: str) -> dict:
    return (((get("tenant", name) or {}).get("status") or {}).get("autoscaling") or [{}])[0]


def _hpa_writes(mark: audit.Mark, namespace: str) -> int:
    counts = audit.writes(mark, OPERATOR_USER, namespace=namespace)
    return sum(n for (_, resource, _), n in counts.items() if resource == "horizontalpodautoscalers")


def test_two_rules_on_one_target_are_refused_at_apply(crds):
    name = f"sc-dup-{secrets.token_hex(3)}"
    refused = kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                      input=tenant_yaml(name, autoscaling=[_rule("floor", "Floor"), _rule("observe", "Observe", 3)]))
    assert refused.returncode != 0
    assert "must not share a targetRef" in refused.stderr, refused.stderr
    other = {**_rule("api"), "targetRef": {"kind": "Deployment", "name": "api"}}
    kubectl("apply", "--dry-run=server", "-f", "-", input=tenant_yaml(name, autoscaling=[_rule("web"), other]))


def test_a_forecast_past_one_day_is_refused_at_apply(crds):
    """Found by e2e/test_fuzz_specs.py: leadTime 8760h was admitted and every reconcile of the tenant
    failed in the forecaster (a retry loop); now the API server refuses it."""
    name = f"sc-far-{secrets.token_hex(3)}"
    for lead, window in (("8760h", "5m"), ("20h", "3h1m")):
        refused = kubectl("apply", "--dry-run=server", "-f", "-", check=False, input=tenant_yaml(
            name, autoscaling=[{**_rule("web"), "leadTime": lead, "window": window}]))
        assert refused.returncode != 0 and "leadTime + window must be at most 23h" in refused.stderr, refused.stderr
    kubectl("apply", "--dry-run=server", "-f", "-",
            input=tenant_yaml(name, autoscaling=[{**_rule("web"), "leadTime": "20h", "window": "3h"}]))


def test_a_per_pod_target_below_one_milli_unit_is_refused_at_apply(crds):
    """Found by e2e/test_fuzz_specs.py (seed 1796472121): capacityPerReplica 0.0001 at 70 % made the HPA's
    averageValue "0m", which the API server refused on every pass (a retry loop); now it is refused at
    apply, and the smallest target that rounds to 1m is admitted."""
    name = f"sc-tiny-{secrets.token_hex(3)}"
    for capacity, utilization in ((0.0001, 70), (0.001, 99), (0.0014, 70)):
        refused = kubectl("apply", "--dry-run=server", "-f", "-", check=False, input=tenant_yaml(
            name, autoscaling=[{**_rule("web"), "capacityPerReplica": capacity, "targetUtilization": utilization}]))
        assert refused.returncode != 0 and "must be at least 0.001" in refused.stderr, (capacity, refused.stderr)
    for rule in ({**_rule("web"), "capacityPerReplica": 0.002, "targetUtilization": 60},
                 {**_rule("web"), "capacityPerReplica": 0.0015}):
        kubectl("apply", "--dry-run=server", "-f", "-", input=tenant_yaml(name, autoscaling=[rule]))


def test_a_users_hpa_on_the_target_stops_the_rule_until_it_is_removed(operator, cleanup_tenants):
    name = f"sc-user-{secrets.token_hex(3)}"
    ns = f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name))
    eventually(lambda: get("namespace", ns), 30, message="tenant namespace")
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(DEPLOYMENT))
    kubectl("apply", "-n", ns, "-f", "-", input=_user_hpa("mine"))

    # 1. The user's HPA was there first: the rule never makes its own.
    mark = audit.mark()
    kube.apply(tenant_yaml(name, autoscaling=[_rule("web", "Floor")]))
    started = time.monotonic()
    ready = eventually(lambda: (c := _ready(name)).get("reason") == "TargetAlreadyScaled" and c, 60,
                       message="AutoscalingReady TargetAlreadyScaled")
    seen_after = time.monotonic() - started
    assert ready["status"] == "False", ready
    assert "HorizontalPodAutoscaler/mine" in ready["message"] and "Deployment web" in ready["message"], ready
    assert _entry(name)["scaledBy"] == ["HorizontalPodAutoscaler/mine"]
    tenant = get("tenant", name)
    assert condition(tenant, "Ready")["status"] == "False"
    # Waiting for a person, not retrying: Stalled with the reason (kstatus), and a Warning Event.
    assert condition(tenant, "Stalled")["status"] == "True" and condition(tenant, "Stalled")["reason"] == "TargetAlreadyScaled"
    events = kube.object_events("Tenant", name)
    assert any(e["reason"] == "TargetAlreadyScaled" and e["type"] == "Warning" for e in events), events
    time.sleep(10)  # several verify passes (3 s apart in e2e)
    assert get("hpa", "web", ns) is None
    assert _hpa_writes(mark, ns) == 0, audit.writes(mark, OPERATOR_USER, namespace=ns)

    # 2. Removing it recovers: the rule's HPA is made and the condition clears.
    kubectl("delete", "hpa", "mine", "-n", ns)
    eventually(lambda: _ready(name).get("status") == "True", 60, message="AutoscalingReady True again")
    hpa = get("hpa", "web", ns)
    assert hpa is not None and hpa["metadata"]["labels"]["tenancy.dev/tenant"] == name
    assert "scaledBy" not in _entry(name)

    # 3. A user's HPA added next to the operator's: the operator removes its own (two HPAs on one
    # target disable each other), says so, and writes nothing more.
    kubectl("apply", "-n", ns, "-f", "-", input=_user_hpa("theirs"))
    ready = eventually(lambda: (c := _ready(name)).get("reason") == "TargetAlreadyScaled" and c, 60,
                       message="TargetAlreadyScaled for an HPA added later")
    assert "HorizontalPodAutoscaler/theirs" in ready["message"], ready
    eventually(lambda: get("hpa", "web", ns) is None, 30, message="the operator's HPA removed")
    mark = audit.mark()
    time.sleep(10)
    assert _hpa_writes(mark, ns) == 0
    assert get("hpa", "theirs", ns) is not None, "the user's HPA is never touched"
    kubectl("delete", "hpa", "theirs", "-n", ns)
    eventually(lambda: get("hpa", "web", ns) is not None and _ready(name).get("status") == "True", 60,
               message="recovered after the second removal")
    print(f"\nTargetAlreadyScaled shown {seen_after:.1f}s after the rule was applied")


def test_the_hpa_controllers_conditions_show_in_the_rule_status(operator, cleanup_tenants):
    name = f"sc-cond-{secrets.token_hex(3)}"
    ns = f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name))
    eventually(lambda: get("namespace", ns), 30, message="tenant namespace")
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(DEPLOYMENT))
    kube.apply(tenant_yaml(name, autoscaling=[_rule("web")]))

    # This platform serves no external metrics API: the HPA controller says it cannot read the metric.
    # The HPA still holds minReplicas, so the rule works (reactively it cannot) and stays Ready; status says so.
    entry = eventually(lambda: (e := _entry(name)).get("hpaConditions") and e, 60, message="HPA conditions in status")
    assert {"type": "ScalingActive", "reason": "FailedGetExternalMetric"}.items() <= entry["hpaConditions"][0].items()
    ready = eventually(lambda: (c := _ready(name)).get("status") == "True" and c, 30, message="AutoscalingReady True")
    assert "ScalingActive=False (FailedGetExternalMetric)" in ready["message"], ready

    # Scaled to zero, the HPA controller disables scaling: the rule does nothing, and says so.
    kubectl("scale", "deployment", "web", "-n", ns, "--replicas=0")
    ready = eventually(lambda: (c := _ready(name)).get("reason") == "ScalingDisabled" and c, 60,
                       message="AutoscalingReady ScalingDisabled")
    assert ready["status"] == "False" and "replica count of the target is zero" in ready["message"], ready
    kubectl("scale", "deployment", "web", "-n", ns, "--replicas=1")
    eventually(lambda: _ready(name).get("status") == "True", 60, message="AutoscalingReady True after scaling up")


def test_a_rule_on_a_statefulset_follows_the_live_statefulset(operator, cleanup_tenants):
    """targetRef kind StatefulSet: the HPA scales it (the HPA controller reads its scale subresource), and
    the operator reads the StatefulSet itself, as the chart's RBAC lets it: scaled to zero, the rule says
    scaling is disabled; deleted, it waits for it (TargetNotFound)."""
    name = f"sc-sts-{secrets.token_hex(3)}"
    ns = f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name))
    eventually(lambda: get("namespace", ns), 30, message="tenant namespace")
    statefulset = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                   "spec": {**DEPLOYMENT["spec"], "serviceName": "db",
                            "selector": {"matchLabels": {"app": "db"}},
                            "template": {**DEPLOYMENT["spec"]["template"], "metadata": {"labels": {"app": "db"}}}}}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(statefulset))
    rule = {**_rule("db"), "targetRef": {"kind": "StatefulSet", "name": "db"}}
    kube.apply(tenant_yaml(name, autoscaling=[rule]))

    hpa = eventually(lambda: get("hpa", "db", ns), 60, message="the rule's HPA")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}, hpa
    # The controller got the StatefulSet's scale and then failed on the metric (not FailedGetScale).
    entry = eventually(lambda: (e := _entry(name)).get("hpaConditions") and e, 60, message="HPA conditions in status")
    assert {"type": "ScalingActive", "reason": "FailedGetExternalMetric"}.items() <= entry["hpaConditions"][0].items()
    eventually(lambda: _ready(name).get("status") == "True", 30, message="AutoscalingReady True")

    kubectl("scale", "statefulset", "db", "-n", ns, "--replicas=0")
    eventually(lambda: _ready(name).get("reason") == "ScalingDisabled", 60, message="ScalingDisabled at zero replicas")
    kubectl("delete", "statefulset", "db", "-n", ns)
    ready = eventually(lambda: (c := _ready(name)).get("reason") == "TargetNotFound" and c, 60,
                       message="TargetNotFound once the StatefulSet is gone")
    assert "StatefulSet db not found" in ready["message"], ready
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(statefulset))
    eventually(lambda: _ready(name).get("status") == "True", 60, message="AutoscalingReady True with it back")
