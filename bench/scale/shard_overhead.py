"""What a shard pays for the Tenants it does not own (docs/scale.md, "every process watches every Tenant").

Every shard watches every Tenant: kopf's handler filters are client-side, so a process holds each
foreign Tenant in its indexes and per-object memory and decodes each of its events. This measures
that cost on the local platform, with one operator process owning a shard none of the Tenants
belongs to (TENANCY_SHARDS=1000, a shard no name hashes to, no label): its RSS after listing 0, then
M1, then M2 unowned Tenants (a fresh process each time, the chart's ServiceAccount), and its CPU per
foreign Tenant event (one annotation on each). Run it outside e2e, under the e2e lock: the Tenants
are namespace-only objects nobody reconciles, deleted at the end.

    flock /tmp/e2e.lock bash -c 'source .platform/env && .venv/bin/python -m bench.scale.shard_overhead 1000 3000'
"""

from __future__ import annotations

import json
import sys
import time

from tenancy_operator.reconcile import sharding

from e2e import kube
from e2e.kube import kubectl

from .measure import Proc

SHARDS = 1000
LABEL = "bench.tenancy.dev/shard-overhead"


def _names(count: int) -> list[str]:
    return [f"shov-{i:05d}" for i in range(count)]


def _create(names: list[str]) -> None:
    for start in range(0, len(names), 250):
        items = [{"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant",
                  "metadata": {"name": n, "labels": {LABEL: "true"}}, "spec": {}} for n in names[start:start + 250]]
        kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                timeout=300)


def _settle(proc: Proc, quiet: float = 3.0, limit: float = 120.0) -> float:
    """Wait until the process's CPU time stops growing (listing and indexing done); its CPU seconds."""
    end = time.monotonic() + limit
    last = proc.cpu_seconds()
    while time.monotonic() < end:
        time.sleep(quiet)
        now = proc.cpu_seconds()
        if now - last < 0.02 * quiet:
            return now
        last = now
    return proc.cpu_seconds()


def _measure(kubeconfig: str, shard: int, annotate: bool) -> dict[str, float]:
    op = kube.Operator(kubeconfig, verify_interval=60.0,
                       extra_env={"TENANCY_SHARDS": str(SHARDS), "TENANCY_SHARD": str(shard),
                                  "TENANCY_METRICS_PORT": "0"})
    op.log = kube.STATE / "logs" / "operator-shard-overhead.log"
    op.start()
    try:
        proc = Proc(op.proc.pid)
        started_cpu = _settle(proc)
        rss, _ = proc.rss_mb()
        out = {"rss_mb": rss, "start_cpu_s": started_cpu}
        if annotate:
            before = proc.cpu_seconds()
            stamp = str(time.time())
            kubectl("annotate", "tenants", "-l", LABEL, f"bench.tenancy.dev/poke={stamp}", "--overwrite", timeout=600)
            out["event_cpu_s"] = _settle(proc) - before
        return out
    finally:
        op.stop()


def main(argv: list[str]) -> None:
    sizes = sorted(int(a) for a in argv) or [1000, 3000]
    kubeconfig = str(kube.STATE / "operator-e2e.kubeconfig")  # written by the e2e session (the chart's SA)
    names = _names(sizes[-1])
    # Tenants already there (another run's, being deleted) are in every row alike; none may be ours.
    existing = [t["metadata"]["name"] for t in json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]]
    hit = {sharding.shard_of(n, SHARDS) for n in names + existing}
    shard = next(s for s in range(SHARDS - 1, 0, -1) if s not in hit)
    rows = []
    try:
        made = 0
        rows.append((0, _measure(kubeconfig, shard, annotate=False)))
        for size in sizes:
            _create(names[made:size])
            made = size
            rows.append((size, _measure(kubeconfig, shard, annotate=True)))
    finally:
        kubectl("delete", "tenants", "-l", LABEL, "--wait=false", check=False, timeout=600)
    base = rows[0][1]["rss_mb"]
    print(f"one shard process of {SHARDS} (shard {shard}), owning none of the Tenants it watches "
          f"({len(existing)} other Tenants there throughout):")
    for size, r in rows:
        per = f", {(r['rss_mb'] - base) * 1024 / size:.1f} KB RSS per foreign Tenant" if size else ""
        events = (f", {r['event_cpu_s'] * 1000 / size:.2f} ms CPU per foreign Tenant event" if "event_cpu_s" in r
                  else "")
        print(f"  {size:>6} foreign Tenants: RSS {r['rss_mb']:.0f} MB, CPU to list and index {r['start_cpu_s']:.1f} s"
              f"{per}{events}")


if __name__ == "__main__":
    main(sys.argv[1:])
