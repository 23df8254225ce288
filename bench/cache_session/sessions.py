"""Session rows of the cache/session bench: create and validate, through `tenancy_client.sessions`.

Setup: a TenantSessionPolicy and a Tenant `bench-sessions` (Redis and OpenBao enabled) applied with
kubectl; a running operator provisions them (`make operator-start`). The bench then acts as the
tenant's application: its Secret, ConfigMap `tenant-session-keys`, and a `tenant-app` token from the
TokenRequest API.

- Latency (p50/p95/p99): one process, one operation at a time (`create`, `validate`).
- Throughput: `processes` worker processes, each pipelining: `create_many` (one transit `sign` request
  with `batch_input` and one Redis MULTI per batch) and `validate_many` (offline JWS checks and one
  pipelined `EXISTS` round trip per batch).

`python -m bench.cache_session.sessions [seconds] [processes]` prints the rows and a breakdown of one
create (where the time goes).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

from tenancy_client.config import TenantConfig
from tenancy_client.sessions import Sessions

__all__ = ["rows", "FLOORS", "setup", "teardown", "breakdown"]

TENANT = "bench-sessions"
POLICY = "bench-sessions"
FLOORS = {"create session": (5.0, 50_000), "validate session token": (2.0, 100_000)}
CREATE_BATCH = 100
VALIDATE_BATCH = 500


def _kubectl(*args: str, input: str | None = None) -> str:
    result = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=input, timeout=150)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def setup() -> tuple[dict[str, Any], str]:
    """Apply the policy and tenant, wait until Ready; the tenant's configuration (as dicts) and a login token."""
    manifests = [
        {"apiVersion": "tenancy.dev/v1alpha1", "kind": "TenantSessionPolicy", "metadata": {"name": POLICY},
         "spec": {"signingAlgorithm": "ed25519", "lifetime": "1h", "idleTimeout": "30m", "maxConcurrent": 100000}},
        # Deleting the bench tenant deletes its data, so the next run can make it again.
        {"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": POLICY},
         "spec": {"reclaim": "Delete"}},
        {"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": TENANT},
         "spec": {"redis": {"enabled": True}, "vault": {"enabled": True}, "sessionPolicyRef": POLICY,
                  "lifecyclePolicyRef": POLICY}},
    ]
    _kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(m) for m in manifests))
    try:
        _kubectl("wait", "--for=condition=Ready", f"tenant/{TENANT}", "--timeout=120s")
    except RuntimeError as exc:
        raise RuntimeError(f"tenant {TENANT} is not Ready: is the operator running (make operator-start)? {exc}") from exc
    namespace = f"tenant-{TENANT}"
    secret = json.loads(_kubectl("get", "secret", "tenant-credentials", "-n", namespace, "-o", "json"))
    cm = json.loads(_kubectl("get", "configmap", "tenant-session-keys", "-n", namespace, "-o", "json"))
    config = {"credentials": {k: base64.b64decode(v).decode() for k, v in secret["data"].items()},
              "session_policy": json.loads(cm["data"]["policy.json"]), "jwks": json.loads(cm["data"]["jwks.json"])}
    return config, _kubectl("create", "token", "tenant-app", "-n", namespace).strip()


def teardown() -> None:
    """Delete the bench tenant (and its data) and its policies."""
    _kubectl("delete", "tenant", TENANT, "--ignore-not-found", "--timeout=120s")
    _kubectl("delete", "tenantsessionpolicy", POLICY, "--ignore-not-found")
    _kubectl("delete", "lifecyclepolicy", POLICY, "--ignore-not-found")


def _sessions(config: dict[str, Any], token: str) -> Sessions:
    return Sessions(TenantConfig(**config), service_account_token=token)


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return pick(0.50), pick(0.95), pick(0.99)


def _latency(sessions: Sessions, seconds: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"create session": [], "validate session token": []}
    tokens: list[str] = []
    deadline = time.perf_counter() + seconds / 2
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        tokens.append(sessions.create(f"user-{len(tokens) % 1000}").token)
        out["create session"].append(time.perf_counter() - t)
    deadline = time.perf_counter() + seconds / 2
    i = 0
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        sessions.validate(tokens[i % len(tokens)])
        out["validate session token"].append(time.perf_counter() - t)
        i += 1
    return out


def _worker(args: tuple[str, dict[str, Any], str, float, int, float]) -> tuple[int, float]:
    """Run one operation from `start_at` (wall clock) for `seconds`; (operations done, seconds taken)."""
    operation, config, token, seconds, index, start_at = args
    sessions = _sessions(config, token)
    tokens = [s.token for s in sessions.create_many([f"w{index}-{i}" for i in range(VALIDATE_BATCH)])]
    time.sleep(max(0.0, start_at - time.time()))
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        if operation == "create session":
            done += len(sessions.create_many([f"w{index}-{done + i}" for i in range(CREATE_BATCH)]))
        else:
            results = sessions.validate_many(tokens)
            assert all(not isinstance(r, Exception) for r in results), results[:1]
            done += len(results)
    return done, time.perf_counter() - began


def _throughput(operation: str, config: dict[str, Any], token: str, seconds: float, processes: int) -> float:
    """Sum of each worker's rate. Workers are plain subprocesses (multiprocessing pools hung under pytest)
    that start together at a wall-clock moment after their setup."""
    start_at = time.time() + 8
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = [subprocess.Popen([sys.executable, "-m", "bench.cache_session.sessions", "--worker"], cwd=root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write(json.dumps([operation, config, token, seconds, i, start_at]))
        proc.stdin.close()
    results = []
    for proc in procs:
        assert proc.stdout is not None
        out = proc.stdout.read()
        if proc.wait(timeout=seconds + 120) != 0:
            raise RuntimeError(f"bench worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return sum(done / elapsed for done, elapsed in results)


def rows(seconds: float, processes: int) -> list[dict]:
    """One dict per operation: operation, floor_p95_ms, floor_ops, p50_ms, p95_ms, p99_ms, ops_per_s."""
    config, token = setup()
    samples = _latency(_sessions(config, token), seconds)
    out = []
    for operation, (floor_p95, floor_ops) in FLOORS.items():
        p50, p95, p99 = _percentiles(samples[operation])
        out.append({"operation": operation, "floor_p95_ms": floor_p95, "floor_ops": floor_ops, "p50_ms": p50,
                    "p95_ms": p95, "p99_ms": p99,
                    "ops_per_s": _throughput(operation, config, token, seconds, processes)})
    return out


def breakdown(n: int = 300) -> dict[str, float]:
    """Median milliseconds of each step of one create: transit sign over HTTP, Redis MULTI, JWS encoding."""
    config, token = setup()
    sessions = _sessions(config, token)
    sessions.create("warm-up")
    steps: dict[str, list[float]] = {"transit sign (HTTP)": [], "redis MULTI": [], "PyJWT encode (no sign)": [],
                                     "transit batch sign, per token (batch 100)": [],
                                     "offline verify, first sight (Ed25519 + PyJWT)": [],
                                     "offline verify, seen before": [], "redis EXISTS": []}
    token_text = sessions.create("x").token
    for _ in range(n):
        t = time.perf_counter()
        sessions.signer.sign(b"x" * 150, int(sessions._kid.lstrip("v")))
        steps["transit sign (HTTP)"].append(time.perf_counter() - t)
        claims = sessions._claims("x", time.time())
        t = time.perf_counter()
        sessions._write([claims], time.time())
        steps["redis MULTI"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sessions._encode(claims, [])
        steps["PyJWT encode (no sign)"].append(time.perf_counter() - t)
        sessions._verified.clear()
        t = time.perf_counter()
        claims_seen = sessions.verify(token_text)
        steps["offline verify, first sight (Ed25519 + PyJWT)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sessions.verify(token_text)
        steps["offline verify, seen before"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sessions.redis.exists(sessions._session_key(claims_seen.sid))
        steps["redis EXISTS"].append(time.perf_counter() - t)
    for _ in range(max(3, n // 30)):
        t = time.perf_counter()
        sessions.signer.sign_many([b"x" * 150] * 100, int(sessions._kid.lstrip("v")))
        steps["transit batch sign, per token (batch 100)"].append((time.perf_counter() - t) / 100)
    return {k: sorted(v)[len(v) // 2] * 1000 for k, v in steps.items()}


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    print(json.dumps(_worker(tuple(json.load(sys.stdin)))))
elif __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else (os.cpu_count() or 1)
    for row in rows(seconds, processes):
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    for step, ms in breakdown().items():
        print(f"{step:45s} {ms:8.3f} ms")
