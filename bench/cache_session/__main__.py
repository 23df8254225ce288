"""`make bench-cache-session`: the original system's floor table, measured through `tenancy_client`.

    python -m bench.cache_session [--seconds 3] [--processes N] [--results bench/cache_session/RESULTS.md]

Needs the local platform's Redis (`REDIS_URL`, from `source .platform/env`). Every cache row runs
in as many client processes as the machine has cores (`--processes`), each with its own `Cache`:
latency is per call (p50/p95/p99 over every process's calls), throughput is operations per second
summed over the processes. Pipelined rows move 100 keys per round trip (`get_many`/`set_many`); their
latency is per call, i.e. per 100 keys. Session rows come from `bench.cache_session.sessions` when
it is importable (the TenantSessionPolicy part), otherwise a line says they were skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import time
from array import array
from typing import Any

import redis
from tenancy_client import TenantConfig
from tenancy_client.cache import Cache

PREFIX = "t:bench-cache:"
FLOOR = {"cache": (0.5, 500_000)}
KEYS = 1000
BATCH = 100
MAX_SAMPLES = 200_000


def _config(l1: bool) -> TenantConfig:
    return TenantConfig(credentials={"REDIS_URL": os.environ["REDIS_URL"], "REDIS_KEY_PREFIX": PREFIX},
                        cache={"prefix": PREFIX, "defaultTtlSeconds": 600, "compressionThresholdBytes": 1024,
                               "l1": {"maxBytes": 64 * 2**20 if l1 else 0, "ttlSeconds": 600 if l1 else 0}})


def _ops(mode: str, cache: Cache, value: bytes):
    """(one call, keys it moves): the operation each row measures."""
    keys = [f"k{i}" for i in range(KEYS)]
    batches = [keys[i:i + BATCH] for i in range(0, KEYS, BATCH)]
    state = {"i": 0}

    def nxt() -> int:
        state["i"] = (state["i"] + 1) % KEYS
        return state["i"]

    if mode in ("l1-get", "l2-get"):
        return (lambda: cache.get(keys[nxt()])), 1
    if mode == "l2-set":
        return (lambda: cache.set(keys[nxt()], value, broadcast=False)), 1
    if mode == "l2-set-broadcast":
        return (lambda: cache.set(keys[nxt()], value)), 1
    if mode == "l2-get-pipelined":
        return (lambda: cache.get_many(batches[nxt() % len(batches)])), BATCH
    if mode == "l2-set-pipelined":
        items = [{k: value for k in b} for b in batches]
        return (lambda: cache.set_many(items[nxt() % len(items)], broadcast=False)), BATCH
    raise ValueError(mode)


def _worker(args: tuple[str, float]) -> tuple[bytes, int, float]:
    mode, seconds = args
    cache = Cache(_config(mode == "l1-get"), listen=False)
    value = os.urandom(100)
    cache.set_many({f"k{i}": value for i in range(KEYS)}, broadcast=False)
    call, per_call = _ops(mode, cache, value)
    for _ in range(200):  # warm up: connections, L1 filled, code paths hot
        call()
    # Latency: every call timed (half the time); throughput: the same calls untimed (the other half).
    samples = array("q")
    clock = time.perf_counter_ns
    end = time.monotonic() + seconds / 2
    while time.monotonic() < end:
        for _ in range(64):
            t0 = clock()
            call()
            samples.append(clock() - t0)
        if len(samples) > MAX_SAMPLES:
            samples = samples[::2]
    done, start = 0, time.perf_counter()
    end = time.monotonic() + seconds / 2
    while time.monotonic() < end:
        for _ in range(64):
            call()
        done += 64 * per_call
    elapsed = time.perf_counter() - start
    cache.close()
    return samples.tobytes(), done, elapsed


def _percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


def measure(mode: str, seconds: float, processes: int) -> dict[str, Any]:
    with mp.get_context("fork").Pool(processes) as pool:
        results = pool.map(_worker, [(mode, seconds)] * processes)
    lat: list[int] = []
    ops_per_s = 0.0
    for raw, done, elapsed in results:
        a = array("q")
        a.frombytes(raw)
        lat += a.tolist()
        ops_per_s += done / elapsed
    lat.sort()
    return {"p50_ms": _percentile(lat, 0.5), "p95_ms": _percentile(lat, 0.95), "p99_ms": _percentile(lat, 0.99),
            "ops_per_s": ops_per_s}


CACHE_ROWS = [
    ("cache get, L1 hit", "l1-get"),
    ("cache get, L2 (one key per round trip)", "l2-get"),
    ("cache get, L2 pipelined x100 (latency per call)", "l2-get-pipelined"),
    ("cache set, L2 (one key per round trip)", "l2-set"),
    ("cache set, L2 + invalidation broadcast", "l2-set-broadcast"),
    ("cache set, L2 pipelined x100 (latency per call)", "l2-set-pipelined"),
]


def cache_rows(seconds: float, processes: int) -> list[dict[str, Any]]:
    floor_p95, floor_ops = FLOOR["cache"]
    rows = []
    for label, mode in CACHE_ROWS:
        rows.append({"operation": label, "floor_p95_ms": floor_p95, "floor_ops": floor_ops,
                     **measure(mode, seconds, processes)})
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    if keys:
        client.unlink(*keys)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ["operation", "p50 ms", "p95 ms", "p99 ms", "floor p95", "p95/floor", "ops/s", "floor ops/s",
            "ops/floor", "meets"]
    out = [head]
    for r in rows:
        p95_ratio = r["p95_ms"] / r["floor_p95_ms"]
        ops_ratio = r["ops_per_s"] / r["floor_ops"]
        meets = "yes" if p95_ratio <= 1 and ops_ratio >= 1 else (
            "latency only" if p95_ratio <= 1 else "throughput only" if ops_ratio >= 1 else "no")
        out.append([r["operation"], f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}", f"{r['p99_ms']:.3f}",
                    f"< {r['floor_p95_ms']:g}", f"{p95_ratio:.2f}", f"{r['ops_per_s']:,.0f}", f"{r['floor_ops']:,.0f}",
                    f"{ops_ratio:.2f}", meets])
    widths = [max(len(row[i]) for row in out) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in out]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    version = redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["redis_version"]
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python "
            f"{platform.python_version()}, Redis {version} on loopback, redis-py {redis.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_session", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per row and process (half timed, half counted)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", help="also append the table, dated, to this Markdown file")
    args = parser.parse_args()
    rows = cache_rows(args.seconds, args.processes)
    skipped = ""
    try:  # the session rows need a running operator: without one, the cache rows measured are still shown
        from bench.cache_session import sessions  # the TenantSessionPolicy part's rows

        rows += sessions.rows(args.seconds, args.processes)
    except (ImportError, RuntimeError) as exc:
        skipped = f"session rows skipped: {exc}\n\n"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"{when}, {machine()}; {args.processes} client processes, {args.seconds:g} s per row\n\n"
            f"{skipped}{table(rows)}\n")
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write(f"\n### Run of {when}\n\n{text}")


if __name__ == "__main__":
    main()
