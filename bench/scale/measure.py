"""What one batch is measured with: a watch on the API server, the audit log, /proc, the operator's metrics.

- `Watch`: `kubectl get --raw <tenants>?watch=1` streams one JSON event per line; each line is stamped
  with `time.monotonic()` when this process reads it. A tenant's apply-to-Ready is the stamp of its
  first event with Ready=True for its generation minus the stamp of its ADDED event: the same clock,
  no kubectl process start in it (the Ready condition's lastTransitionTime has whole seconds only).
  A watch the server ends is opened again from the last resourceVersion (a relist if that is gone;
  what the list shows is stamped when it is read).
- `requests_by`: every request of a user in the audit log between two marks, by (verb, resource).
- `Proc`: RSS (VmRSS, and the peak VmHWM) and CPU seconds (utime + stime) of a process, from /proc.
- `Scraper`: scrapes /metrics at the chart's ServiceMonitor interval while a size runs.
- `api_requests`: the API server's own request counters, by verb (reads are not in the audit log).
- `metrics`: the operator's Prometheus text, summed by metric name and a label filter.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from e2e import kube
from e2e.audit import WRITE_VERBS, Mark, entries

TENANTS = "/apis/tenancy.dev/v1alpha1/tenants"


def _ready(obj: dict) -> bool:
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation", 1)
    if status.get("observedGeneration") != generation:
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class Watch:
    """Receive times of the ADDED, first Ready and DELETED events of the tenants named in `names`."""

    def __init__(self, names: list[str]):
        self.names = set(names)
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.events = 0
        self.reconnects = 0
        self.relists = 0
        self.failed = ""
        self._version = ""
        self._stopping = False
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listed = json.loads(kube.kubectl("get", "--raw", f"{TENANTS}?limit=1").stdout)
        self._version = listed["metadata"]["resourceVersion"]
        self._stopping = False
        self._open()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _open(self) -> None:
        self._proc = subprocess.Popen(
            ["kubectl", "get", "--raw",
             f"{TENANTS}?watch=1&allowWatchBookmarks=true&resourceVersion={self._version}&timeoutSeconds=7200"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def _read(self) -> None:
        # The API server may end a watch before its timeoutSeconds (seen at N=500: kubectl exited 0
        # mid-batch); go on from the last resourceVersion seen, or from a fresh list if that is too old.
        while not self._stopping:
            assert self._proc and self._proc.stdout
            for line in self._proc.stdout:
                self._take(line, time.monotonic())
            self._proc.wait()
            if self._stopping:
                return
            self.reconnects += 1
            if self.reconnects > 20:
                self.failed = f"the watch ended {self.reconnects} times (kubectl exited {self._proc.returncode})"
                return
            self._open()

    def _take(self, line: str, now: float) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":  # 410 Gone: the version is too old; list again
            self._relist(now)
            return
        self._version = obj.get("metadata", {}).get("resourceVersion") or self._version
        name = obj.get("metadata", {}).get("name")
        if event.get("type") == "BOOKMARK" or name not in self.names:
            return
        self.events += 1
        if event.get("type") == "ADDED":
            self.added.setdefault(name, now)
        if event.get("type") == "DELETED":
            self.deleted.setdefault(name, now)
        elif name not in self.ready and _ready(obj):
            self.ready[name] = now

    def _relist(self, now: float) -> None:
        listed = json.loads(kube.kubectl("get", "--raw", TENANTS).stdout)
        present = {o["metadata"]["name"]: o for o in listed.get("items") or []}
        for name in self.names:
            obj = present.get(name)
            if obj is None and name in self.added:
                self.deleted.setdefault(name, now)
            elif obj is not None:
                self.added.setdefault(name, now)
                if name not in self.ready and _ready(obj):
                    self.ready[name] = now
        self._version = listed["metadata"]["resourceVersion"]
        self.relists += 1

    def wait(self, what: dict[str, float], timeout: float, label: str) -> None:
        deadline = time.monotonic() + timeout
        while len(what) < len(self.names):
            if time.monotonic() > deadline:
                missing = sorted(self.names - set(what))
                raise AssertionError(f"{len(missing)} tenants not {label} within {timeout:.0f}s: {missing[:10]}")
            if self.failed:
                raise AssertionError(self.failed)
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopping = True
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def requests_by(since: Mark, username: str, until: Mark | None = None) -> Counter:
    """Requests of `username` between two audit log marks (across a rotation), counted by (verb, resource)."""
    counts: Counter = Counter()
    for entry in entries(since, until):
        if entry.get("user", {}).get("username") != username:
            continue
        counts[(entry.get("verb", ""), entry.get("objectRef", {}).get("resource", ""))] += 1
    return counts


def writes_of(counts: Counter, exclude: frozenset[str] = frozenset({"leases"})) -> int:
    return sum(n for (verb, resource), n in counts.items() if verb in WRITE_VERBS and resource not in exclude)


class Proc:
    """One process's memory and CPU time, read from /proc."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int):
        self.pid = pid

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB: now and the peak since the process started."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        after = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        return (int(after[11]) + int(after[12])) / self.TICKS


class Scraper:
    """Reads the operator's /metrics every `interval` seconds in a thread, as one Prometheus does with the
    chart's ServiceMonitor, with the headers Prometheus sends (OpenMetrics first, gzip), and drops the
    answer: the operator formats and compresses each scrape as for a deployed Prometheus (an HA pair
    scrapes twice per interval). A failed scrape is counted, not raised (Prometheus marks the target
    down and goes on)."""

    HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
               "Accept-Encoding": "gzip"}
    """What Prometheus 2.x sends when it scrapes (its default scrape protocols)."""

    def __init__(self, port: int, interval: float):
        self.port, self.interval = port, interval
        self.scrapes = self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics", headers=self.HEADERS)
                urllib.request.urlopen(request, timeout=10).read()
                self.scrapes += 1
            except OSError:
                self.failures += 1


def metrics(port: int) -> dict[tuple[str, str], float]:
    """The operator's samples, summed by (sample name, the `handler` label or "")."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    sums: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, sample.labels.get("handler", ""))
            sums[key] = sums.get(key, 0.0) + sample.value
    return sums


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def backend_requests() -> dict[str, int]:
    """Requests each server has handled since it started, whoever sent them: PostgreSQL transactions
    (pg_stat_database, published up to ~10 s late), Redis commands, OpenBao requests and logins.
    Server-wide: on the bench's own platform the operator is the only other client; the bench's own
    reads (a few per snapshot) are in the counts."""
    from e2e import admin

    pg = admin.pg_admin("SELECT sum(xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database")[0]["n"]
    client = admin.redis_admin()
    try:
        redis_commands = int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()
    text = urllib.request.urlopen(urllib.request.Request(
        f"{os.environ['VAULT_ADDR']}/v1/sys/metrics?format=prometheus",
        headers={"X-Vault-Token": os.environ["VAULT_TOKEN"]}), timeout=10).read().decode()
    bao = sum(float(line.split()[-1]) for line in text.splitlines()
              if line.startswith(("vault_core_handle_request_count ", "vault_core_handle_login_request_count ")))
    return {"postgres": int(pg), "redis": redis_commands, "openbao": int(bao)}


def api_requests() -> Counter:
    """Requests the API server has answered since it started, by (verb, resource), from its own
    `apiserver_request_total` (verb GET, LIST, WATCH, POST, PATCH, ...): every client's, the controller
    manager's and the bench's own included (a watch counts when it ends)."""
    text = kube.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: Counter = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "apiserver_request":
            for sample in family.samples:
                if sample.name == "apiserver_request_total":
                    resource = "/".join(x for x in (sample.labels.get("resource"), sample.labels.get("subresource")) if x)
                    counts[(sample.labels.get("verb", ""), resource)] += int(sample.value)
    return counts


READ_VERBS = ("GET", "LIST")


def reads_of(served: dict[tuple[str, str], int]) -> int:
    return sum(count for (verb, _), count in served.items() if verb in READ_VERBS)


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def events_since(began: str) -> Counter:
    """The operator's Events on Tenants and Backends stamped at or after `began` (UTC, whole seconds),
    counted by "Kind reason: message" (the message cut, the tenant's name left out so alike ones add up)."""
    items = json.loads(kube.kubectl("get", "events", "-A", "-o", "json", timeout=120).stdout)["items"]
    counts: Counter = Counter()
    for e in items:
        obj = e.get("involvedObject") or {}
        stamp = (e.get("eventTime") or e.get("lastTimestamp") or e.get("firstTimestamp") or "")[:19]
        if obj.get("kind") not in ("Tenant", "Backend") or stamp < began:
            continue
        if (e.get("source") or {}).get("component") != "tenancy-operator":
            continue
        message = (e.get("message") or "").replace(obj.get("name") or "\0", "NAME")[:80]
        counts[f"{obj['kind']} {e.get('reason')}: {message}"] += 1
    return counts


def backend_statuses() -> dict[str, dict]:
    items = json.loads(kube.kubectl("get", "backends", "-o", "json").stdout)["items"]
    return {b["metadata"]["name"]: b.get("status") or {} for b in items}


def placed_counts() -> dict[str, int]:
    """Per Backend, `status.tenantsPlaced` (what its probe last wrote)."""
    return {name: int(status.get("tenantsPlaced") or 0) for name, status in backend_statuses().items()}


def placed_truth() -> dict[str, int]:
    """Per Backend, how many Tenants' `status.placement` name it now (what its probe counts)."""
    counts: Counter[str] = Counter()
    for t in json.loads(kube.kubectl("get", "tenants", "-o", "json").stdout)["items"]:
        counts.update(v for v in ((t.get("status") or {}).get("placement") or {}).values() if v)
    return dict(counts)


def wait_placed(timeout: float) -> dict[str, tuple[int, int]]:
    """Wait until every Backend's written tenant count is the number of Tenants placed on it now;
    returns {} then, or {backend: (written, placed)} of those that differ at the timeout.

    Against the Tenants now, not the growth since the batch began: a Tenant of an earlier test still
    being deleted lowers the growth, and waiting for it cost the e2e smoke its full 120 s."""
    deadline = time.monotonic() + timeout
    while True:
        truth = placed_truth()
        off = {name: (count, truth.get(name, 0)) for name, count in placed_counts().items()
               if count != truth.get(name, 0)}
        if not off or time.monotonic() > deadline:
            return off
        time.sleep(1)


def status_changes(before: dict[str, dict], after: dict[str, dict]) -> dict[str, list[str]]:
    """Per Backend, the status fields whose values differ (lastCheckedAt is written with any change)."""
    changed = {}
    for name, status in after.items():
        old = before.get(name) or {}
        fields = sorted(k for k in set(status) | set(old) if status.get(k) != old.get(k))
        if fields:
            changed[name] = fields
    return changed
