"""One batch of N tenants: applied at once, watched to Ready, left idle, then deleted; what it cost.

`run_size` returns one row (a dict of plain numbers, see `FIELDS`); it raises AssertionError when a
tenant is not Ready or not gone in time. It needs a running operator (`kube.Operator`, for its pid
and metrics port) and Backends with room (setup.py). Tenants have PostgreSQL, Redis and OpenBao and
the reclaim-Delete policy, like the steady-state e2e tenants.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path

from e2e import audit, kube, writes
from e2e.writes import OPERATOR_USER

from . import measure, profiling
from .setup import POLICY_NAME

LABEL = "tenancy.dev/scale-bench"
SERVICES = ("postgres", "redis", "vault")
SPEC = {**{service: {"enabled": True} for service in SERVICES}, "lifecyclePolicyRef": POLICY_NAME}
SETTLE_SECONDS = writes.PG_FLUSH_SECONDS
"""After the last Ready: the last status writes and Events land, and PostgreSQL publishes its counters,
before the batch's requests are counted and the idle window begins."""
RSS_SAMPLE_S = 5.0
"""Seconds between two RSS samples in the idle window."""

FIELDS = {  # key: (column title, format)
    "n": ("N", "{:d}"), "p50": ("p50 s", "{:.2f}"), "p95": ("p95 s", "{:.2f}"), "max": ("max s", "{:.2f}"),
    "wall": ("batch wall s", "{:.1f}"), "writes_per_tenant": ("API writes/tenant", "{:.1f}"),
    "api_requests_per_tenant": ("API requests/tenant (server-wide)", "{:.1f}"),
    "api_reads_per_tenant": ("API reads/tenant (GET+LIST)", "{:.1f}"),
    "calls_per_tenant": ("backend adapter calls/tenant", "{:.1f}"),
    "postgres_per_tenant": ("PostgreSQL transactions/tenant", "{:.1f}"), "redis_per_tenant": ("Redis commands/tenant", "{:.1f}"),
    "openbao_per_tenant": ("OpenBao requests/tenant", "{:.1f}"),
    "rss_mb": ("RSS MB at the last Ready", "{:.0f}"),
    "rss_held_mb": ("RSS MB held (highest of the idle window's samples)", "{:.0f}"),
    "rss_idle_median_mb": ("RSS MB, median of the idle window's samples", "{:.0f}"),
    "rss_peak_mb": ("peak RSS MB", "{:.0f}"), "cpu_s": ("CPU s (batch)", "{:.1f}"),
    "cpu_per_tenant": ("CPU s/tenant", "{:.3f}"), "idle_s": ("idle window s", "{:.0f}"),
    "idle_api_writes": ("idle API writes", "{:d}"), "idle_backend_writes": ("idle backend writes", "{:d}"),
    "verify_passes": ("verify passes (idle)", "{:d}"), "verify_ms": ("verify ms/pass", "{:.0f}"),
    "verify_cpu_ms": ("verify CPU ms/pass", "{:.0f}"), "verify_calls": ("adapter calls/pass", "{:.1f}"),
    "verify_api_reads": ("API reads/pass (server-wide)", "{:.1f}"),
    "verify_postgres": ("PostgreSQL transactions/pass", "{:.1f}"), "verify_redis": ("Redis commands/pass", "{:.1f}"),
    "verify_openbao": ("OpenBao requests/pass", "{:.1f}"),
    "delete_s": ("delete all s", "{:.1f}"),
}


def manifests(names: list[str], run: str) -> str:
    items = [{"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant",
              "metadata": {"name": n, "labels": {LABEL: run}}, "spec": SPEC} for n in names]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _delta(after: dict, before: dict, name: str, handler: str = "") -> float:
    return after.get((name, handler), 0.0) - before.get((name, handler), 0.0)


def run_size(n: int, op: kube.Operator, idle_seconds: float, run: str, log=print, profile: Path | None = None,
             settle: float = SETTLE_SECONDS) -> dict:
    """Apply `n` tenants at once and measure; the tenants are deleted again, whatever happened.

    `idle_seconds` 0 skips the idle window; `profile`: py-spy samples the operator from the create
    until every tenant is Ready, its collapsed stacks written there (see profiling.py); `settle`: the
    wait after the last Ready, and after the idle window (shorter undercounts PostgreSQL)."""
    assert op.proc is not None, "the operator is not started"
    proc = measure.Proc(op.proc.pid)
    names = [f"scale-{run}-{n}-{i:04d}" for i in range(n)]
    watch = measure.Watch(names)
    watch.start()
    row: dict = {"n": n}
    try:
        audit0, metrics0, cpu0 = audit.mark(), measure.metrics(op.metrics_port), proc.cpu_seconds()
        servers0, api0 = measure.backend_requests(), measure.api_requests()
        sampler = profiling.start(op.proc.pid, profile) if profile else None
        t0 = time.monotonic()
        kube.kubectl("create", "-f", "-", input=manifests(names, run), timeout=120 + n)
        log(f"  N={n}: created in {time.monotonic() - t0:.1f}s (one kubectl create)")
        watch.wait(watch.ready, 120 + 2 * n, "Ready")
        row["wall"] = max(watch.ready.values()) - t0
        if sampler:
            profiling.stop(sampler)
        times = [watch.ready[x] - watch.added[x] for x in names]
        row["times"] = times
        row |= {"p50": measure.percentile(times, 50), "p95": measure.percentile(times, 95), "max": max(times)}
        row["cpu_s"] = proc.cpu_seconds() - cpu0
        row["cpu_per_tenant"] = row["cpu_s"] / n
        row["rss_mb"], _ = proc.rss_mb()
        log(f"  N={n}: all Ready {row['wall']:.1f}s after the create began; p50 {row['p50']:.2f}s")
        # The Backends' probe timer writes how many tenants each holds at its next run after the
        # placements (every verify interval / 2, later when the process is busy): that write belongs
        # to the batch, not to the idle window.
        late = measure.wait_placed(timeout=120)
        if late:
            log(f"  N={n}: Backends' tenant counts (written, placed) still differ 120 s after the last Ready: {late}")
        time.sleep(settle)
        requests = measure.requests_by(audit0, OPERATOR_USER, audit.mark())
        metrics1 = measure.metrics(op.metrics_port)
        row["writes_per_tenant"] = measure.writes_of(requests) / n
        served = measure.grown(api0, measure.api_requests())
        # Server-wide: the bench's own N creates (one kubectl) left out; the controller manager's
        # answers to the operator's objects (quota status, namespace and token controllers) stay in.
        row["api_requests_per_tenant"] = (sum(served.values()) - n) / n
        row["api_reads_per_tenant"] = measure.reads_of(served) / n
        row["top_reads"] = {f"{v} {r}": c for (v, r), c in Counter(
            {k: c for k, c in served.items() if k[0] in measure.READ_VERBS}).most_common(8)}
        row |= {f"{k}_per_tenant": v / n for k, v in measure.grown(servers0, measure.backend_requests()).items()}
        row["calls_per_tenant"] = _delta(metrics1, metrics0, "tenancy_backend_call_seconds_count") / n
        row["top_requests"] = {f"{v} {r}": c for (v, r), c in requests.most_common(8)}
        row |= _idle(op, proc, idle_seconds, settle, log)
        now, row["rss_peak_mb"] = proc.rss_mb()
        # What the fleet holds: the highest RSS sampled through the idle window and after it (the operator
        # hands free heap pages back every 30 s, so one reading would depend on when it is taken).
        row["rss_held_mb"] = max(now, row.get("rss_idle_max_mb", now))
    finally:
        t1 = time.monotonic()
        kube.kubectl("delete", "tenants", "-l", f"{LABEL}={run}", "--wait=false", check=False, timeout=120 + n)
        try:
            watch.wait(watch.deleted, 180 + 2 * n, "deleted")
            row["delete_s"] = time.monotonic() - t1
        finally:
            watch.stop()
    left = kube.kubectl("get", "tenants", "-l", f"{LABEL}={run}", "-o", "name").stdout.split()
    assert not left, f"tenants still listed after their DELETED events: {left[:10]}"
    log(f"  N={n}: all deleted in {row['delete_s']:.1f}s; none listed"
        + (f" (the watch was opened again {watch.reconnects} times, {watch.relists} relists)" if watch.reconnects else ""))
    return row


def _rss_samples(proc: measure.Proc, seconds: float, every: float = RSS_SAMPLE_S) -> list[float]:
    """The process's RSS in MB every `every` seconds for `seconds` (the first at once)."""
    samples, end = [], time.monotonic() + seconds
    while True:
        samples.append(proc.rss_mb()[0])
        left = end - time.monotonic()
        if left <= 0:
            return samples
        time.sleep(min(every, left))


def _idle(op: kube.Operator, proc: measure.Proc, seconds: float, settle: float, log) -> dict:
    """Writes (API server and every backend, e2e/writes.py) and verify passes over an idle window."""
    if seconds <= 0:
        return {}
    log(f"  idle window of {seconds:.0f}s (+{settle:.0f}s for PostgreSQL's counters)")
    before, metrics0, cpu0 = writes.snapshot(), measure.metrics(op.metrics_port), proc.cpu_seconds()
    servers0, api0 = measure.backend_requests(), measure.api_requests()
    backends0, began = measure.backend_statuses(), measure.utc_now()
    samples = _rss_samples(proc, seconds)
    metrics1, cpu1 = measure.metrics(op.metrics_port), proc.cpu_seconds()
    time.sleep(settle)
    counts = writes.delta(before)
    events = measure.events_since(began)
    backends = measure.status_changes(backends0, measure.backend_statuses())
    passes = int(_delta(metrics1, metrics0, "tenancy_handler_seconds_count", "tenant-verify"))
    per = max(passes, 1)
    servers = measure.grown(servers0, measure.backend_requests())
    served = measure.grown(api0, measure.api_requests())
    return {**{f"verify_{k}": v / per for k, v in servers.items()},
        "idle_s": seconds, "idle_api_writes": sum(counts["api-server"].values()),
        "idle_backend_writes": sum(sum(c.values()) for k, c in counts.items() if k != "api-server"),
        "idle_detail": {k: dict(c.most_common(5)) for k, c in counts.items() if c},
        # What the writes said: the operator's Events by reason and message, and the Backend status
        # fields that changed (the audit log has no request bodies).
        "idle_events": dict(events.most_common(8)), "idle_backend_status": backends,
        "verify_passes": passes, "rss_idle_max_mb": max(samples), "rss_idle_median_mb": statistics.median(samples),
        "verify_ms": 1000 * _delta(metrics1, metrics0, "tenancy_handler_seconds_sum", "tenant-verify") / per,
        "verify_cpu_ms": 1000 * (cpu1 - cpu0) / per,
        "verify_calls": _delta(metrics1, metrics0, "tenancy_backend_call_seconds_count") / per,
        "verify_api_reads": measure.reads_of(served) / per,
    }
