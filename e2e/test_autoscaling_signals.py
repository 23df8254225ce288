"""The other two signals of predictive autoscaling, on the real API server and a real Prometheus:
the forecast exported as a metric (ExternalMetric mode) and anomaly detection.

One timeline serves both tests (the module takes about two and a half minutes). As in
e2e/test_autoscaling.py (whose helpers this reuses), 14 days of 1-minute history are backfilled into
Prometheus with promtool and hack/loadgen.py serves the same traces live. Three tenants, each with a
Deployment `web` and one rule:

- `ExternalMetric` on the periodic series whose daily spike lands about two minutes from now: the
  operator exports `tenancy_autoscaling_forecast_demand{tenant,rule}` > 0 on its metrics endpoint
  before the spike, the HPA reads that External metric, and minReplicas is never lifted (the HPA
  does the sizing).
- `Observe` on a daily series with an injected level shift (demand x4, lasting 30 minutes) that
  neither the model (the history has no such thing) nor persistence expects. Its onset is placed
  two minutes before the test starts: the anomaly score needs `AnomalyConfig.sustain` (4)
  consecutive surprised forecasts, one per minute, so an onset in the future would cost four more
  minutes of waiting. The refit's backtest scores the newest windows (the first few after the onset)
  exactly as the live passes score the following ones, so the operator sees the shift the way a
  restarted operator would: partly in its backtest, then live. The rule's window is 5 minutes, so
  about six consecutive forecasts (those whose window covers the onset while their inputs precede
  it) are surprised, the score is above 0.9 from the 4th to the 6th, and falls back once persistence
  has caught up. Expected: `AnomalyDetected=True` (reason AnomalyScoreHigh) with a Warning Event,
  and `tenancy_autoscaling_anomaly_score` > 0.9 on the metrics endpoint.
- `Observe` on the same daily series without the shift (the control): no anomaly.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

from . import kube
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .test_autoscaling import DEPLOYMENT, LOADGEN_PORT, MIN_REPLICAS, SPIKE, _hpa, _prom, _rule, _spec

FORECAST_METRIC = "tenancy_autoscaling_forecast_demand"
ANOMALY_METRIC = "tenancy_autoscaling_anomaly_score"
SHIFT = dict(base=100, amp=0.3, noise=0.03, seed=13)
SHIFT_UP = 300  # requests/s on top of about 100: a level shift no history and no recent past predicts
SHIFT_LEN = 1800


def _scrape(port: int) -> dict[tuple[str, str, str], float]:
    """{(metric, tenant, rule): value} of the operator's autoscaling gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name not in (FORECAST_METRIC, ANOMALY_METRIC):
            continue
        for s in fam.samples:
            out[(s.name, s.labels.get("tenant", ""), s.labels.get("rule", ""))] = s.value
    return out


@dataclass
class Signals:
    spike_s: float
    onset_s: float
    tenants: dict[str, str]
    samples: list[dict] = field(default_factory=list)
    setup_s: float = 0.0
    t0: float = 0.0

    def first(self, pred) -> dict | None:
        return next((s for s in self.samples if pred(s)), None)


def _snapshot(sg: Signals, port: int) -> dict:
    metrics = _scrape(port)
    out: dict = {"t": time.time()}
    for role, name in sg.tenants.items():
        ns = f"tenant-{name}"
        hpa = _hpa(ns) or {}
        tenant = get("tenant", name) or {}
        out[role] = {"hpa": hpa.get("spec", {}), "min": hpa.get("spec", {}).get("minReplicas"),
                     "status": ((tenant.get("status") or {}).get("autoscaling") or [{}])[0],
                     "anomaly": condition(tenant, "AnomalyDetected"),
                     "demand": metrics.get((FORECAST_METRIC, name, "web")),
                     "score": metrics.get((ANOMALY_METRIC, name, "web"))}
    return out


@pytest.fixture(scope="module")
def signals(operator, tmp_path_factory):
    run = secrets.token_hex(3)
    t0 = time.time()
    spike = math.ceil((t0 + kube.lead_seconds()) / 60) * 60 + 30  # as in test_autoscaling
    onset = math.floor(t0 / 60) * 60 - 120       # the level shift began 2-3 minutes ago
    cut = onset - 600                             # history before this has never seen the shift
    series = {"periodic": f"e2e-{run}-periodic", "shift": f"e2e-{run}-shift", "steady": f"e2e-{run}-steady"}
    periodic = f"{series['periodic']}={_spec('daily', {**SPIKE, 'spike_at': spike % 86400, 'seed': 7})}"
    before = f"{series['shift']}={_spec('daily', SHIFT)}"
    steady = f"{series['steady']}={_spec('daily', SHIFT)}"  # the control: the same trace without the shift
    shifted = f"{series['shift']}={_spec('daily', {**SHIFT, 'spike': SHIFT_UP, 'spike_at': onset % 86400, 'spike_len': SHIFT_LEN, 'ramp': 1})}"
    loadgen = subprocess.Popen([sys.executable, str(kube.REPO / "hack" / "loadgen.py"), "serve",
                                "--port", str(LOADGEN_PORT), "--series", periodic, "--series", shifted,
                                "--series", steady],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tenants: dict[str, str] = {}
    try:
        end = time.time()
        tmp = tmp_path_factory.mktemp("history")
        files = []

        def backfill(name: str, specs: list[str], start: float, stop: float) -> None:
            om = tmp / f"{name}.om"
            subprocess.run([sys.executable, str(kube.REPO / "hack" / "loadgen.py"), "backfill",
                            "--days", f"{(stop - start) / 86400:.9f}", "--end", f"{stop:.0f}", "-o", str(om),
                            *sum((["--series", s] for s in specs), [])],
                           check=True, capture_output=True, timeout=60)
            files.append(str(om))

        backfill("periodic", [periodic, steady], end - 14 * 86400, end)
        # The shift series: its history without the shift up to `cut`, then the trace with it (the
        # same noise and daily pattern: the two agree sample for sample until the onset).
        backfill("before", [before], end - 14 * 86400, cut)
        backfill("shifted", [shifted], cut, end)
        done = subprocess.run(["bash", str(kube.REPO / "platform" / "backfill.sh"), *files],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        for s in series.values():
            eventually(lambda s=s: _prom(f'count_over_time(loadgen_request_rate{{series="{s}"}}[15d])'),
                       timeout=30, message="backfilled history queryable")
            eventually(lambda s=s: _prom(f'loadgen_request_rate{{series="{s}",job="loadgen"}}'),
                       timeout=30, message="load generator scraped")

        tenants.update({"external": f"as-ext-{run}", "anomaly": f"as-anom-{run}", "steady": f"as-steady-{run}"})
        shift_rule = {**_rule("web", series["shift"], "Observe"), "window": "5m"}
        steady_rule = {**_rule("web", series["steady"], "Observe"), "window": "5m"}
        kube.apply(tenant_yaml(tenants["external"], autoscaling=[_rule("web", series["periodic"], "ExternalMetric")]))
        kube.apply(tenant_yaml(tenants["anomaly"], autoscaling=[shift_rule]))
        kube.apply(tenant_yaml(tenants["steady"], autoscaling=[steady_rule]))
        for name in tenants.values():
            eventually(lambda n=name: get("namespace", f"tenant-{n}"), timeout=30, message="tenant namespace")
            kubectl("apply", "-n", f"tenant-{name}", "-f", "-", input=json.dumps(DEPLOYMENT))
        sg = Signals(spike, onset, dict(tenants), t0=t0)
        for name in tenants.values():
            kubectl("wait", "--for=condition=AutoscalingReady", f"tenant/{name}", "--timeout=60s", timeout=70)
        sg.setup_s = time.time() - t0
        # Watch until past the spike (ExternalMetric must not have lifted minReplicas by then) and
        # until the anomaly was seen, or 60 s past the spike.
        port = operator.metrics_port
        while time.time() < spike + 60:
            snap = _snapshot(sg, port)
            sg.samples.append(snap)
            seen = any((s["anomaly"]["score"] or 0) > 0.9 and (s["anomaly"]["anomaly"] or {}).get("status") == "True"
                       for s in sg.samples)
            if seen and snap["t"] > spike + 20:
                break
            time.sleep(1.0)
        yield sg
    finally:
        os.killpg(loadgen.pid, 15)
        loadgen.wait(timeout=10)
        for name in tenants.values():
            kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)


def test_external_metric_exports_the_forecast_and_leaves_sizing_to_the_hpa(signals):
    sg = signals
    name = sg.tenants["external"]
    ext = [s["external"] for s in sg.samples]
    first = sg.first(lambda s: (s["external"]["demand"] or 0) > 0)
    peak_demand = max((e["demand"] or 0) for e in ext)
    print(f"\nsetup {sg.setup_s:.0f}s; spike at +0: forecast demand exported "
          f"{first['t'] - sg.spike_s if first else float('nan'):+.0f}s, up to {peak_demand:g}")
    assert first is not None, f"{FORECAST_METRIC} never above 0; last status {ext[-1]['status']}"
    assert first["t"] < sg.spike_s, "the forecast demand must be exported before the spike"
    # About 430 req/s at the spike: the floor Floor mode would set, times 35 req/s per replica.
    assert peak_demand > 300, peak_demand
    during = first["external"]["status"]
    assert during["mode"] == "ExternalMetric" and during["gate"]["active"] is True, during
    assert during["floor"] > MIN_REPLICAS and peak_demand >= during["floor"] * 35 * 0.99, during
    # The HPA reads the forecast as an External metric, with the rule's selector and per-pod target.
    metrics = ext[-1]["hpa"]["metrics"]
    forecast = [m for m in metrics if m["type"] == "External" and m["external"]["metric"]["name"] == FORECAST_METRIC]
    assert len(forecast) == 1, metrics
    assert forecast[0]["external"]["metric"]["selector"] == {"matchLabels": {"tenant": name, "rule": "web"}}
    assert forecast[0]["external"]["target"] == {"type": "AverageValue", "averageValue": "35"}
    assert any(m["external"]["metric"]["name"] == "tenancy_demand" for m in metrics)
    # ExternalMetric leaves sizing to the HPA: minReplicas is the rule's own, before, during and after.
    assert {e["min"] for e in ext} == {MIN_REPLICAS}
    assert sg.samples[-1]["t"] > sg.spike_s, "watched past the spike"
    hpa = _hpa(f"tenant-{name}")
    assert hpa["spec"]["minReplicas"] == MIN_REPLICAS
    assert not {"tenancy.dev/floor-lift", "tenancy.dev/floor-lift-until"} & set(hpa["metadata"].get("annotations") or {})


def test_injected_level_shift_is_an_anomaly(signals):
    sg = signals
    name = sg.tenants["anomaly"]
    an = [s["anomaly"] for s in sg.samples]
    scored = sg.first(lambda s: (s["anomaly"]["score"] or 0) > 0.9)
    flagged = sg.first(lambda s: (s["anomaly"]["anomaly"] or {}).get("status") == "True")
    top = max((a["score"] or 0) for a in an)
    print(f"\nshift onset at +0: score {top:.3f} > 0.9 at {scored['t'] - sg.onset_s if scored else float('nan'):+.0f}s, "
          f"AnomalyDetected=True at {flagged['t'] - sg.onset_s if flagged else float('nan'):+.0f}s "
          f"(test started at {sg.t0 - sg.onset_s:+.0f}s)")
    assert scored is not None, f"{ANOMALY_METRIC} never above 0.9 (max {top}); last status {an[-1]['status']}"
    assert flagged is not None, f"AnomalyDetected never True; last {an[-1]['anomaly']}"
    cond = flagged["anomaly"]["anomaly"]
    assert cond["reason"] == "AnomalyScoreHigh" and "web" in cond["message"], cond
    assert flagged["anomaly"]["status"].get("anomalyScore", 0) > 0.9 or any(
        a["status"].get("anomalyScore", 0) > 0.9 for a in an), "status shows the score"
    eventually(lambda: any(e["type"] == "Warning" and "AnomalyDetected=True" in e.get("message", "")
                           for e in kube.object_events("Tenant", name, reason="AnomalyScoreHigh")),
               timeout=15, message="AnomalyScoreHigh Warning Event")
    # The controls never fire: the same trace without the shift (same rule, same noise, same daily
    # pattern), and the periodic series whose daily spike the model expects.
    for role in ("steady", "external"):
        assert all(s[role]["score"] is not None and s[role]["score"] <= 0.9 for s in sg.samples), role
        assert all((s[role]["anomaly"] or {}).get("status") == "False" for s in sg.samples), role
    print(f"controls: max score steady {max(s['steady']['score'] for s in sg.samples):.3f}, "
          f"periodic {max(s['external']['score'] for s in sg.samples):.3f}")
