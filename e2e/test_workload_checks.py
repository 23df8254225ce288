"""e2e: the tenant workload's backend check (images/workload/) against a real tenant's Redis, many at once.

In a pod the readiness probe and a test's /healthz request check at the same moment, with one health key
per pod. A SET and a GET sent apart let one check read the other's value ("GET returned another value than
the SET": CI failed on it once, on the node). Here 8 threads run `check_redis` 40 times each on one host
name with the tenant's own credentials from its Secret: every check must pass.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from . import kube
from .kube import kubectl, tenant_yaml
from .tenant_clients import credentials

sys.path.insert(0, str(kube.REPO / "images" / "workload"))

from tenant_workload import app  # noqa: E402

THREADS, CHECKS = 8, 40


def test_concurrent_redis_checks_of_one_pod_all_pass(backends, operator, cleanup_tenants):
    name = "wl-checks"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, redis={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    cfg = app.present_backends(credentials(name))["redis"]

    def check(_: int) -> str | None:
        try:
            app.check_redis(cfg)
        except Exception as exc:  # noqa: BLE001 - counted and shown below
            return f"{type(exc).__name__}: {exc}"
        return None

    with ThreadPoolExecutor(THREADS) as pool:
        failures = [f for f in pool.map(check, range(THREADS * CHECKS)) if f]
    assert not failures, f"{len(failures)} of {THREADS * CHECKS} checks failed; first: {failures[:3]}"
