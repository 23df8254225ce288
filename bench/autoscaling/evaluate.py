"""Runs every policy of one trace through the emulated HPA, and the side benches (latency, refit,
anomalies).

Why this exists: it turns forecasts into the numbers the issue asks for, per policy, trace and pod
start delay, so that run.py only has to print and judge them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tenancy_operator.forecasting import (
    AnomalyConfig,
    FeatureConfig,
    FloorInput,
    HoltWinters,
    QuantileGBM,
    consensus_scores,
    decide_floor,
    mase,
    persistence_peak,
    pinball_loss,
    relative_residuals,
    scaled_residuals,
    target_peaks,
)
from tenancy_operator.reconcile.rule_forecast import fit_rule

from .families import REPORT_SEEDS, make_trace
from .hpa import HPAConfig, simulate
from .policies import PolicyForecasts, build_forecasts
from .traces import MINUTES_PER_DAY, Trace

__all__ = ["Row", "POLICIES", "run_trace", "latency_and_refit", "anomaly_bench"]

POLICIES = ("reactive", "holt_winters", "qgbm", "ours", "oracle")  # linear trend: no target uses it, each simulation costs seconds


@dataclass(frozen=True)
class Row:
    trace: str
    periodic: bool
    start_delay_s: int
    policy: str
    upm: float
    unserved: float
    replica_hours: float
    scale_events: int
    pinball: float
    mase: float
    gate_on: float


def _floor_policy(pf: PolicyForecasts, name: str, hcfg: HPAConfig):
    sl = pf.test_slice()
    med = pf.median[name][sl].tolist()
    up = pf.upper[name][sl].tolist()
    act = pf.active[name][sl].tolist()
    peak_end = pf.peak_end_s[sl].tolist()
    rec = pf.persistence[sl].tolist()
    state: dict = {"lift": None, "until": None}

    def policy(minute: int, replicas: int) -> int:
        now = 60.0 * minute
        d = decide_floor(FloorInput(
            med[minute], up[minute], hcfg.capacity_per_replica, hcfg.target_utilisation, replicas,
            hcfg.tolerance, hcfg.min_replicas, hcfg.max_replicas, now, now + peak_end[minute],
            current_lift=state["lift"], lift_until_s=state["until"], gate_active=act[minute],
            recent_demand=rec[minute],
        ))
        state["lift"], state["until"] = d.lift, d.lift_until_s
        return d.floor

    return policy


def run_trace(trace: Trace, start_delay_s: int, refit_every_days: int = 1, quantile: float = 0.9,
              window: int = 5) -> tuple[list[Row], PolicyForecasts]:
    hcfg = HPAConfig(start_delay_s=start_delay_s, capacity_per_replica=trace.capacity_per_replica)
    pf = build_forecasts(trace, start_delay_s, hcfg.metric_delay_s, window=window, quantile=quantile,
                         tolerance=hcfg.tolerance, refit_every_days=refit_every_days)
    demand = trace.y[pf.test_start :]
    warm = float(trace.y[pf.test_start - 1])
    sl = pf.test_slice()
    actual = pf.actual[sl]
    rows = []
    for name in POLICIES:
        pol = None if name == "reactive" else _floor_policy(pf, name, hcfg)
        r = simulate(demand, hcfg, pol, warm_demand=warm)
        key = "persistence" if name == "reactive" else name
        med = pf.persistence[sl] if key == "persistence" else pf.median[key][sl]
        up = pf.persistence[sl] if key == "persistence" else pf.upper[key][sl]
        gate = float(pf.active[name][sl].mean()) if name in pf.active else float("nan")
        rows.append(Row(trace.name, trace.periodic, start_delay_s, name, r.upm, r.unserved_share,
                        r.replica_hours, r.scale_events, pinball_loss(actual, up, quantile),
                        mase(actual, med, pf.mase_scale), gate))
    return rows, pf


def latency_and_refit(n_single: int = 1000, n_refit: int = 3, seed: int = REPORT_SEEDS[0]) -> dict[str, float]:
    """p99 of one forecast (features, both quantiles of the GBM and the incremental Holt-Winters
    step: everything "ours" computes per decision) over ``n_single`` consecutive minutes, the
    median over ``n_refit`` repeats of a refit of both models on 14 days of 1-minute history, and the
    median of a rule's whole refit as the operator runs it once a day (``fit_rule``: the rolling-origin
    backtests of both models, the gate and blend, then the final fits) and of the hourly refits
    between (a re-score of the backtest, no fit), in seconds.

    The machine is shared, so single timings are noisy: a median of repeats for the refit, and the
    99th percentile of many forecasts (not the worst one) for latency.
    """
    tr = make_trace("ramps", seed)
    cfg = FeatureConfig(horizon=5, window=5)
    y = tr.y[: 14 * MINUTES_PER_DAY]
    gbm_s, hw_s, total_s = [], [], []
    for _ in range(n_refit):
        t = time.perf_counter()
        gbm = QuantileGBM(cfg).fit(y, tr.t0_s)
        t1 = time.perf_counter()
        hw = HoltWinters(cfg).fit(y, tr.t0_s)
        t2 = time.perf_counter()
        gbm_s.append(t1 - t)
        hw_s.append(t2 - t1)
        total_s.append(t2 - t)
    whole_s, rescore_s = [], []
    now = tr.t0_s + 60.0 * len(y)
    for _ in range(n_refit):
        t = time.perf_counter()
        fitted = fit_rule(y, tr.t0_s, cfg, now_s=now)
        whole_s.append(time.perf_counter() - t)
        # the operator's next hourly refit: an hour more history, the same models re-scored
        t = time.perf_counter()
        fit_rule(tr.y[60 : len(y) + 60], tr.t0_s + 3600.0, cfg, now_s=now + 3600.0, previous=fitted)
        rescore_s.append(time.perf_counter() - t)
    lat = []
    for k in range(n_single):
        # a sliding 14-day window, as a Prometheus query_range over the history would return
        hist = tr.y[k + 1 : 14 * MINUTES_PER_DAY + k + 1]
        t0 = tr.t0_s + 60.0 * (k + 1)
        t = time.perf_counter()
        gbm.predict(hist, t0)
        hw.predict(hist, t0)
        lat.append(time.perf_counter() - t)
    return {"forecast_p99_ms": float(np.percentile(lat, 99) * 1e3), "forecast_p50_ms": float(np.median(lat) * 1e3),
            "refit_gbm_s": float(np.median(gbm_s)), "refit_hw_s": float(np.median(hw_s)),
            "refit_total_s": float(np.median(total_s)), "refit_max_s": float(max(total_s)),
            "fit_rule_s": float(np.median(whole_s)), "rescore_s": float(np.median(rescore_s))}


def _runs(mask: np.ndarray, merge_gap: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    runs, s, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > merge_gap:
            runs.append((s, prev))
            s = i
        prev = i
    runs.append((s, prev))
    return runs


def anomaly_bench(seed: int = REPORT_SEEDS[0], n_spikes: int = 8, n_shifts: int = 4, threshold: float = 0.9) -> dict[str, float]:
    """Inject spikes and level shifts into the test week of a periodic trace and score detection.

    The trace is instance ``seed`` of the ``ramps`` family. Scores are :func:`consensus_scores` of two residual series: against the quantile model
    (scaled by its own band) and against persistence. A detection is a run of scores above
    ``threshold``; it is true when it starts near an injected onset or end.
    """
    tr = make_trace("ramps", seed)
    rng = np.random.default_rng(seed)
    y = tr.y.copy()
    t0 = 14 * MINUTES_PER_DAY
    n = len(y)
    slots = rng.choice(np.arange(t0 + 120, n - 600, 360), n_spikes + n_shifts, replace=False)
    events: list[tuple[int, int]] = []  # (onset, end) minutes; level-shift ends are shifts too
    for k, s in enumerate(sorted(slots)):
        s = int(s + rng.integers(0, 120))
        if k < n_spikes:
            dur = int(rng.integers(5, 11))
            y[s : s + dur] *= float(rng.uniform(1.6, 2.2))
        else:
            dur = int(rng.integers(180, 361))
            y[s : s + dur] *= float(rng.choice([0.6, 1.5]))
        events.append((s, s + dur))
    cfg = FeatureConfig(horizon=5, window=5)
    gbm = QuantileGBM(cfg).fit(tr.y[: t0 - 1], tr.t0_s)
    pos = np.arange(t0 - MINUTES_PER_DAY, n - cfg.horizon - cfg.window, dtype=np.int64)
    med, up = gbm.predict_batch(y, tr.t0_s, pos)
    actual = target_peaks(y, pos, cfg)
    resid = scaled_residuals(actual, med, up)
    naive = relative_residuals(actual, persistence_peak(y, pos, cfg))
    scores = consensus_scores(resid, naive, AnomalyConfig())
    test = pos >= t0 - 2
    win_start = pos + cfg.horizon
    runs = _runs((scores > threshold) & test, merge_gap=10)
    marks = [(s, e) for s, e in events]
    hit = np.zeros(len(events), dtype=bool)
    tp = 0
    for a, b in runs:
        lo, hi = win_start[a], win_start[b] + cfg.window
        good = False
        for j, (s, e) in enumerate(marks):
            near_on = lo < s + 15 and hi > s
            near_end = lo < e + 15 and hi > e
            if near_on:
                hit[j] = True
            good = good or near_on or near_end
        tp += int(good)
    precision = tp / len(runs) if runs else float("nan")
    return {"precision": precision, "recall": float(hit.mean()), "detections": float(len(runs)), "injected": float(len(events))}
