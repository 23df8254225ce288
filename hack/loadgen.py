#!/usr/bin/env python3
"""Load generator: serves a request-rate metric that follows a demand trace, and writes the same
trace's history as OpenMetrics for promtool, so backfilled history and live scrapes are one series.

    loadgen.py serve    [--port 19091] --series NAME=SPEC [--series ...]
    loadgen.py backfill --days 14 [--step 60] [--end UNIX] --series NAME=SPEC [...] -o FILE.om
    loadgen.py show     --series NAME=SPEC [--from UNIX] [--minutes 10]

Prometheus (platform/up.sh) scrapes 127.0.0.1:19091 every 5 s. The metric is the gauge
`loadgen_request_rate{series="NAME"}`, requests per second the trace asks for at that moment (plus a
counter `loadgen_requests_total{series}` integrated from it while serving). A backfilled series has
no job/instance labels and a scraped one has them, so query it aggregated, for example
`max(loadgen_request_rate{series="web"})`: history and live samples then form one series.

Every trace is a pure function of Unix time (noise is a hash of the minute), so `backfill` and
`serve` agree sample for sample, and a value only changes at minute boundaries (1-minute history).

SPEC is KIND:key=value,... with KIND one of
  daily   base=100 amp=0.3 noise=0.03 seed=1 spike=0 spike_at=0 spike_len=120 ramp=30
          a diurnal sine (amplitude `amp` of `base`, maximum at 15:00 UTC) with multiplicative noise, and
          an optional scheduled daily spike: `spike` requests/s on top, from `spike_at` (seconds after
          midnight UTC) for `spike_len` seconds, with linear ramps of `ramp` seconds on each side.
  random  base=100 noise=0.25 burst=0.02 burst_x=3 seed=1
          no periodicity: log-normal noise around `base`, and in a `burst` share of minutes (chosen by
          hash) demand multiplies by `burst_x`.
  walk    base=100 sigma=0.02 phi=0.999 origin=UNIX seed=1
          no periodicity and no mean to return to within hours: log-demand is an AR(1) random walk
          (per-minute step `sigma`, persistence `phi`) started at `origin`; persistence is about the
          best forecast there is.
  flat    base=100 noise=0.0 seed=1
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DAY = 86400
MASK = (1 << 64) - 1


def _hash_uniform(seed: int, minute: int, salt: int = 0) -> float:
    """splitmix64 of (seed, minute, salt) -> uniform in (0, 1): deterministic noise per minute."""
    z = (seed * 0x9E3779B97F4A7C15 + minute * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return ((z >> 11) + 0.5) / float(1 << 53)


def _gauss(seed: int, minute: int) -> float:
    u1, u2 = _hash_uniform(seed, minute, 1), _hash_uniform(seed, minute, 2)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@dataclass
class Trace:
    kind: str
    params: dict[str, float] = field(default_factory=dict)
    memo: tuple[int, float] | None = None

    def p(self, key: str, default: float) -> float:
        return float(self.params.get(key, default))

    def _walk(self, minute: int, seed: int) -> float:
        """log-demand of an AR(1) random walk started at ``origin`` (memoised, so a scrape or an
        ascending backfill costs one step per new minute)."""
        origin = int(self.p("origin", 0.0) // 60)
        phi, sigma = self.p("phi", 0.999), self.p("sigma", 0.02)
        m, v = self.memo if self.memo and self.memo[0] <= minute else (origin, 0.0)
        while m < minute:
            m += 1
            v = phi * v + sigma * _gauss(seed, m)
        self.memo = (m, v)
        return v

    def rate(self, t: float) -> float:
        """Requests per second at Unix time ``t`` (constant within each minute)."""
        minute = int(t // 60)
        tm = minute * 60.0  # the value holds for the whole minute
        seed = int(self.p("seed", 1))
        base = self.p("base", 100.0)
        if self.kind == "flat":
            return max(0.0, base * (1.0 + self.p("noise", 0.0) * _gauss(seed, minute)))
        if self.kind == "random":
            v = base * math.exp(self.p("noise", 0.25) * _gauss(seed, minute))
            if _hash_uniform(seed, minute, 3) < self.p("burst", 0.02):
                v *= self.p("burst_x", 3.0)
            return v
        if self.kind == "walk":
            return base * math.exp(self._walk(minute, seed))
        if self.kind == "daily":
            tod = tm % DAY
            diurnal = 1.0 + self.p("amp", 0.3) * math.cos(2.0 * math.pi * (tod - 15 * 3600) / DAY)
            v = base * diurnal * (1.0 + self.p("noise", 0.03) * _gauss(seed, minute))
            spike = self.p("spike", 0.0)
            if spike:
                start, length, ramp = self.p("spike_at", 0.0), self.p("spike_len", 120.0), self.p("ramp", 30.0)
                # distance into the spike's day-periodic schedule, wrapped to [-DAY/2, DAY/2)
                d = (tod - start + DAY / 2) % DAY - DAY / 2
                if -ramp < d < length + ramp:
                    if d < 0:
                        frac = (d + ramp) / ramp
                    elif d > length:
                        frac = (length + ramp - d) / ramp
                    else:
                        frac = 1.0
                    v += spike * max(0.0, min(1.0, frac))
            return max(0.0, v)
        raise ValueError(f"unknown trace kind {self.kind!r}")


def parse_series(text: str) -> tuple[str, Trace]:
    """NAME=KIND:key=value,key=value"""
    name, _, spec = text.partition("=")
    if not name or not spec:
        raise argparse.ArgumentTypeError(f"--series wants NAME=KIND:k=v,...; got {text!r}")
    kind, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        params[k.strip()] = float(v)
    trace = Trace(kind.strip(), params)
    trace.rate(0.0)  # validates the kind
    return name, trace


def _labels(name: str) -> str:
    return '{series="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"}'


def write_openmetrics(out, series: list[tuple[str, Trace]], start: float, end: float, step: float) -> int:
    """History at every multiple of ``step`` in [start, end), one family, series after series."""
    first = math.ceil(start / step) * step
    n = 0
    out.write("# HELP loadgen_request_rate Requests per second the load generator's trace asks for.\n")
    out.write("# TYPE loadgen_request_rate gauge\n")
    for name, tr in series:
        lab = _labels(name)
        t = first
        lines = []
        while t < end:
            lines.append(f"loadgen_request_rate{lab} {tr.rate(t):.6g} {int(t)}\n")
            t += step
        out.writelines(lines)
        n += len(lines)
    out.write("# EOF\n")
    return n


class _State:
    def __init__(self, series: list[tuple[str, Trace]]) -> None:
        self.series = series
        self.lock = threading.Lock()
        self.totals = {name: 0.0 for name, _ in series}
        self.last = time.time()

    def exposition(self) -> bytes:
        now = time.time()
        with self.lock:
            dt, self.last = now - self.last, now
            lines = ["# HELP loadgen_request_rate Requests per second the load generator's trace asks for.",
                     "# TYPE loadgen_request_rate gauge"]
            lines += [f"loadgen_request_rate{_labels(n)} {tr.rate(now):.6g}" for n, tr in self.series]
            lines += ["# HELP loadgen_requests_total Requests the trace asked for since the generator started.",
                      "# TYPE loadgen_requests_total counter"]
            for n, tr in self.series:
                self.totals[n] += tr.rate(now) * dt
                lines.append(f"loadgen_requests_total{_labels(n)} {self.totals[n]:.6g}")
        return ("\n".join(lines) + "\n").encode()


def serve(port: int, series: list[tuple[str, Trace]]) -> None:
    state = _State(series)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = state.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"loadgen: serving {len(series)} series on http://127.0.0.1:{port}/metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=19091)
    b = sub.add_parser("backfill")
    b.add_argument("--days", type=float, default=14.0)
    b.add_argument("--step", type=float, default=60.0)
    b.add_argument("--end", type=float, default=None, help="Unix time the history ends at (default now)")
    b.add_argument("-o", "--output", default="-")
    w = sub.add_parser("show")
    w.add_argument("--from", dest="start", type=float, default=None)
    w.add_argument("--minutes", type=int, default=10)
    for p in (s, b, w):
        p.add_argument("--series", action="append", type=parse_series, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.port, args.series)
    elif args.cmd == "backfill":
        end = args.end if args.end is not None else time.time()
        out = sys.stdout if args.output == "-" else open(args.output, "w")
        with out:
            n = write_openmetrics(out, args.series, end - args.days * DAY, end, args.step)
        print(f"loadgen: {n} samples of {len(args.series)} series", file=sys.stderr)
    else:
        start = args.start if args.start is not None else time.time()
        for k in range(args.minutes):
            t = start + 60 * k
            print(time.strftime("%H:%M:%S", time.gmtime(t)), *(f"{n}={tr.rate(t):.1f}" for n, tr in args.series))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
