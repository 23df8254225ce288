"""Autoscaling bench: replays demand traces against an emulated HPA under each floor policy and
prints the issue's table and targets (PASS/MISS with the number; nothing is massaged).

Why this exists: the forecasting core only earns its place if, on traces like real tenants', it
cuts under-provisioned minutes at little cost where demand is predictable, and does no harm where
it is not. ``--quick`` is the subset ``make test`` runs (under a minute; misses are printed, the exit code
is 0 unless ``--strict``); ``--results FILE`` also writes the report as Markdown; the full run is
``make bench``.

    python -m bench.autoscaling [--quick] [--traces a,b] [--delays 30,120]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/autoscaling/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "bench.autoscaling"

from .evaluate import POLICIES, Row, anomaly_bench, latency_and_refit, run_trace  # noqa: E402
from .traces import QUICK_TRACES, TRACE_NAMES, make_traces  # noqa: E402

WEEKS = 1.0  # the test span is days 14..21


def _fmt(v: float, nd: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(rows: list[Row]) -> None:
    hdr = (f"{'trace':<12} {'delay':>5} {'policy':<12} {'UPM':>7} {'unserved':>8} {'rep-h':>8} {'events':>6} "
           f"{'pinball':>8} {'MASE':>5} {'gate':>5} {'UPM/re':>6} {'RH/re':>6} {'ev/re':>6} {'gap':>6}")
    print(hdr)
    print("-" * len(hdr))
    by = {(r.trace, r.start_delay_s, r.policy): r for r in rows}
    for r in rows:
        re = by[(r.trace, r.start_delay_s, "reactive")]
        orc = by[(r.trace, r.start_delay_s, "oracle")]
        upm_ratio = r.upm / re.upm if re.upm > 0 else float("nan")
        gap_den = re.upm - orc.upm
        gap = (re.upm - r.upm) / gap_den if gap_den > 0 else float("nan")
        print(f"{r.trace:<12} {r.start_delay_s:>5} {r.policy:<12} {r.upm:>7.2f} {100 * r.unserved:>7.3f}% "
              f"{r.replica_hours:>8.0f} {r.scale_events:>6d} {_fmt(r.pinball, 2):>8} {_fmt(r.mase):>5} "
              f"{_fmt(r.gate_on):>5} {_fmt(upm_ratio):>6} {r.replica_hours / re.replica_hours:>6.3f} "
              f"{r.scale_events / max(re.scale_events, 1):>6.2f} {_fmt(gap):>6}")
        if r.policy == POLICIES[-1]:
            print()


def judge(rows: list[Row], perf: dict[str, float], anom: dict[str, float]) -> tuple[int, int]:
    by = {(r.trace, r.start_delay_s, r.policy): r for r in rows}
    keys = sorted({(r.trace, r.start_delay_s) for r in rows}, key=lambda k: (k[0], k[1]))
    passes = misses = 0

    def check(label: str, ok: bool, detail: str) -> None:
        nonlocal passes, misses
        passes += ok
        misses += not ok
        print(f"  {_mark(ok)}  {label:<58} {detail}")

    print("Targets")
    for tr, dl in keys:
        re, us, orc = by[(tr, dl, "reactive")], by[(tr, dl, "ours")], by[(tr, dl, "oracle")]
        hw, qg = by[(tr, dl, "holt_winters")], by[(tr, dl, "qgbm")]
        tag = f"{tr}/{dl}s"
        rh, ev = us.replica_hours / re.replica_hours, us.scale_events / max(re.scale_events, 1)
        if us.periodic and re.upm >= 5 * WEEKS:
            cut = 1 - us.upm / re.upm
            gap = (re.upm - us.upm) / (re.upm - orc.upm) if re.upm > orc.upm else float("nan")
            check(f"{tag} periodic: UPM cut >= 80% vs reactive", cut >= 0.8, f"{100 * cut:.0f}% ({us.upm:.2f} vs {re.upm:.2f})")
            check(f"{tag} periodic: reactive->oracle gap closed >= 80%", gap >= 0.8, f"{100 * gap:.0f}%")
            check(f"{tag} periodic: replica-hours <= +3%", rh <= 1.03, f"{100 * (rh - 1):+.1f}%")
            check(f"{tag} periodic: scale events <= 1.1x", ev <= 1.1, f"{ev:.2f}x ({us.scale_events} vs {re.scale_events})")
        elif us.periodic:
            print(f"  n/a   {tag} periodic but reactive UPM {re.upm:.2f} < 5/week: UPM targets do not apply")
            check(f"{tag} periodic (low UPM): replica-hours <= +3%", rh <= 1.03, f"{100 * (rh - 1):+.1f}%")
        else:
            lim = max(1.05 * re.upm, re.upm + 1.0 * WEEKS)
            check(f"{tag} non-periodic: UPM <= max(1.05x, +1 min/week)", us.upm <= lim + 1e-9, f"{us.upm:.2f} vs limit {lim:.2f}")
            check(f"{tag} non-periodic: replica-hours <= 1.05x", rh <= 1.05, f"{rh:.3f}x")
            check(f"{tag} non-periodic: scale events <= 1.25x", ev <= 1.25, f"{ev:.2f}x")
            check(f"{tag} non-periodic: gate off most of the time", us.gate_on < 0.5, f"on {100 * us.gate_on:.0f}% of the time")
        check(f"{tag} pinball@0.9 ours < Holt-Winters", us.pinball < hw.pinball, f"{us.pinball:.3g} vs {hw.pinball:.3g}")
        # Scaled in-sample (training fortnight): a test week more volatile than training lifts every
        # model's MASE, so persistence's own MASE on the same week is printed beside it.
        check(f"{tag} median-model MASE < 1", us.mase < 1,
              f"{us.mase:.3f} (persistence {re.mase:.2f} on the same week; ours/persistence {us.mase / re.mase:.2f})")
        best = min((hw, qg), key=lambda r: (r.upm, r.replica_hours))
        ok = us.upm <= best.upm + 1e-9 and us.replica_hours <= best.replica_hours + 1e-9
        detail = f"UPM {us.upm:.2f} vs {best.policy} {best.upm:.2f}; rep-h {us.replica_hours:.0f} vs {best.replica_hours:.0f}"
        if not ok and (us.upm < best.upm) != (us.replica_hours < best.replica_hours):
            detail += " (a trade, neither dominates)"
        if not us.periodic and best.replica_hours / re.replica_hours > 1.05:
            detail += f"; {best.policy} is over this trace's 1.05x rep-h cap"
        check(f"{tag} ours >= best of HW/qgbm (UPM, no more rep-h)", ok, detail)
    check("one forecast p99 <= 5 ms (features, GBM quantiles, HW step)", perf["forecast_p99_ms"] <= 5,
          f"{perf['forecast_p99_ms']:.2f} ms (p50 {perf['forecast_p50_ms']:.2f})")
    check("refit on 14 days of 1-min history <= 1 s (median)", perf["refit_total_s"] <= 1,
          f"{perf['refit_total_s']:.2f} s (gbm {perf['refit_gbm_s']:.2f}, hw {perf['refit_hw_s']:.2f}; "
          f"slowest of repeats {perf['refit_max_s']:.2f})")
    check("anomaly precision >= 0.9", anom["precision"] >= 0.9, f"{anom['precision']:.2f} ({anom['detections']:.0f} detections)")
    check("anomaly recall >= 0.9", anom["recall"] >= 0.9, f"{anom['recall']:.2f} ({anom['injected']:.0f} injected)")
    print(f"\nbench targets: {passes} met, {misses} missed")
    return passes, misses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.autoscaling", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="subset for make test (< 1 minute)")
    ap.add_argument("--traces", default="", help="comma-separated trace names (default: all, or the quick set)")
    ap.add_argument("--delays", default="", help="pod start delays in seconds (default 30,120; quick: 120)")
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
    body = (f"# Autoscaling bench results\n\n"
            f"- Date: {stamp}\n- Machine: {machine} (shared; load average at the end {load})\n"
            f"- Command: `python -m bench.autoscaling {' '.join(argv)}`\n\n"
            f"Columns: UPM = under-provisioned minutes in the test week; rep-h = replica-hours; "
            f"gate = share of test minutes the forecast may act; UPM/re, RH/re, ev/re = ratios to reactive; "
            f"gap = share of the reactive-to-oracle UPM gap closed.\n\n```\n{text.rstrip()}\n```\n")
    path.write_text(body)


def _run(args: argparse.Namespace) -> int:
    names = tuple(args.traces.split(",")) if args.traces else (QUICK_TRACES if args.quick else TRACE_NAMES)
    delays = [int(x) for x in args.delays.split(",")] if args.delays else ([120] if args.quick else [30, 120])
    refit = 2 if args.quick else 1
    t_start = time.perf_counter()
    print(f"autoscaling bench: traces={','.join(names)} delays={delays} refit every {refit} day(s); "
          f"train days 0-13, test days 14-20; cpus={os.cpu_count()}")
    rows: list[Row] = []
    for tr in make_traces(names):
        for dl in delays:
            t = time.perf_counter()
            r, _ = run_trace(tr, dl, refit_every_days=refit)
            rows += r
            print(f"  {tr.name} @{dl}s done in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    print()
    print_table(rows)
    perf = latency_and_refit()
    anom = anomaly_bench()
    print()
    passes, misses = judge(rows, perf, anom)
    print(f"bench took {time.perf_counter() - t_start:.0f} s")
    return 1 if (args.strict and misses) else 0


if __name__ == "__main__":
    raise SystemExit(main())
