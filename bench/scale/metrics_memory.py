"""Memory the operator's per-tenant metric series hold, per tenant (tracemalloc, in process, no platform).

    python -m bench.scale.metrics_memory [TENANTS]    # default 1000

Feeds TENANTS fake tenants through the recording functions the handlers call, each of the shape
the N=300 profile found (bench/scale/RESULTS.md, "where the memory per tenant goes"): 10 condition
types (30 series), a phase (6), 6 quota resources used and hard (12), credential version, rotated and
next rotation, database size and drift repairs (5): 53 series. Each tenant's status is decoded from
JSON, as kopf hands the handlers freshly decoded strings. The tenant names are made before tracing
starts (kopf holds them anyway); everything still allocated after the tenants are recorded counts.
The fake tenants are forgotten again at the end.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from dataclasses import dataclass

from tenancy_operator.observability import metrics

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled", "Degraded", "SpecSupported", "NamespaceReady",
                   "DatabaseReady", "CacheReady", "SecretsReady", "CredentialsReady")
_STATUS = json.dumps({
    "conditions": [{"type": t, "status": "False" if t in ("Reconciling", "Stalled", "Degraded") else "True"}
                   for t in CONDITION_TYPES],
    "credentials": {"version": 1, "rotatedAt": "2026-12-04T23:07:00Z", "nextRotationAt": "2027-01-03T23:07:00Z"},
    "quota": {"hard": {"requests.cpu": "2", "requests.memory": "1Gi", "requests.storage": "10Gi", "pods": "5",
                       "limits.cpu": "4", "limits.memory": "2Gi"},
              "used": {"requests.cpu": "250m", "requests.memory": "128Mi", "requests.storage": "1Gi", "pods": "1",
                       "limits.cpu": "500m", "limits.memory": "256Mi"}},
})
SERIES_PER_TENANT = 53


@dataclass
class Measured:
    tenants: int
    bytes_total: int

    @property
    def per_tenant(self) -> float:
        return self.bytes_total / self.tenants


def record(name: str, index: int) -> None:
    """One fake tenant's pass: what handlers/tenant.py and namespace_part.py record for it."""
    status = json.loads(_STATUS)
    metrics.record_tenant(name, status["conditions"], "Ready")
    metrics.record_credentials(name, status["credentials"])
    metrics.record_quota(name, status["quota"])
    metrics.record_database_size(name, 7_000_000 + index)
    metrics.count_repairs(name, 1)


def measure(tenants: int = 1000, prefix: str = "memb") -> Measured:
    names = [f"{prefix}-{i:05d}" for i in range(tenants)]
    record(f"{prefix}-warm", 0)  # first-use allocations (code paths, interned label values) are not per tenant
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, name in enumerate(names):
            record(name, i)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if started:
            tracemalloc.stop()
        for name in [*names, f"{prefix}-warm"]:
            metrics.forget_tenant(name)
    return Measured(tenants, after - before)


def main(argv: list[str]) -> None:
    tenants = int(argv[0]) if argv else 1000
    m = measure(tenants)
    print(f"{m.tenants} tenants x {SERIES_PER_TENANT} series: {m.bytes_total / 1e6:.2f} MB traced, "
          f"{m.per_tenant / 1024:.2f} KB per tenant")


if __name__ == "__main__":
    main(sys.argv[1:])
