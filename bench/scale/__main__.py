"""`make bench-scale`: N tenants with PostgreSQL, Redis and OpenBao applied at once; time, requests, memory.

    python -m bench.scale [--sizes 1,10,100,500,1000] [--idle-seconds 300] [--verify-interval 30]
                          [--one-trials 5] [--profile-largest] [--results bench/scale/RESULTS.md [--no-plot]]

Needs the local platform (`make up`; `source .platform/env`) with nothing else acting on Tenants: the
bench starts its own operator process (as the e2e runs do, e2e/kube.py), a fresh one per size so RSS
and CPU belong to that size. Per size it prints apply-to-Ready p50/p95/max from a watch, the batch's
wall time, the operator's API requests and backend calls per tenant, RSS and CPU seconds, writes in
an idle window, and the cost of one verify pass; then slopes against N, the targets beside the
numbers, and appends them to RESULTS.md and draws scale.png beside it. N=1 is applied `--one-trials`
times (one after another) so its p50/p95 have more than one sample.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from e2e import kube, writes

from . import measure, profiling, report, setup
from .run import FIELDS, run_size

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500,1000")
    parser.add_argument("--idle-seconds", type=float, default=300.0, help="the idle window per size (the issue's 5 minutes)")
    parser.add_argument("--verify-interval", type=float, default=30.0)
    parser.add_argument("--scrape-interval", type=float, default=None,
                        help="seconds between the bench's scrapes of /metrics (default: the chart's ServiceMonitor interval)")
    parser.add_argument("--one-trials", type=int, default=5)
    parser.add_argument("--profile-largest", action="store_true", help="py-spy on the largest size's batch")
    parser.add_argument("--results", type=Path, help="append the run to this RESULTS.md and draw the plot beside it")
    parser.add_argument("--no-plot", action="store_true", help="with --results: append only, keep the plot (a partial run)")
    args = parser.parse_args()
    # SIGTERM (`timeout`, a closed terminal) ends the run through its `finally` blocks, which delete the
    # batch's Tenants and stop the operator; killed without them, N tenants stayed behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.environ.update(kube.load_platform_env())
    setup.crds()
    setup.backends(capacity=max(sizes) + 100)
    kubeconfig = setup.operator_kubeconfig()
    run = secrets.token_hex(2)
    rows = []
    started = time.monotonic()
    # The idle window begins once PostgreSQL has published its counters and the Backends' probe timer
    # (every verify interval / 2) has written their new tenant counts: neither is steady-state traffic.
    settle = max(writes.PG_FLUSH_SECONDS, args.verify_interval / 2 + 2)
    scrape = args.scrape_interval if args.scrape_interval is not None else setup.scrape_interval()
    profiles: dict[int, str] = {}
    for n in sizes:
        print(f"N={n}: starting a fresh operator")
        op = setup.operator(kubeconfig, args.verify_interval)
        op.start()
        try:
            with measure.Scraper(op.metrics_port, scrape) as scraper:
                setup.wait_backends_ready()
                profile = HERE / "profiles" / f"n{n}.collapsed" if args.profile_largest and n == max(sizes) else None
                row = run_size(n, op, args.idle_seconds, run, profile=profile, settle=settle)
                if n == 1 and args.one_trials > 1:
                    for trial in range(1, args.one_trials):
                        extra = run_size(1, op, 0, f"{run}t{trial}", log=lambda *_: None, settle=0.5)
                        row["times"] += extra["times"]
                    row["trials"] = len(row["times"])
                    times = row["times"]
                    row |= {"p50": _pct(times, 50), "p95": _pct(times, 95), "max": max(times)}
            if scraper.failures:
                print(f"  N={n}: {scraper.failures} of {scraper.scrapes + scraper.failures} scrapes of /metrics failed")
        finally:
            op.stop()
        rows.append(row)
        print(" ".join(f"{FIELDS[k][0]}={FIELDS[k][1].format(row[k])}" for k in FIELDS if k in row))
        if profile and profile.exists():
            profiles[n] = profiling.summary(profile)
            print(profiles[n])
    settings = (f"Sizes run: {', '.join(map(str, sizes))}; each tenant with PostgreSQL, Redis and OpenBao "
                f"(reclaim Delete); verify interval {args.verify_interval:g} s (jitter from the chart); idle "
                f"window {args.idle_seconds:g} s per size, beginning {settle:g} s after the last Ready; one "
                f"operator process per size (the chart's settings, standalone), its /metrics scraped every {scrape:g} s by the bench (the chart's ServiceMonitor interval; the platform's Prometheus does not scrape it); N=1 over {rows[0].get('trials', 1) if sizes[0] == 1 else 0} single applies. "
                f"Whole bench {time.monotonic() - started:.0f} s.")
    text = report.render(rows, settings, profiles)
    print("\n" + text)
    if args.results:
        report.append_results(args.results, text)
        if args.no_plot:
            print(f"appended to {args.results}; plot left as it was")
        else:
            report.plot(rows, args.results.parent / "scale.png")
            print(f"appended to {args.results}; plot {args.results.parent / 'scale.png'}")


def _pct(values: list[float], q: float) -> float:
    from .measure import percentile

    return percentile(values, q)


if __name__ == "__main__":
    main()
