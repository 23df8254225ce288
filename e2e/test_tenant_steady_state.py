"""Steady state: a fleet of Ready tenants costs the API server reads only, never writes."""

from __future__ import annotations

import time

from . import audit, kube
from .kube import kubectl, tenant_yaml

FLEET = 50
IDLE_SECONDS = 60
OPERATOR_USER = "system:serviceaccount:tenancy-system:tenancy-operator"


def test_fifty_ready_tenants_make_zero_writes_while_idle(operator):
    names = [f"fleet-{i:02d}" for i in range(FLEET)]
    try:
        kubectl("apply", "-f", "-", input="\n---\n".join(tenant_yaml(n) for n in names))
        started = time.monotonic()
        kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], "--timeout=180s", timeout=200)
        print(f"\n{FLEET} tenants Ready in {time.monotonic() - started:.1f}s")
        # Let trailing Events and status writes of the last tenants land before the window opens.
        time.sleep(operator.verify_interval + 2)
        since = audit.mark()
        time.sleep(IDLE_SECONDS)
        counts = audit.writes(since, OPERATOR_USER)
        passes = IDLE_SECONDS / operator.verify_interval * FLEET
        print(f"operator writes over {IDLE_SECONDS}s idle with {FLEET} tenants (~{passes:.0f} verify passes): "
              f"{sum(counts.values())} {dict(counts) if counts else ''}")
        assert sum(counts.values()) == 0, counts
    finally:
        kubectl("delete", "tenants", *names, "--ignore-not-found", "--wait=false", check=False)
        kube.eventually(lambda: not any(kube.get("tenant", n) for n in names), 120, 2, "fleet deleted")
