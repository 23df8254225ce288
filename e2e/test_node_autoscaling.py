"""e2e: an autoscaling rule's HPA scales real pods on the platform's node (issue 17).

A Tenant with one `Floor` rule on a Deployment `web` of busybox pods (`sleep`, user 65532, PodSecurity
`restricted`, `imagePullPolicy: Never`) in its namespace. As in e2e/test_autoscaling.py, 14 days of a
daily pattern whose spike lands a lead from now are backfilled into Prometheus (hack/loadgen.py,
platform/backfill.sh) and hack/loadgen.py serves the same trace live. The operator (host process, the
`operator` fixture) forecasts the spike and lifts the HPA's `minReplicas`; the HPA controller (in the
kube-controller-manager) raises the Deployment's replicas to it although its own External metric is not
served here (no metrics adapter: `FailedGetExternalMetric`): below `minReplicas` it scales without
reading metrics ("Current number of replicas below Spec.MinReplicas"). The test counts the pods that are
Running and Ready from the pods' status, which the kubelet writes, going from the start count (the
rule's minReplicas, Running and Ready before the rule is added) to the HPA's desired count, and finds
the HPA controller's `SuccessfulRescale` event for `minReplicas`.

Not checked: the way back down. The lift is released once the predicted peak has passed (the spike
lasts 90 s) and the HPA then waits its default 5-minute scale-down stabilisation, so that would add
about 7 minutes.

Skipped, with the reason, when the platform runs without its node (as e2e/test_node.py).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time

from . import kube
from .kube import eventually, get, kubectl, tenant_yaml
from .test_autoscaling import LOADGEN_PORT, SPIKE, _spec, backfill_history
from .test_node import node  # noqa: F401  (the fixture)

MIN_REPLICAS = 2
# Demand 100 at base, 300 at the spike; 100 per replica at 70 %: 2 replicas hold the base (the rule's
# minReplicas, so the start count), the spike needs 5 (more from the upper forecast).
CAPACITY = 100
MAX_REPLICAS = 8


def _deployment(image: str) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": MIN_REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "web", "image": image, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"],
                                     "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                                         "capabilities": {"drop": ["ALL"]},
                                                         "seccompProfile": {"type": "RuntimeDefault"}}}]}}},
    }


def _pods(ns: str) -> tuple[int, int]:
    """(pods of the Deployment not being deleted, of which Running and Ready), from the pods' status."""
    items = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json").stdout)["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in live if p.get("status", {}).get("phase") == "Running"
             and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]
    return len(live), len(ready)


def _snapshot(ns: str, t0: float) -> dict:
    hpa = get("hpa", "web", ns) or {}
    dep = get("deployment", "web", ns) or {}
    live, ready = _pods(ns)
    return {"t": round(time.time() - t0, 1), "min": hpa.get("spec", {}).get("minReplicas"),
            "desired": hpa.get("status", {}).get("desiredReplicas"),
            "replicas": dep.get("spec", {}).get("replicas"), "pods": live, "ready": ready}


def test_hpa_scales_real_pods_on_the_node(node, operator, cleanup_tenants, tmp_path):  # noqa: F811
    t0 = time.time()
    run = secrets.token_hex(3)
    # The spike starts 30 s past a minute boundary at least a lead from now (kube.lead_seconds, plus 15 s
    # for the two pods to start first); the Floor lift comes about a minute before it (leadTime 1m).
    spike = math.ceil((time.time() + kube.lead_seconds() + 15) / 60) * 60 + 30
    series = f"e2e-{run}-node"
    spec = f"{series}={_spec('daily', {**SPIKE, 'spike_at': spike % 86400, 'seed': 7})}"
    loadgen = subprocess.Popen([sys.executable, str(kube.REPO / "hack" / "loadgen.py"), "serve",
                                "--port", str(LOADGEN_PORT), "--series", spec],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    name = f"hpa-node-{run}"
    ns = f"tenant-{name}"
    try:
        backfill_history(tmp_path / "history.om", [spec], series)
        t_history = time.time() - t0

        # The start: the tenant without a rule, its Deployment's MIN_REPLICAS pods Running and Ready. The rule
        # comes after (the operator lifts the floor at its first fit when the spike is already in the window).
        cleanup_tenants.append(name)
        kube.apply(tenant_yaml(name))
        eventually(lambda: get("namespace", ns), timeout=30, message="tenant namespace")
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(_deployment(node["image"])))
        start = eventually(lambda: (s := _snapshot(ns, t0))["ready"] == MIN_REPLICAS and s,
                           timeout=60, interval=1, message=f"{MIN_REPLICAS} pods Running and Ready")
        assert start["min"] is None and start["pods"] == MIN_REPLICAS, start
        rule = {"name": "web", "targetRef": {"kind": "Deployment", "name": "web"},
                "metric": {"prometheus": f'max(loadgen_request_rate{{series="{series}"}})'},
                "capacityPerReplica": CAPACITY, "minReplicas": MIN_REPLICAS, "maxReplicas": MAX_REPLICAS,
                "targetUtilization": 70, "leadTime": "1m", "window": "2m", "mode": "Floor"}
        kube.apply(tenant_yaml(name, autoscaling=[rule]))
        print(f"\nhistory backfilled and scraped at {t_history:.1f}s; start {start}; rule applied at "
              f"{time.time() - t0:.1f}s; spike at {spike - t0:.0f}s")
        assert time.time() < spike - 30, f"setup ran past the spike's lead ({time.time() - spike:.0f}s from it): {start}"

        # Watch until the pods Running and Ready match a lifted HPA's desired count: the lift by 30 s past the
        # spike's start, the pods within 60 s of the lift.
        samples = [start]
        lifted = scaled = reached = None
        while time.time() - t0 < (lifted["t"] + 60 if lifted else spike - t0 + 30):
            s = _snapshot(ns, t0)
            samples.append(s)
            if lifted is None and (s["min"] or 0) > MIN_REPLICAS:
                lifted = s
            if lifted and scaled is None and (s["replicas"] or 0) > MIN_REPLICAS:
                scaled = s
            if lifted and s["desired"] and s["desired"] > MIN_REPLICAS and s["ready"] == s["desired"] == s["pods"]:
                reached = s
                break
            time.sleep(1.0)
        hpa = get("hpa", "web", ns) or {}
        entry = ((get("tenant", name) or {}).get("status", {}).get("autoscaling") or [{}])[0]
        print(f"rule status: { {k: entry.get(k) for k in ('mode', 'floor', 'forecast', 'model', 'reason') if k in entry} }")
        changes = [s for i, s in enumerate(samples) if i == 0 or
                   {k: v for k, v in s.items() if k != "t"} != {k: v for k, v in samples[i - 1].items() if k != "t"}]
        print("timeline (s from start of test): " + "; ".join(
            f"{s['t']}: min {s['min']} desired {s['desired']} replicas {s['replicas']} pods {s['pods']} ready {s['ready']}"
            for s in changes))
        assert lifted, f"the operator never lifted minReplicas (spike at {spike - t0:.0f}s); last {samples[-1]}; " \
                       f"status {json.dumps((get('tenant', name) or {}).get('status', {}).get('autoscaling'))}"
        assert scaled, f"the HPA controller never raised the Deployment's replicas after the lift; HPA status {hpa.get('status')}"
        assert reached, (f"pods Running and Ready never reached the HPA's desired count {samples[-1]['desired']}; "
                         f"last {samples[-1]}; pods:\n{kubectl('get', 'pods', '-n', ns, '-o', 'wide').stdout}")
        assert reached["ready"] > start["ready"]
        # No pod beyond the desired count was ever Ready (the count rose to it, not past it).
        assert max(s["ready"] for s in samples) == reached["desired"], samples

        # Which path scaled: the HPA controller's rescale for minReplicas, with its metric unavailable.
        events = json.loads(kubectl("get", "events", "-n", ns, "--field-selector",
                                    "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=web",
                                    "-o", "json").stdout)["items"]
        rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
        print(f"HPA events: {sorted({(e['reason'], e['message'][:120]) for e in events})}")
        print(f"HPA conditions: {[(c['type'], c['status'], c['reason']) for c in hpa.get('status', {}).get('conditions') or []]}")
        assert any(f"New size: {reached['desired']}" in m and "below Spec.MinReplicas" in m for m in rescales), rescales
        print(f"lift {lifted['min']} at {lifted['t']}s ({spike - t0 - lifted['t']:.0f}s before the spike), "
              f"Deployment replicas {scaled['replicas']} at {scaled['t']}s, {reached['ready']} pods Running and Ready "
              f"at {reached['t']}s ({reached['t'] - lifted['t']:.1f}s after the lift); test {time.time() - t0:.1f}s")
    finally:
        os.killpg(loadgen.pid, 15)
        loadgen.wait(timeout=10)
        kubectl("delete", "deployment", "web", "-n", ns, "--ignore-not-found", "--wait=false", check=False)
        kubectl("delete", "pod", "--all", "-n", ns, "--grace-period=0", "--force", "--wait=false", check=False)
