"""Per-run lines and per-family verdicts of the autoscaling bench.

Why this exists: the issue's targets are judged per trace *family*, as the median over seeds, with
the worst seed printed beside it, so one lucky instance cannot carry a family and one bad instance
is still visible. Every line prints the target beside the measurement.

"The better of Holt-Winters and a plain quantile GBM" is judged as the issue words it: the one with
fewer under-provisioned minutes, whatever its replica-hours. On bursts that is Holt-Winters, which pays
1.04-1.36x replica-hours for them; the better of the baselines that keep the family's own replica-hour
limit (periodic 1.03x, aperiodic 1.05x of reactive's) is printed beside it as `info`. Both can hold at
once (the oracle does: 0-3 minutes at 1.03-1.07x on bursts); a forecaster that cannot see the bursts
coming does not reach them, and the bench says so as a miss.

The median model's diagnostic is its MAE over persistence's on the same test week: below 1 it beats
the naive forecast on the load it forecast. The classic MASE (printed beside it) divides by the naive
forecast's MAE on the training fortnight instead, and where the load grows or gets noisier after
training (a random walk wandering up, a lasting level shift) persistence itself scores 1.2-2.8 on it,
so a MASE limit of 1 could not tell a model from the naive forecast there.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from .evaluate import Row

__all__ = ["RH_LIMIT", "RunRatios", "comparator", "run_ratios", "print_runs", "judge", "summarise"]

WEEKS = 1.0  # the test span is days 14..21


@dataclass(frozen=True)
class RunRatios:
    """One (family, seed, delay) run's target ratios; NaN where a target does not apply."""

    family: str
    seed: int
    delay: int
    periodic: bool
    reactive_upm: float
    cut: float  # 1 - UPM / reactive UPM (periodic, reactive UPM >= 5)
    gap: float  # share of the reactive-to-oracle gap closed (same)
    rh: float  # replica-hours / reactive
    ev: float  # scale events / reactive
    upm_over_best: float  # ours' UPM minus the better of Holt-Winters and qgbm
    rh_over_best: float  # ours' replica-hours / that model's - 1
    upm_over_limit: float  # aperiodic: UPM minus max(1.05x reactive, reactive + 1 min/week)
    gate_on: float
    pinball_vs_hw: float
    mase: float  # the median's MAE over the naive forecast's in-sample MAE (the training fortnight)
    mae_vs_naive: float  # the median's MAE over persistence's, both on the test week
    best: str = ""  # which of holt_winters and qgbm had fewer UPM (then fewer replica-hours)
    best_rh: float = float("nan")  # that model's replica-hours / reactive
    upm_over_within: float = float("nan")  # minus the better of those within the family's RH limit
    within_best: str = ""


def comparator(reactive: Row, baselines: tuple[Row, ...], periodic: bool) -> Row:
    """The `info` comparison: fewest UPM (then fewest replica-hours) among the baselines within the
    family's replica-hour limit; among all of them when none is. The target itself takes the better
    of all baselines (`run_ratios`)."""
    within = [b for b in baselines if b.replica_hours <= RH_LIMIT[periodic] * reactive.replica_hours + 1e-9]
    return min(within or baselines, key=lambda r: (r.upm, r.replica_hours))


def _split(trace: str) -> tuple[str, int]:
    fam, _, seed = trace.partition("#")
    return fam, int(seed or 0)


def run_ratios(rows: list[Row]) -> list[RunRatios]:
    by = {(r.trace, r.start_delay_s, r.policy): r for r in rows}
    out = []
    for tr, dl in sorted({(r.trace, r.start_delay_s) for r in rows}):
        re, us, orc = by[(tr, dl, "reactive")], by[(tr, dl, "ours")], by[(tr, dl, "oracle")]
        hw, qg = by[(tr, dl, "holt_winters")], by[(tr, dl, "qgbm")]
        best = min((hw, qg), key=lambda r: (r.upm, r.replica_hours))
        within = comparator(re, (hw, qg), us.periodic)
        big = us.periodic and re.upm >= 5 * WEEKS
        nan = float("nan")
        fam, seed = _split(tr)
        out.append(RunRatios(
            fam, seed, dl, us.periodic, re.upm,
            cut=1 - us.upm / re.upm if big else nan,
            gap=(re.upm - us.upm) / (re.upm - orc.upm) if big and re.upm > orc.upm else nan,
            rh=us.replica_hours / re.replica_hours,
            ev=us.scale_events / max(re.scale_events, 1),
            upm_over_best=us.upm - best.upm,
            rh_over_best=us.replica_hours / best.replica_hours - 1,
            upm_over_limit=nan if us.periodic else us.upm - max(1.05 * re.upm, re.upm + 1.0 * WEEKS),
            gate_on=us.gate_on, pinball_vs_hw=us.pinball / hw.pinball, mase=us.mase,
            # one scale for both: the ratio of the two MAEs on the test week
            mae_vs_naive=us.mase / re.mase if re.mase > 0 else nan,
            best=best.policy, best_rh=best.replica_hours / re.replica_hours,
            upm_over_within=us.upm - within.upm, within_best=within.policy,
        ))
    return out


def print_runs(rows: list[Row]) -> None:
    """One line per run: each policy's UPM, and ours' cost ratios."""
    by = {(r.trace, r.start_delay_s, r.policy): r for r in rows}
    hdr = (f"{'run':<20} {'delay':>5} {'UPM re':>7} {'hw':>6} {'qgbm':>6} {'ours':>6} {'oracle':>6} "
           f"{'RH':>6} {'RH hw':>6} {'RH qg':>6} {'ev':>5} {'gate':>5}")
    print(hdr)
    print("-" * len(hdr))
    for tr, dl in sorted({(r.trace, r.start_delay_s) for r in rows}, key=lambda k: (_split(k[0]), k[1])):
        p = {k: by[(tr, dl, k)] for k in ("reactive", "holt_winters", "qgbm", "ours", "oracle")}
        re = p["reactive"]
        print(f"{tr:<20} {dl:>5} {re.upm:>7.2f} {p['holt_winters'].upm:>6.2f} {p['qgbm'].upm:>6.2f} "
              f"{p['ours'].upm:>6.2f} {p['oracle'].upm:>6.2f} "
              + " ".join(f"{p[k].replica_hours / re.replica_hours:>6.3f}" for k in ("ours", "holt_winters", "qgbm"))
              + f" {p['ours'].scale_events / max(re.scale_events, 1):>5.2f} {p['ours'].gate_on:>5.2f}")


# (attribute, label, limit, higher_is_better, format, applies to: "periodic" | "aperiodic" | "all")
TARGETS = (
    ("cut", "UPM cut vs reactive (reactive >= 5/week)", 0.80, True, "{:.0%}", "periodic"),
    ("gap", "reactive-to-oracle gap closed", 0.80, True, "{:.0%}", "periodic"),
    ("rh", "replica-hours / reactive", 1.03, False, "{:.3f}", "periodic"),
    ("ev", "scale events / reactive", 1.10, False, "{:.2f}", "periodic"),
    ("upm_over_limit", "UPM - max(1.05x, +1/week) of reactive", 0.0, False, "{:+.2f}", "aperiodic"),
    ("rh", "replica-hours / reactive", 1.05, False, "{:.3f}", "aperiodic"),
    ("ev", "scale events / reactive", 1.25, False, "{:.2f}", "aperiodic"),
    ("gate_on", "gate open share", 0.5, False, "{:.0%}", "aperiodic"),
    ("upm_over_best", "UPM - better of HW/qgbm (minutes)", 0.0, False, "{:+.2f}", "all"),
    ("rh_over_best", "replica-hours vs that model", 0.01, False, "{:+.1%}", "all"),
    ("pinball_vs_hw", "pinball@0.9 / Holt-Winters' (diagnostic)", 1.0, False, "{:.2f}", "all"),
    ("mae_vs_naive", "median MAE / persistence's (diagnostic)", 1.0, False, "{:.2f}", "all"),
)


RH_LIMIT = {scope == "periodic": limit for attr, _, limit, _, _, scope in TARGETS if attr == "rh"}
"""Replica-hours over reactive's each family kind may spend (True: periodic), from TARGETS."""


def summarise(values: list[float], higher_is_better: bool) -> tuple[float, float, int]:
    """(median, worst, n) over the finite values; NaNs (target not applicable) are left out."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return float("nan"), float("nan"), 0
    return statistics.median(v), (min(v) if higher_is_better else max(v)), len(v)


def _ok(v: float, limit: float, higher: bool) -> bool:
    return v >= limit - 1e-12 if higher else v <= limit + 1e-12


def judge(rows: list[Row], perf: dict | None, anom: list[dict] | None) -> tuple[int, int]:
    ratios = run_ratios(rows)
    groups: dict[tuple[str, int], list[RunRatios]] = defaultdict(list)
    for r in ratios:
        groups[(r.family, r.delay)].append(r)
    passes = misses = 0

    def check(label: str, ok: bool, detail: str) -> None:
        nonlocal passes, misses
        passes += ok
        misses += not ok
        print(f"  {'PASS' if ok else 'MISS'}  {label:<62} {detail}")

    print("Targets per family (median over seeds; worst seed beside it)")
    for (fam, dl), rs in groups.items():
        periodic = rs[0].periodic
        for attr, label, limit, higher, fmt, scope in TARGETS:
            if scope != "all" and (scope == "periodic") != periodic:
                continue
            vals = [getattr(r, attr) for r in rs]
            med, worst, n = summarise(vals, higher)
            tag = f"{fam}/{dl}s {label}"
            if n == 0:
                print(f"  n/a   {tag:<62} (reactive leaves < 5 UPM on every seed)")
                continue
            worst_seed = next(r.seed for r in rs if getattr(r, attr) == worst)
            target = f"{'>=' if higher else '<='} {fmt.format(limit)}"
            detail = f"median {fmt.format(med)} (target {target}); worst {fmt.format(worst)} seed {worst_seed}; n={n}"
            if attr == "upm_over_best":  # what the comparator paid for its minutes
                names = sorted({r.best for r in rs})
                rh = [r.best_rh for r in rs]
                detail += f"; that model ({'/'.join(names)}) pays RH/reactive median {statistics.median(rh):.3f}, max {max(rh):.3f}"
            if attr == "mae_vs_naive":  # the classic MASE, whose scale is the training fortnight's
                mase_med, mase_worst, _ = summarise([r.mase for r in rs], False)
                detail += f"; MASE median {mase_med:.2f}, worst {mase_worst:.2f}"
            check(tag, _ok(med, limit, higher), detail)
            if attr == "upm_over_best" and any(r.upm_over_within != r.upm_over_best for r in rs):
                w_med, w_worst, _ = summarise([r.upm_over_within for r in rs], False)
                print(f"  info  {fam}/{dl}s vs the better baseline within the family's RH limit: UPM median "
                      f"{w_med:+.2f}, worst {w_worst:+.2f} ({'/'.join(sorted({r.within_best for r in rs}))})")
    if perf is not None:
        check("one forecast p99 <= 5 ms (features, GBM quantiles, HW step)", perf["forecast_p99_ms"] <= 5,
              f"{perf['forecast_p99_ms']:.2f} ms (p50 {perf['forecast_p50_ms']:.2f}; target <= 5 ms)")
        check("refit on 14 days of 1-min history <= 1 s (median)", perf["refit_total_s"] <= 1,
              f"{perf['refit_total_s']:.2f} s (gbm {perf['refit_gbm_s']:.2f}, hw {perf['refit_hw_s']:.2f}; slowest "
              f"{perf['refit_max_s']:.2f}; target <= 1 s)")
        if "fit_rule_s" in perf:
            print(f"  info  a rule's model refit (rolling-origin backtests + final fits, once a day), 14 days: "
                  f"{perf['fit_rule_s']:.2f} s; its hourly re-score: {perf.get('rescore_s', float('nan')):.2f} s")
    if anom:
        for key in ("precision", "recall"):
            med, worst, n = summarise([a[key] for a in anom], True)
            check(f"anomaly {key} >= 0.9 over seeds", med >= 0.9,
                  f"median {med:.2f}, worst {worst:.2f}, n={n} (target >= 0.9)")
    print(f"\nbench targets: {passes} met, {misses} missed")
    return passes, misses
