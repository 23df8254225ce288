"""Crash safety: SIGKILL the operator at random moments while it provisions and deletes tenants."""

from __future__ import annotations

import json
import os
import random
import time

from . import kube
from .kube import eventually, get, kubectl, tenant_yaml

TRIALS = int(os.environ.get("CRASH_TRIALS", "10"))  # `make fault` runs 50
PER_TRIAL = 3
OWNED = {
    "resourcequotas": ["tenant-quota"],
    "limitranges": ["tenant-limits"],
    "networkpolicies": ["tenant-isolation"],
    "serviceaccounts": ["tenant-app"],
    "rolebindings": ["tenancy-operator-secrets", "tenant-owners"],
}


def _exactly_one_of_each(name: str) -> None:
    ns = f"tenant-{name}"
    for resource, expected in OWNED.items():
        items = json.loads(kubectl("get", resource, "-n", ns, "-l", f"tenancy.dev/tenant={name}", "-o", "json").stdout)
        assert sorted(i["metadata"]["name"] for i in items["items"]) == expected, f"{resource} in {ns}"


def test_sigkill_during_provisioning_and_deletion(operator, operator_kubeconfig):
    rng = random.Random(20261125)
    operator.stop()
    crashing = kube.Operator(operator_kubeconfig, verify_interval=operator.verify_interval, extra_env=operator.extra_env)
    try:
        for trial in range(TRIALS):
            names = [f"crash-{trial}-{i}" for i in range(PER_TRIAL)]
            owners = [{"kind": "Group", "name": f"crash-{trial}"}]
            crashing.start()
            kubectl("apply", "-f", "-", input="\n---\n".join(tenant_yaml(n, owners=owners) for n in names))
            time.sleep(rng.uniform(0.0, 1.5))
            crashing.kill()
            crashing.start()
            kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], "--timeout=60s", timeout=70)
            for name in names:
                _exactly_one_of_each(name)

            kubectl("delete", "tenants", *names, "--wait=false")
            time.sleep(rng.uniform(0.0, 1.0))
            crashing.kill()
            crashing.start()
            eventually(lambda ns=names: all(get("tenant", n) is None for n in ns), 60, message="tenants gone")
            eventually(lambda ns=names: all(get("namespace", f"tenant-{n}") is None for n in ns), 90,
                       message="namespaces gone")
            crashing.stop()
        print(f"\n{TRIALS} crash trials x {PER_TRIAL} tenants: all Ready, exactly one of each object, all gone after delete")
    finally:
        crashing.stop()
        operator.start()
