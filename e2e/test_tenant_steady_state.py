"""Steady state: Ready tenants with every backend cost reads only, never writes, anywhere.

Tenants with PostgreSQL, Redis and OpenBao enabled, and two with MongoDB and OpenSearch as well (one of
them suspended from the start), are created and converge; then, over an idle window, the test counts writes by each server's own view
(e2e/writes.py): the API server's audit log, PostgreSQL's catalog counters, Redis's command
counters, OpenBao's request counters, OpenSearch's cluster state and indexing counts and FerretDB's
row counters. All must be 0: a verify pass that finds nothing wrong writes nothing. Creating a tenant is not drift either: no
`DriftRepaired` Event from the first reconciles, a Normal `Provisioned` one instead.

`make test` runs a short version. `make soak` runs the long one through the same test (environment):
STEADY_TENANTS (12), STEADY_IDLE_SECONDS (75), and STEADY_RESTARTS=1, which restarts Redis,
PostgreSQL and OpenBao once in the middle through platform/restart.sh, waits until the operator
has put everything back and gone quiet, and counts again over the second half (`dry`: the same
steps without restarting anything).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections import Counter

from . import kube, traces, writes
from .kube import REPO, kubectl, tenant_yaml

TENANTS = int(os.environ.get("STEADY_TENANTS", "12"))
IDLE_SECONDS = float(os.environ.get("STEADY_IDLE_SECONDS", "75"))
RESTARTS = os.environ.get("STEADY_RESTARTS", "")
"""`1`: restart each backend midway; `dry`: the same steps without the restarts (to try the soak quickly)."""
RESTARTED_PARTS = ("redis-server", "postgres", "bao")
# Reclaim Delete, so the servers do not keep every run's tenants (Retain, the default, keeps their data).
POLICY = json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                     "metadata": {"name": "steady-state-delete"}, "spec": {"reclaim": "Delete"}})
EVERY_BACKEND = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True},
                 "lifecyclePolicyRef": "steady-state-delete"}
# One more tenant holds MongoDB (FerretDB) and OpenSearch too; their servers' writes are counted beside.
DOCUMENTS = {**EVERY_BACKEND, "mongodb": {"enabled": True}, "search": {"enabled": True}}
# And one is suspended from the start: its roles may not log in, so no login can test their passwords
# (a verify pass that took "cannot log in" for "wrong password" rewrote them every pass).
ASLEEP = {**DOCUMENTS, "state": "Suspended"}


def _events(names: list[str]) -> list[dict]:
    """Events of these tenants, by UID: earlier tenants of the same names leave theirs for an hour."""
    wanted = set(names)
    tenants = json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]
    uids = {t["metadata"]["uid"] for t in tenants if t["metadata"]["name"] in wanted}
    out = kubectl("get", "events", "-A", "--field-selector", "involvedObject.kind=Tenant", "-o", "json").stdout
    return [e for e in json.loads(out)["items"] if e["involvedObject"].get("uid") in uids]


def _tenants() -> set[str]:
    return {line.split("/", 1)[1] for line in kubectl("get", "tenants", "-o", "name").stdout.split()}


def _documents() -> Counter:
    return Counter({f"opensearch {k}": v for k, v in writes.opensearch().items()}) + \
        Counter({f"ferretdb {k}": v for k, v in writes.ferretdb().items()})


def _idle_window(seconds: float) -> dict:
    before, documents = writes.snapshot(), _documents()
    time.sleep(seconds)
    time.sleep(writes.PG_FLUSH_SECONDS)  # PostgreSQL publishes its counters up to 10 s late
    after = _documents()
    return {**writes.delta(before), "opensearch, ferretdb": writes.grown(documents, after)}


def _quiet(operator, names: list[str], timeout: float) -> float:
    """After a restart: wait until every tenant is Ready and a stretch of verify passes writes nothing."""
    started = time.monotonic()
    kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], f"--timeout={int(timeout)}s",
            timeout=timeout + 20)
    stretch = 2.5 * operator.verify_interval
    while True:
        counts = _idle_window(stretch)
        if not any(sum(c.values()) for c in counts.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"still writing {timeout:.0f}s after the restart:\n" + \
            writes.report(counts, stretch)


def test_ready_tenants_with_every_backend_make_zero_writes_while_idle(operator, backends, mongo_backend, search_backend):
    run = secrets.token_hex(2)  # fresh names: a name used before may find retained data and write less
    names = [f"steady-{run}-{i:03d}" for i in range(TENANTS)] + [f"steady-{run}-docs", f"steady-{run}-asleep"]
    specs = {f"steady-{run}-docs": DOCUMENTS, f"steady-{run}-asleep": ASLEEP}
    kubectl("apply", "-f", "-", input=POLICY)
    # Room for every tenant of the run beside what other tests hold (a Backend takes 100 by default).
    for name in backends.values():
        kubectl("patch", "backend", name, "--type=merge", "-p", json.dumps({"spec": {"capacity": max(100, TENANTS + 100)}}))
    started = time.monotonic()
    at_start, documents_at_start = writes.snapshot(), _documents()
    try:
        kubectl("apply", "-f", "-", input="\n---\n".join(tenant_yaml(n, **specs.get(n, EVERY_BACKEND)) for n in names))
        ready_timeout = 120 + 3 * TENANTS
        kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], f"--timeout={ready_timeout}s",
                timeout=ready_timeout + 20)
        print(f"\n{TENANTS} tenants with postgres, redis and vault and two (one suspended) with mongodb and search too Ready in "
              f"{time.monotonic() - started:.1f}s")
        # Let the last status writes and Events land, and PostgreSQL publish its counters.
        time.sleep(max(operator.verify_interval + 2, writes.PG_FLUSH_SECONDS))
        creation = {**writes.delta(at_start), "opensearch, ferretdb": writes.grown(documents_at_start, _documents())}
        print(f"creating them:\n{writes.report(creation, time.monotonic() - started)}")
        # The counters can see writes: creating the tenants made some on every target.
        assert all(sum(c.values()) for c in creation.values()), creation

        # Tenants earlier tests left deleting go first: each that goes is a Backend's new count, written.
        kube.backends_counted()
        windows: list[tuple[str, float, dict]] = []
        half = IDLE_SECONDS / 2 if RESTARTS else IDLE_SECONDS
        idle_from = time.time()
        windows.append(("idle", half, _idle_window(half)))
        # With tracing on (conftest points the operator at the platform's Jaeger): the verify passes
        # of the window were traced, and tracing added no write.
        assert operator.extra_env.get("TENANCY_OTLP_ENDPOINT"), "the e2e operator runs without tracing"
        traced = traces.passes(names[0], since=idle_from)
        print(f"{len(traced)} traced verify passes of {names[0]} in Jaeger from the idle window")
        assert traced, f"no trace of {names[0]}'s verify passes reached Jaeger during the idle window"
        creation_events = _events(names)
        if RESTARTS:
            for part in RESTARTED_PARTS:
                if RESTARTS == "1":
                    subprocess.run(["bash", str(REPO / "platform" / "restart.sh"), part], check=True, timeout=300)
                took = _quiet(operator, names, timeout=600 + 2 * TENANTS)
                print(f"restarted {part}: everything put back and quiet after {took:.0f}s")
            windows.append(("idle after the restarts", half, _idle_window(half)))

        passes = IDLE_SECONDS / operator.verify_interval * TENANTS
        print(f"writes after convergence, {TENANTS} tenants with every backend, verify every "
              f"{operator.verify_interval:g}s (~{passes:.0f} verify passes):")
        for label, seconds, counts in windows:
            print(f" {label} ({seconds:.0f}s):\n{writes.report(counts, seconds)}")
        print(f"steady-state test took {time.monotonic() - started:.0f}s so far")

        drift = [e for e in creation_events if e["reason"] in ("DriftRepaired", "RepeatedRepair")]
        assert not drift, "creating a tenant is not drift: " + "; ".join(
            f"{e['involvedObject']['name']}: {e['reason']} {e['message']}" for e in drift)
        provisioned = {e["involvedObject"]["name"] for e in creation_events if e["reason"] == "Provisioned"}
        assert provisioned == set(names), f"no Provisioned Event for {sorted(set(names) - provisioned)}"
        for label, _, counts in windows:
            assert not any(sum(c.values()) for c in counts.values()), f"writes while {label}: {counts}"
    finally:
        kubectl("delete", "tenants", *names, "--ignore-not-found", "--wait=false", check=False)
        kube.eventually(lambda: not set(names) & _tenants(), 120 + 2 * TENANTS, 2, "steady-state tenants deleted")
        print(f"steady-state test took {time.monotonic() - started:.0f}s with cleanup")
