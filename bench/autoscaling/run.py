"""Autoscaling bench: replays trace families (several seeded instances each) against an emulated HPA
under each floor policy, and prints per family the median and the worst seed of every target ratio
beside its target (PASS/MISS judged on the median; nothing is massaged).

Why this exists: the forecasting core only earns its place if, on load like real tenants' and not
only on the series it was shaped on, it cuts under-provisioned minutes at little cost where demand
is predictable, and does no harm where it is not. Families and seeds are in families.py: tune on
``--seeds dev``, report on the default report seeds. ``--quick`` is the subset ``make test`` runs (one
development seed, so that every test run does not show a report seed; three families, 120 s; misses
are printed, the exit code is 0 unless ``--strict``);
``--results FILE`` also writes the report as Markdown; the full run is ``make bench``.

    python -m bench.autoscaling [--quick] [--families a,b] [--seeds report|dev|1,2] [--delays 30,120] [--jobs N]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/autoscaling/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "bench.autoscaling"

from .evaluate import Row, anomaly_bench, latency_and_refit, run_trace  # noqa: E402
from .families import DEV_SEEDS, FAMILY_NAMES, QUICK_FAMILIES, REPORT_SEEDS, make_trace  # noqa: E402
from .judge import judge, print_runs  # noqa: E402


def _one(job: tuple[str, int, int, int]) -> tuple[list[Row], float]:
    fam, seed, delay, refit = job
    t = time.perf_counter()
    rows, _ = run_trace(make_trace(fam, seed), delay, refit_every_days=refit)
    return rows, time.perf_counter() - t


def _seeds(arg: str, quick: bool) -> tuple[int, ...]:
    if arg == "" and quick:
        return DEV_SEEDS[:1]
    if arg in ("", "report"):
        return REPORT_SEEDS[:1] if quick else REPORT_SEEDS
    if arg == "dev":
        return DEV_SEEDS[:1] if quick else DEV_SEEDS
    return tuple(int(x) for x in arg.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.autoscaling", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="subset for make test: one seed, three families, 120 s")
    ap.add_argument("--families", "--traces", dest="families", default="", help="comma-separated family names")
    ap.add_argument("--seeds", default="", help="'report' (default), 'dev' (for tuning) or comma-separated seeds")
    ap.add_argument("--delays", default="", help="pod start delays in seconds (default 30,120; quick: 120)")
    ap.add_argument("--refit", type=int, default=0, help="refit the models every N days (default 1, as the operator; the rule is re-scored every 3 hours between)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (the machine is shared: keep 1-2)")
    ap.add_argument("--no-side", action="store_true", help="skip the latency, refit and anomaly benches")
    ap.add_argument("--rows-out", default="", help="append every run's rows to this JSON-lines file as it finishes")
    ap.add_argument("--resume", action="store_true", help="take runs already in --rows-out from there, run the rest")
    ap.add_argument("--from-rows", default="", help="judge the rows saved in this JSON-lines file (no runs)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    ap.add_argument("--results", default="", help="also write the report as Markdown to this file")
    args = ap.parse_args(argv)
    if args.results:
        tee = _Tee(sys.stdout)
        old, sys.stdout = sys.stdout, tee
        try:
            rc = _run(args)
        finally:
            sys.stdout = old
        _write_results(Path(args.results), tee.getvalue(), argv if argv is not None else sys.argv[1:])
        return rc
    return _run(args)


class _Tee(io.StringIO):
    def __init__(self, out) -> None:
        super().__init__()
        self._out = out

    def write(self, s: str) -> int:
        self._out.write(s)
        return super().write(s)


def _write_results(path: Path, text: str, argv: list[str]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    notes = ""
    old = path.read_text() if path.exists() else ""
    if "<!-- notes -->" in old:  # hand-written notes (misses and what would close them) survive a rerun
        notes = old[old.index("<!-- notes -->"):]
    body = (f"# Autoscaling bench results\n\n"
            f"- Date: {stamp}\n- Machine: {machine} (shared; load average at the end {load})\n"
            f"- Command: `python -m bench.autoscaling {' '.join(argv)}`\n"
            f"- Seeds: development (tuning only, never reported) {list(DEV_SEEDS)}; reported {list(REPORT_SEEDS)}\n\n"
            f"Per run: UPM = under-provisioned minutes in the test week (reactive / holt_winters / qgbm / ours / "
            f"oracle); RH = ours' replica-hours over reactive's; ev = ours' scale events over reactive's; gate = share "
            f"of test minutes ours may act. Per family: the median over seeds and the worst seed of each "
            f"target ratio, judged on the median.\n\n```\n{text.rstrip()}\n```\n\n{notes}")
    path.write_text(body)


def _run(args: argparse.Namespace) -> int:
    fams = tuple(args.families.split(",")) if args.families else (QUICK_FAMILIES if args.quick else FAMILY_NAMES)
    seeds = _seeds(args.seeds, args.quick)
    delays = [int(x) for x in args.delays.split(",")] if args.delays else ([120] if args.quick else [30, 120])
    refit = args.refit or 1
    t_start = time.perf_counter()
    print(f"autoscaling bench: families={','.join(fams)} seeds={list(seeds)} delays={delays} models refit every {refit} "
          f"day(s), re-scored every 3 h; train days 0-13, test days 14-20; cpus={os.cpu_count()}")
    # Seed-major order: a run cut short still has every family over its first seeds.
    jobs = [(f, s, d, refit) for s in seeds for f in fams for d in delays]
    rows: list[Row] = []
    if args.resume and not args.rows_out:
        raise SystemExit("--resume needs --rows-out")
    saved = open(args.rows_out, "a") if args.rows_out else None  # noqa: SIM115

    def done(job, r: list[Row], secs: float) -> None:
        rows.extend(r)
        print(f"  {job[0]}#{job[1]} @{job[2]}s done in {secs:.1f}s", file=sys.stderr)
        if saved:
            saved.writelines(json.dumps(dataclasses.asdict(x)) + "\n" for x in r)
            saved.flush()

    if args.resume and args.rows_out and Path(args.rows_out).exists():
        wanted = {(f"{f}#{s}", d) for f, s, d, _ in jobs}
        with open(args.rows_out) as fh:
            old = [Row(**json.loads(line)) for line in fh if line.strip()]
        rows = [r for r in old if (r.trace, r.start_delay_s) in wanted]
        have = {(r.trace, r.start_delay_s) for r in rows}
        jobs = [j for j in jobs if (f"{j[0]}#{j[1]}", j[2]) not in have]
        print(f"  resumed {len(have)} runs from {args.rows_out}", file=sys.stderr)
    if not args.from_rows:
        # The first trace of each family still to run is built before any run (well under a second for
        # all): an unknown name or a missing dataset (taylor_real reads the pmdarima wheel's) stops the
        # bench at once, not when a worker reaches that family after the others' minutes of runs.
        first_seed: dict[str, int] = {}
        for fam, seed, _, _ in jobs:
            first_seed.setdefault(fam, seed)
        for fam, seed in first_seed.items():
            try:
                make_trace(fam, seed)
            except (ValueError, RuntimeError) as exc:
                raise SystemExit(f"autoscaling bench: {exc}") from exc
    if args.from_rows:
        wanted = {(f"{f}#{s}", d) for f, s, d, _ in jobs}
        with open(args.from_rows) as fh:
            rows = [r for r in (Row(**json.loads(line)) for line in fh if line.strip())
                    if (r.trace, r.start_delay_s) in wanted]
    elif args.jobs > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(args.jobs) as pool:
            for job, (r, secs) in zip(jobs, pool.imap(_one, jobs), strict=True):
                done(job, r, secs)
    else:
        for job in jobs:
            done(job, *_one(job))
    if saved:
        saved.close()
    print()
    print_runs(rows)
    if args.no_side:
        perf = anom = None
    else:
        perf = latency_and_refit(seed=seeds[0])
        anom = [anomaly_bench(s) for s in seeds]
    print()
    _, misses = judge(rows, perf, anom)
    print(f"bench took {time.perf_counter() - t_start:.0f} s")
    return 1 if (args.strict and misses) else 0


if __name__ == "__main__":
    raise SystemExit(main())
