"""Helpers for e2e tests: kubectl against the local platform, waiting, and the operator process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".platform"


def load_platform_env(env_file: Path | None = None) -> dict[str, str]:
    """The `export` lines of .platform/env, and of the part files it sources (opensearch.env, jaeger.env)."""
    env_file = env_file or STATE / "env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: the local platform is not up (run `make up`)")
    env: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line.startswith("source "):
            env |= load_platform_env(Path(os.path.expandvars(line[len("source "):].strip())))
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = os.path.expandvars(value.strip().strip('"').strip("'"))
    return env


def kubectl(*args: str, check: bool = True, input: str | None = None, timeout: float = 60,
            kubeconfig: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["kubectl", *args]
    if kubeconfig:
        cmd.insert(1, f"--kubeconfig={kubeconfig}")
    result = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    result = kubectl(*args, check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)


def object_events(kind: str, name: str, *, namespace: str | None = None, reason: str | None = None,
                  uid: str | None = None) -> list[dict[str, Any]]:
    """The Events on the object `kind`/`name` (of `reason` when given), in `namespace` or else in every one,
    of ITS uid only: `uid` when given, else the live object's. The API server keeps Events an hour and the
    tests reuse fixed names, so an earlier run's object (or an earlier one in the test) of that name would
    count too. Gone with no `uid` given: every Event of that name (a test reading a deleted object's Events
    passes the uid it took before). `namespace` is also where a namespaced object is read; the operator posts a
    cluster-scoped object's Events in `default` (handlers/events.py)."""
    if uid is None:
        uid = ((get(kind, name, namespace) or {}).get("metadata") or {}).get("uid")
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    selector += (f",reason={reason}" if reason else "") + (f",involvedObject.uid={uid}" if uid else "")
    scope = ["-n", namespace] if namespace else ["-A"]
    return json.loads(kubectl("get", "events", *scope, "--field-selector", selector, "-o", "json").stdout)["items"]


def events_since(since: float) -> list[str]:
    """The operator's Events (any namespace) last posted at or after `since` (epoch seconds, whole
    seconds as the API server keeps them), one line each: time, kind/name, type, reason, message."""
    from datetime import datetime

    found = []
    for e in json.loads(kubectl("get", "events", "-A", "-o", "json").stdout)["items"]:
        if "tenancy-operator" not in (e.get("reportingComponent"), (e.get("source") or {}).get("component")):
            continue
        stamp = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"]["creationTimestamp"]
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        if at >= int(since):
            obj = e.get("involvedObject") or {}
            found.append(f"{stamp} {obj.get('kind')}/{obj.get('name')} {e.get('type')} {e.get('reason')}: "
                         f"{(e.get('message') or '')[:300]}")
    return sorted(found)


def apply(manifest: str) -> None:
    kubectl("apply", "-f", "-", input=manifest)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c.get("type") == type_:
            return c
    return {}


def eventually(check, timeout: float = 30, interval: float = 0.5, message: str = "condition not met"):
    """Call `check` until it returns a truthy value; fail with its last value or exception."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s; last: {last!r}")
        time.sleep(interval)


def backends_counted(timeout: float = 120) -> dict[str, int]:
    """Wait until every Backend's `status.tenantsPlaced` is the number of Tenants whose placement names it,
    after the Tenants earlier tests left deleting (`--wait=false`) are gone: each one that goes changes a
    count, and the Backend probe's write of it would land in a test's idle window. Tenants still deleting
    after `timeout` (stuck by design elsewhere) are counted as they are. Returns the counts."""
    deadline = time.monotonic() + timeout

    def counted() -> dict[str, int] | None:
        tenants = json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]
        if time.monotonic() < deadline and any(t["metadata"].get("deletionTimestamp") for t in tenants):
            return None
        placed: dict[tuple[str, str], int] = {}
        for t in tenants:
            for service, backend in ((t.get("status") or {}).get("placement") or {}).items():
                placed[(service, backend)] = placed.get((service, backend), 0) + 1
        written = {}
        for b in json.loads(kubectl("get", "backends", "-o", "json").stdout)["items"]:
            key = (b["spec"].get("type", ""), b["metadata"]["name"])
            written[key[1]] = int((b.get("status") or {}).get("tenantsPlaced") or 0)
            if written[key[1]] != placed.get(key, 0):
                return None
        return written

    return eventually(counted, timeout + 60, 1, "every Backend's tenantsPlaced matching the Tenants placed on it")


def lead_seconds(quiet: float = 45, per_busy_core: float = 40, most: float = 240) -> float:
    """How far ahead to schedule an event a test's setup must beat: `quiet` seconds on an idle machine, plus
    `per_busy_core` for each runnable process beyond the cores (1-minute load average), at most `most`.
    Setup (backfill, tenants, first fits) took 25 s on a quiet machine and 168 s under load 9 on 2 cores,
    past a fixed 45 s lead."""
    busy = max(0.0, os.getloadavg()[0] - (os.cpu_count() or 1))
    return min(most, quiet + per_busy_core * busy)


def tenant_yaml(name: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
                       "spec": spec})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scraped_metrics_port() -> int:
    """The port the platform's Prometheus scrapes as job `tenancy-operator` (platform/lib.sh), when free;
    so an e2e run's metrics land in Prometheus (the dashboards are drawn from them). Else any free port."""
    port = 19092 + int(os.environ.get("TENANCY_PORT_OFFSET") or 0)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


class OperatorExited(RuntimeError):
    """The operator process ended while it was being started."""


class Operator:
    """The operator as a real process, started, stopped and killed by tests."""

    def __init__(self, kubeconfig: str, verify_interval: float = 3.0, extra_env: dict[str, str] | None = None,
                 scraped: bool = True):
        """`scraped`: serve /metrics on the port the platform's Prometheus scrapes every 5 s (when free);
        False: on a free port nobody scrapes (the scale bench scrapes at the chart's interval itself)."""
        self.kubeconfig = kubeconfig
        self.scraped = scraped
        self.verify_interval = verify_interval
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log = STATE / "logs" / "operator-e2e.log"
        self.metrics_port = 0

    def start(self, attempts: int = 3) -> None:
        """Start the process and wait for its liveness endpoint. The liveness and metrics ports are picked
        free beforehand, so another process can take one before the operator binds it (an outgoing
        connection's ephemeral port, on a busy machine): such a start is tried again on other ports."""
        for attempt in range(attempts):
            offset = self.log.stat().st_size if self.log.exists() else 0
            try:
                return self._start_once()
            except OperatorExited:
                with self.log.open("rb") as f:
                    f.seek(offset)
                    taken = b"address already in use" in f.read()
                if not taken or attempt == attempts - 1:
                    raise

    def _start_once(self) -> None:
        port = free_port()
        self.metrics_port = scraped_metrics_port() if self.scraped else free_port()
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "TENANCY_VERIFY_INTERVAL": str(self.verify_interval),
               "TENANCY_LIVENESS": f"http://127.0.0.1:{port}/healthz", "TENANCY_RETRY_BASE": "0.5",
               "TENANCY_RETRY_MAX": "5", "TENANCY_STANDALONE": "true", "TENANCY_METRICS_PORT": str(self.metrics_port),
               "TENANCY_METRICS_ADDRESS": "127.0.0.1",
               **self.extra_env}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("a")
        self.proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "tenancy-operator")], env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        import urllib.request

        def healthy():
            if not self.proc or self.proc.poll() is not None:
                raise OperatorExited(f"operator exited; see {self.log}")  # not retried by `eventually`
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
            except OSError:
                return False

        eventually(healthy, timeout=30, message="operator liveness endpoint up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def rolling_deployment(namespace: str) -> str:
    """A Deployment `api` opted in to rolling on every credential rotation (restricted pod security)."""
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": namespace, "labels": {"tenancy.dev/restart-on-rotation": "true"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{
                     "name": "api", "image": "example.invalid/api:1",
                     "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000,
                                         "capabilities": {"drop": ["ALL"]},
                                         "seccompProfile": {"type": "RuntimeDefault"}}}]}}},
    })
