"""Chaos: tenant lifecycles under faults at random moments, then an inventory of every server.

`CHAOS_LIFECYCLES` tenants (6 in `make test`, 50 in `make chaos`; `CHAOS_IN_FLIGHT`, 6, at a time) each
go create -> change -> rotate -> suspend -> resume -> delete (a third are deleted early from wherever they
are, a third are kept), with PostgreSQL, Redis and OpenBao (KV and a transit key); every
`CHAOS_DOCSEARCH_EVERY`-th (2: every second one; 1: all) also with MongoDB (FerretDB) and OpenSearch.
Meanwhile, in its own thread, `CHAOS_FAULT_GAP` seconds (random within the range) after the last fault is
over, the next one from a seeded shuffle: SIGKILL of the operator (the e2e fixture's process, started again
after up to 2 s), a restart of kube-apiserver, of etcd, of PostgreSQL, of Redis, of OpenBao, of FerretDB, of
OpenSearch (platform/restart.sh; OpenSearch is healthy again 17-27 s after its stop began). Redis and
OpenBao (dev mode) come back empty, which the operator must repair; FerretDB keeps its data in PostgreSQL
and OpenSearch on disk. The faults stop when the last lifecycle has ended; the run is bounded by
`CHAOS_TIMEOUT`.

Each tenant writes a marker through its own credentials once it is Ready (a row, a key, a KV entry; a
document and a search document when it has MongoDB and search). Afterwards: every kept Tenant Ready,
every deleted one gone; then the inventory (inventory.py, inventory_docsearch.py) of every server against
the Tenants that exist: nothing leaked, nothing missing; and every marker still readable with the
tenant's current credentials, except the Redis and OpenBao markers a restart of that in-memory server
wiped (counted as not checkable; the tenant's next Active step writes them again). Names start with
`ch<seed>-`, so only this run's objects count. The seed is printed; `CHAOS_SEED` replays the plan, the
fault order and the gaps (not the timing of the servers). Lasting runs: `make chaos`.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from .. import kube
from ..kube import REPO, get, kubectl, tenant_yaml
from ..tenant_clients import credentials
from . import inventory, markers

LIFECYCLES = int(os.environ.get("CHAOS_LIFECYCLES") or 6)  # `make chaos`: 50
IN_FLIGHT = int(os.environ.get("CHAOS_IN_FLIGHT") or 6)
SEED = int(os.environ.get("CHAOS_SEED") or secrets.randbelow(16**6))
GAP = tuple(float(x) for x in (os.environ.get("CHAOS_FAULT_GAP") or "3,10").split(","))
TIMEOUT = float(os.environ.get("CHAOS_TIMEOUT") or 150 + 60 * LIFECYCLES)
SETTLE = float(os.environ.get("CHAOS_SETTLE_SECONDS") or 300)
DOCSEARCH_EVERY = int(os.environ.get("CHAOS_DOCSEARCH_EVERY") or 2)
FAULTS = ("operator-kill", "kube-apiserver", "etcd", "postgres", "redis-server", "bao", "ferretdb", "opensearch")
KILLS_PER_ROUND = 3
ROUND = FAULTS + ("operator-kill",) * (KILLS_PER_ROUND - 1)
"""Each round of the shuffle holds every fault once and the operator's SIGKILL KILLS_PER_ROUND times (it is cheap);
a run that drew a whole round has run every kind."""
STEPS = ("create", "change", "rotate", "suspend", "resume", "delete")
POLICY = json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                     "metadata": {"name": "chaos-delete"}, "spec": {"reclaim": "Delete"}})
SPEC = {"postgres": {"enabled": True}, "redis": {"enabled": True},
        "vault": {"enabled": True, "kv": True, "transitKey": True},
        "credentials": {"overlap": "5s"}, "lifecyclePolicyRef": "chaos-delete"}
DOCSEARCH = {"mongodb": {"enabled": True}, "search": {"enabled": True}}


@dataclass
class Life:
    name: str
    steps: list[str]
    marker: str
    docsearch: bool = False
    """With MongoDB and search too (DOCSEARCH)."""
    step: str | None = None
    acted: bool = False
    nonce: str = ""
    markers: dict[str, str] = field(default_factory=dict)
    """backend -> "ok" (written), "void" (wiped by a restart of its in-memory server since)."""
    plan: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.step is None and not self.steps


def _plan(rng: random.Random, index: int, prefix: str) -> Life:
    """Every third lifecycle is kept (Ready and Active for the inventory), every third runs to its delete,
    and every third is deleted early, from wherever it is (Ready, changed, rotating, suspended). Every
    DOCSEARCH_EVERY-th has MongoDB and search too (with 2, each of the three kinds with and without)."""
    steps = list(STEPS)
    if index % 3 == 0:
        steps = steps[:-1]
    elif index % 3 == 2:
        steps = steps[:rng.randint(1, 4)] + ["delete"]
    return Life(f"{prefix}{index:02d}", steps, secrets.token_hex(8), docsearch=index % DOCSEARCH_EVERY == 0,
                plan=tuple(steps))


def _act(life: Life, rng: random.Random) -> None:
    step, name = life.step, life.name
    if step == "create":
        kube.apply(tenant_yaml(name, **SPEC, **(DOCSEARCH if life.docsearch else {})))
    elif step == "change":
        # The connection limit is FerretDB's login roles' too; the shard limit rewrites nothing below it.
        patch = {"spec": {"postgres": {"connectionLimit": rng.randint(5, 50)},
                          "quota": {"pods": str(rng.randint(5, 40))}}}
        if life.docsearch:
            patch["spec"]["search"] = {"maxShards": rng.randint(5, 50)}
        kubectl("patch", "tenant", name, "--type=merge", "-p", json.dumps(patch))
    elif step == "rotate":
        life.nonce = life.nonce or f"chaos-{secrets.token_hex(4)}"
        kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate={life.nonce}")
    elif step in ("suspend", "resume"):
        state = "Suspended" if step == "suspend" else "Active"
        kubectl("patch", "tenant", name, "--type=merge", "-p", json.dumps({"spec": {"state": state}}))
    elif step == "delete":
        kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false")


def _converged(tenant: dict | None, phase: str) -> bool:
    if tenant is None:
        return False
    status = tenant.get("status") or {}
    return (status.get("observedGeneration") == tenant["metadata"]["generation"] and status.get("phase") == phase
            and kube.condition(tenant, "Ready").get("status") == "True")


def _done(life: Life) -> bool:
    """Has the step in progress converged (and, when the tenant is Active, are its markers written)?"""
    tenant = get("tenant", life.name)
    if life.step == "delete":
        return tenant is None
    if life.step == "suspend":
        return _converged(tenant, "Suspended")
    if not _converged(tenant, "Ready"):
        return False
    if life.step == "rotate" and ((tenant.get("status") or {}).get("credentials") or {}).get("rotateHandled") != life.nonce:
        return False
    markers.write(life)
    return True


class Faults(threading.Thread):
    """Injects one fault every GAP seconds (random) until stopped, beside the lifecycles (its own thread)."""

    def __init__(self, rng: random.Random, operator, lives: list[Life], started: float):
        super().__init__(daemon=True)
        self.rng, self.operator, self.lives, self.started = rng, operator, lives, started
        self.order: list[str] = []
        self.counts: Counter = Counter()
        self.operator_exits = 0
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.wait(self.rng.uniform(*GAP)):
                self.inject()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            if isinstance(exc, subprocess.CalledProcessError):
                print(f"  fault failed: {exc.stderr[-2000:]}")
            # Whatever the failed fault left stopped starts again, for the tests (and people) after this one.
            subprocess.run(["bash", str(REPO / "platform" / "up.sh")], env={**os.environ, "TENANCY_RESTARTING": "1"},
                           timeout=600, capture_output=True, check=False)

    def inject(self) -> None:
        # A crash in the gap is counted before the fault: a SIGKILL of a dead operator would hide it (the
        # kill does nothing, the start revives it), and so would any other fault that restarts it.
        self.revive()
        if not self.order:
            self.order = list(ROUND)
            self.rng.shuffle(self.order)
        kind = self.order.pop()
        began = time.monotonic()
        print(f"  {began - self.started:6.1f}s fault {kind}; in flight: "
              + ", ".join(f"{life.name}:{life.step}" for life in self.lives if life.step))
        if kind == "operator-kill":
            self.operator.kill()
            time.sleep(self.rng.uniform(0, 2))
            self.operator.start()
        else:
            subprocess.run(["bash", str(REPO / "platform" / "restart.sh"), kind], check=True, timeout=300,
                           capture_output=True)
            if kind in markers.IN_MEMORY:
                for life in self.lives:
                    if life.markers.get(markers.IN_MEMORY[kind]) == "ok":
                        life.markers[markers.IN_MEMORY[kind]] = "void"
        self.revive()
        print(f"  {time.monotonic() - self.started:6.1f}s {kind} back after {time.monotonic() - began:.1f}s")
        self.seconds += time.monotonic() - began
        self.counts[kind] += 1

    def revive(self) -> None:
        """The operator must outlive every restart; if it exited on its own, count it and start it again.
        Called before and after each fault, so only the fault's own SIGKILL goes uncounted."""
        if self.operator.proc is None or self.operator.proc.poll() is not None:
            self.operator_exits += 1
            code = None if self.operator.proc is None else self.operator.proc.returncode
            print(f"  {time.monotonic() - self.started:6.1f}s the operator exited on its own (code {code}); starting it")
            self.operator.start()

    def finish(self) -> None:
        """Stop after the fault under way (the servers it restarts are back up then)."""
        self.halt.set()
        self.join(600)
        if self.error is not None:
            raise AssertionError(f"injecting a fault failed: {self.error!r}") from self.error


def _tenants(prefix: str) -> dict[str, dict]:
    items = json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]
    return {t["metadata"]["name"]: t for t in items if t["metadata"]["name"].startswith(prefix)}


def _logins(life: Life) -> inventory.Logins:
    """The tenant's current login per service, from its Secret (a key for each service it enables)."""
    creds = credentials(life.name)
    logins = {"postgres": creds.get("PGUSER")}
    if life.docsearch:
        logins |= {"mongodb": creds.get("MONGODB_USERNAME"), "search": creds.get("SEARCH_USERNAME")}
    return logins


def test_lifecycles_under_faults_leave_exact_inventory(operator, backends, mongo_backend, search_backend):
    rng = random.Random(SEED)
    prefix = f"ch{SEED:06x}-"
    print(f"\nchaos seed {SEED} (CHAOS_SEED={SEED} replays it): {LIFECYCLES} lifecycles, {IN_FLIGHT} in flight, "
          f"a fault every {GAP[0]:g}-{GAP[1]:g}s, MongoDB and search in every {DOCSEARCH_EVERY}, names {prefix}*")
    kube.apply(POLICY)
    plans = [_plan(rng, i, prefix) for i in range(LIFECYCLES)]
    waiting, running, ended = list(plans), [], []
    started = time.monotonic()
    faults = Faults(random.Random(f"{SEED}-faults"), operator, plans, started)
    transient = Counter()
    faults.start()
    try:
        while waiting or running:
            assert time.monotonic() - started < TIMEOUT, (
                f"chaos run not done after {TIMEOUT:.0f}s (seed {SEED}): "
                + ", ".join(f"{life.name} at {life.step}" for life in running))
            assert faults.error is None, f"injecting a fault failed: {faults.error!r}"
            while waiting and len(running) < IN_FLIGHT:
                running.append(waiting.pop(0))
            for life in list(running):
                try:
                    if life.step is None:
                        life.step, life.acted = life.steps.pop(0), False
                    if not life.acted:
                        _act(life, rng)
                        life.acted = True
                    if _done(life):
                        life.step = None
                        if life.ended:
                            running.remove(life)
                            ended.append(life)
                except Exception as exc:  # noqa: BLE001 - a server restarting: try again next round
                    transient[type(exc).__name__] += 1
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        faults.finish()
        print(f"{len(ended)} lifecycles ended in {elapsed:.0f}s ({faults.seconds:.0f}s of faults beside them); "
              f"steps {dict(Counter(s for life in plans for s in life.plan))}; "
              f"{sum(life.docsearch for life in plans)} with MongoDB and search")
        injected = sum(faults.counts.values())
        print(f"faults: {injected} ({', '.join(f'{k} {faults.counts[k]}' for k in FAULTS)}); "
              f"operator exits on its own: {faults.operator_exits}; transient errors seen: {dict(transient)}")
        # Faults did happen (a run without any would pass every check below): at least one, and a whole
        # round for a run of 50 lifecycles or more (`make chaos`).
        floor = min(len(ROUND), max(1, LIFECYCLES // 5))
        assert injected >= floor, f"{injected} faults in {LIFECYCLES} lifecycles (seed {SEED}); at least {floor} expected"
        # Every kind ran once a whole round was drawn (a short run may end within the first round).
        if injected >= len(ROUND):
            never = [k for k in FAULTS if not faults.counts[k]]
            assert not never, f"fault kinds never injected in {injected} faults (seed {SEED}): {never}"
        else:
            print(f"fewer faults than a round ({injected} of {len(ROUND)}): not every kind is due")

        # Convergence: the kept tenants Ready, the deleted ones gone.
        kept = {life.name: life for life in plans if "delete" not in life.plan}
        kube.eventually(lambda: set(_tenants(prefix)) == set(kept), SETTLE, 2, "only the kept tenants exist")
        kube.eventually(lambda: all(_converged(t, "Ready") for t in _tenants(prefix).values()), SETTLE, 2,
                        "every kept tenant Ready")
        faults.revive()
        assert faults.operator_exits == 0, f"the operator exited on its own {faults.operator_exits} times"

        # The inventory: settle until nothing is missing or leaked (deletion and repair take a pass or two).
        def check():
            live = {name: _logins(life) for name, life in kept.items()}
            inv = inventory.collect(prefix)
            leaked, missing = inventory.compare(inv, live)
            return inv, leaked, missing

        inv, leaked, missing = check()
        deadline = time.monotonic() + SETTLE
        while (leaked or missing) and time.monotonic() < deadline:
            time.sleep(3)
            inv, leaked, missing = check()
        lost, uncheckable, checked = [], Counter(), Counter()
        for life in kept.values():
            read = markers.read(life)
            for backend, state in life.markers.items():
                if state == "void":
                    uncheckable[backend] += 1
                    continue
                checked[backend] += 1
                if read[backend] != life.marker:
                    lost.append(f"{life.name}: {backend} marker")
        print(f"tenants: {len(kept)} kept, {len(plans) - len(kept)} deleted")
        print("objects per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(inv.per_kind().items())))
        print(f"leaked {len(leaked)}, missing {len(missing)}, lost {len(lost)} "
              f"(markers checked: {dict(checked)}; wiped by a restart of their in-memory server: {dict(uncheckable)})")
        assert not leaked, f"leaked (seed {SEED}): {leaked[:20]}"
        assert not missing, f"missing (seed {SEED}): {missing[:20]}"
        assert not lost, f"data lost (seed {SEED}): {lost[:20]}"
        assert sum(checked.values()) >= len(kept), checked
    finally:
        faults.halt.set()
        faults.join(600)
        faults.revive()
        names_ = list(_tenants(prefix))
        if names_:
            kubectl("delete", "tenants", *names_, "--ignore-not-found", "--wait=false", check=False)
            kube.eventually(lambda: not _tenants(prefix), 180, 2, "chaos tenants deleted")
    # With every tenant of the run deleted (reclaim Delete), no server holds anything of it.
    leaked, _ = inventory.compare(inventory.collect(prefix), {})
    deadline = time.monotonic() + 120
    while leaked and time.monotonic() < deadline:
        time.sleep(3)
        leaked, _ = inventory.compare(inventory.collect(prefix), {})
    print(f"after deleting the kept tenants: leaked {len(leaked)}; chaos test took {time.monotonic() - started:.0f}s")
    assert not leaked, f"left after deleting every tenant of the run (seed {SEED}): {leaked[:20]}"

