"""Predictive autoscaling on the real API server, the real HPA controller and a real Prometheus.

One timeline serves every test (so the module takes about four minutes, not three times that):
14 days of 1-minute history are backfilled into Prometheus with promtool (hack/loadgen.py writes it;
platform/backfill.sh loads it), for a daily pattern whose scheduled spike lands about two minutes
from now, and for a random series. hack/loadgen.py serves the same traces live, so Prometheus keeps
scraping the series past the backfill. Three tenants, each with a Deployment `web` and one rule:

- `Floor` on the periodic series: minReplicas is lifted ahead of the spike, the HPA controller
  raises the Deployment's spec.replicas before the spike starts, and the lift is released after it.
- `Observe` on the same series: the HPA is never written after creation (audit log, generation,
  minReplicas), while status shows the forecast.
- `Floor` on a flat random walk (no periodicity; persistence is about the best forecast): the
  predictability gate keeps the rule reactive and status says why.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import audit, kube
from .kube import condition, eventually, get, kubectl, tenant_yaml

LOADGEN_PORT = 19091 + int(os.environ.get("TENANCY_PORT_OFFSET") or 0)  # platform/lib.sh; Prometheus scrapes it
OPERATOR_USER = "system:serviceaccount:tenancy-system:tenancy-operator"
PROM = os.environ.get("TENANCY_PROMETHEUS_URL", "http://127.0.0.1:19090")
SPIKE = dict(base=100, amp=0.3, noise=0.03, spike=300, spike_len=90, ramp=30)
# A true random walk (phi 1): persistence is the best forecast. With phi 0.999 the walk reverts to its
# mean, which is predictable far from it: on 2026-12-04 the realization around midday passed the gate
# honestly (4 of 4 predicted rise events came true, median 7% better than persistence) and this failed.
WALK = dict(base=100, sigma=0.01, phi=1.0)
MIN_REPLICAS = 2


def _spec(kind: str, params: dict[str, float]) -> str:
    return kind + ":" + ",".join(f"{k}={v:g}" for k, v in params.items())


def _prom(query: str) -> list:
    import urllib.parse
    import urllib.request

    url = f"{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


def backfill_history(om: Path, specs: list[str], series: str) -> None:
    """14 days of the `specs` series into Prometheus (through `om`, an OpenMetrics file), then wait until
    `series` is queryable there and the running load generator is scraped for it."""
    subprocess.run([sys.executable, str(kube.REPO / "hack" / "loadgen.py"), "backfill", "--days", "14",
                    "--end", f"{time.time():.0f}", "-o", str(om), *sum((["--series", s] for s in specs), [])],
                   check=True, capture_output=True, timeout=60)
    done = subprocess.run(["bash", str(kube.REPO / "platform" / "backfill.sh"), str(om)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    eventually(lambda: _prom(f'count_over_time(loadgen_request_rate{{series="{series}"}}[15d])'),
               timeout=30, message="backfilled history queryable")
    eventually(lambda: _prom(f'loadgen_request_rate{{series="{series}",job="loadgen"}}'),
               timeout=30, message="load generator scraped")


def _rule(name: str, series: str, mode: str) -> dict:
    return {"name": name, "targetRef": {"kind": "Deployment", "name": "web"},
            "metric": {"prometheus": f'max(loadgen_request_rate{{series="{series}"}})'},
            "capacityPerReplica": 50, "minReplicas": MIN_REPLICAS, "maxReplicas": 20, "targetUtilization": 70,
            "leadTime": "1m", "window": "2m", "mode": mode}


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}}},
}


@dataclass
class Timeline:
    run: str
    spike_s: float
    tenants: dict[str, str]
    samples: list[dict] = field(default_factory=list)
    observe_hpa_before: dict | None = None
    audit_mark: audit.Mark | None = None
    setup_s: float = 0.0

    def first(self, what: str, pred) -> float | None:
        return next((s["t"] for s in self.samples if pred(s[what])), None)


def _hpa(ns: str) -> dict | None:
    return get("hpa", "web", ns)


def _snapshot(tl: Timeline) -> dict:
    out = {"t": time.time()}
    for role, name in tl.tenants.items():
        ns = f"tenant-{name}"
        hpa = _hpa(ns) or {}
        dep = get("deployment", "web", ns) or {}
        tenant = get("tenant", name) or {}
        out[role] = {"min": hpa.get("spec", {}).get("minReplicas"),
                     "replicas": dep.get("spec", {}).get("replicas"),
                     "status": ((tenant.get("status") or {}).get("autoscaling") or [{}])[0],
                     "ready": condition(tenant, "AutoscalingReady")}
    return out


@pytest.fixture(scope="module")
def timeline(operator, tmp_path_factory):
    run = secrets.token_hex(3)
    t_setup = time.time()
    # The spike starts 30 s past a minute boundary, a lead (45 s on a quiet machine, more under load:
    # kube.lead_seconds) plus up to a minute from now: far enough for backfill, the tenants and the first
    # fits, near enough to keep the module short.
    spike = math.ceil((time.time() + kube.lead_seconds()) / 60) * 60 + 30
    series = {"periodic": f"e2e-{run}-periodic", "random": f"e2e-{run}-random"}
    specs = [f"{series['periodic']}={_spec('daily', {**SPIKE, 'spike_at': spike % 86400, 'seed': 7})}",
             f"{series['random']}={_spec('walk', {**WALK, 'origin': spike - 15 * 86400, 'seed': 11})}"]
    loadgen = subprocess.Popen([sys.executable, str(kube.REPO / "hack" / "loadgen.py"), "serve",
                                "--port", str(LOADGEN_PORT), *sum((["--series", s] for s in specs), [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        backfill_history(tmp_path_factory.mktemp("history") / "history.om", specs, series["periodic"])

        tenants = {"floor": f"as-floor-{run}", "observe": f"as-observe-{run}", "random": f"as-random-{run}"}
        modes = {"floor": ("periodic", "Floor"), "observe": ("periodic", "Observe"), "random": ("random", "Floor")}
        for role, name in tenants.items():
            key, mode = modes[role]
            kube.apply(tenant_yaml(name, autoscaling=[_rule("web", series[key], mode)]))
        for name in tenants.values():
            eventually(lambda n=name: get("namespace", f"tenant-{n}"), timeout=30, message="tenant namespace")
            kubectl("apply", "-n", f"tenant-{name}", "-f", "-", input=json.dumps(DEPLOYMENT))
        tl = Timeline(run, spike, tenants)
        ns_obs = f"tenant-{tenants['observe']}"
        tl.observe_hpa_before = eventually(lambda: _hpa(ns_obs), timeout=30, message="Observe HPA created")
        tl.audit_mark = audit.mark()
        for name in tenants.values():
            kubectl("wait", "--for=condition=AutoscalingReady", f"tenant/{name}", "--timeout=60s", timeout=70)
        tl.setup_s = time.time() - t_setup
        # Watch until the Floor lift has been released after the spike (or give up 4 min past it).
        deadline = spike + 240
        while time.time() < deadline:
            snap = _snapshot(tl)
            tl.samples.append(snap)
            lifted = any(s["floor"]["min"] and s["floor"]["min"] > MIN_REPLICAS for s in tl.samples)
            if lifted and snap["t"] > spike + 90 and snap["floor"]["min"] == MIN_REPLICAS:
                break
            time.sleep(1.0)
        # Observe: also a final look at the HPA after the whole window.
        tl.samples.append(_snapshot(tl))
        yield tl
    finally:
        os.killpg(loadgen.pid, 15)
        loadgen.wait(timeout=10)
        for name in (locals().get("tenants") or {}).values():
            kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)


def test_floor_lifts_min_replicas_before_the_peak_and_releases_it_after(timeline):
    tl = timeline
    lifted_at = tl.first("floor", lambda s: (s["min"] or 0) > MIN_REPLICAS)
    scaled_at = tl.first("floor", lambda s: (s["replicas"] or 0) > MIN_REPLICAS)
    assert lifted_at is not None, f"minReplicas never lifted; last status {tl.samples[-1]['floor']}"
    peak_min = max(s["floor"]["min"] or 0 for s in tl.samples)
    released_at = next((s["t"] for s in tl.samples if s["t"] > lifted_at and s["floor"]["min"] == MIN_REPLICAS), None)
    print(f"\nsetup {tl.setup_s:.0f}s; spike at +0: lift {lifted_at - tl.spike_s:+.0f}s to {peak_min}, "
          f"replicas raised {scaled_at - tl.spike_s if scaled_at else float('nan'):+.0f}s, "
          f"released {released_at - tl.spike_s if released_at else float('nan'):+.0f}s")
    assert lifted_at < tl.spike_s, "the lift must come before the spike"
    assert peak_min >= 10, f"the lift should cover the spike (about 430 req/s at 35 per replica): {peak_min}"
    assert scaled_at is not None and scaled_at < tl.spike_s, "the HPA controller must scale before the spike"
    assert released_at is not None, "the lift was never released"
    assert released_at > tl.spike_s + 60, "released before the spike was over"
    status = tl.samples[-1]["floor"]["status"]
    assert status["gate"]["active"] is True, status
    assert any(m in status["model"] for m in ("holt-winters", "quantile-gbm")), status["model"]
    assert status["floor"] == MIN_REPLICAS
    assert status["backtest"]["skill"] > 0
    during = next(s["floor"]["status"] for s in tl.samples if (s["floor"]["min"] or 0) > MIN_REPLICAS)
    assert during["forecast"]["peak"] > 300 and during["floor"] == peak_min or during["floor"] > MIN_REPLICAS


def test_observe_never_writes_the_hpa_and_shows_the_forecast(timeline):
    tl = timeline
    before = tl.observe_hpa_before
    after = _hpa(f"tenant-{tl.tenants['observe']}")
    assert {s["observe"]["min"] for s in tl.samples} == {MIN_REPLICAS}
    assert after["spec"] == before["spec"]  # (HPAs carry no metadata.generation)
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["spec"]["minReplicas"] == MIN_REPLICAS
    # The audit log, read by namespace: no operator write to the Observe HPA, while the Floor one moved.
    assert _hpa_writes_in(tl.audit_mark, f"tenant-{tl.tenants['observe']}") == 0
    assert _hpa_writes_in(tl.audit_mark, f"tenant-{tl.tenants['floor']}") >= 2  # lift and release
    seen = [s["observe"]["status"] for s in tl.samples]
    assert all(s.get("mode") == "Observe" for s in seen)
    assert any(s.get("forecast", {}).get("peak", 0) > 300 for s in seen), "status never showed the spike forecast"
    assert any(s.get("floor", 0) > MIN_REPLICAS for s in seen), "status shows what Floor would do"
    assert seen[-1]["gate"]["active"] is True


def _hpa_writes_in(mark: audit.Mark, namespace: str) -> int:
    counts = audit.writes(mark, OPERATOR_USER, namespace=namespace)
    return sum(n for (_, resource, _), n in counts.items() if resource == "horizontalpodautoscalers")


def test_unpredictable_history_keeps_the_rule_reactive(timeline):
    tl = timeline
    assert {s["random"]["min"] for s in tl.samples} == {MIN_REPLICAS}
    status = tl.samples[-1]["random"]["status"]
    assert status["gate"]["active"] is False, status
    assert status["gate"]["reason"].startswith("Reactive:"), status
    ready = tl.samples[-1]["random"]["ready"]
    assert ready["status"] == "True" and ready["reason"] == "Reactive", ready
    assert "Reactive" in ready["message"]


def _prometheus(action: str) -> None:
    """Stop the platform's Prometheus (as platform/backfill.sh does), or start it again (make up)."""
    platform = kube.REPO / "platform"
    script = (f'source "{platform}/lib.sh"; exec 8>"$STATE/lock"; flock -w 60 8; stop_pid prometheus 15'
              if action == "stop" else f'bash "{platform}/up.sh" >/dev/null')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_prometheus_outage_keeps_the_rule_reactive_and_it_recovers(timeline):
    """Runs after the timeline: with no metrics the rule must fall back to the plain HPA (never hold a
    floor on a forecast it cannot check), say so, stay Ready, and act again once Prometheus is back."""
    name = timeline.tenants["floor"]

    def rule() -> dict:
        return (((get("tenant", name) or {}).get("status") or {}).get("autoscaling") or [{}])[0]

    eventually(lambda: rule().get("gate", {}).get("active") is True, 30, message="predictive before the outage")
    stopped = time.time()
    _prometheus("stop")
    try:
        # The operator asks Prometheus only when a new 1-minute sample is due: the forecast from data
        # under a minute old stays valid, so the switch comes within about a minute.
        down = eventually(lambda: (r := rule()).get("gate", {}).get("active") is False and r, 120,
                          message="reactive while Prometheus is down")
        reacted = time.time() - stopped
        assert down["gate"]["reason"].startswith("Reactive: Prometheus at "), down["gate"]
        assert "unreachable" in down["gate"]["reason"]
        ready = condition(get("tenant", name), "AutoscalingReady")
        assert ready["status"] == "True" and ready["reason"] == "Reactive", ready
        assert _hpa(f"tenant-{name}")["spec"]["minReplicas"] == MIN_REPLICAS
    finally:
        _prometheus("start")
    started = time.time()
    eventually(lambda: rule().get("gate", {}).get("active") is True, 60, message="predictive again after the outage")
    print(f"\nPrometheus outage: reactive {reacted:.1f}s after the stop, predictive again "
          f"{time.time() - started:.1f}s after the restart")


def test_operator_restart_refits_without_flapping_ready(timeline, operator):
    """After a restart every model is refit (they live in memory); the HPAs keep working meanwhile,
    so neither the Tenant's Ready nor AutoscalingReady may drop, and the rule acts again after the fit."""
    name = timeline.tenants["floor"]
    eventually(lambda: condition(get("tenant", name), "AutoscalingReady")["reason"] == "Predictive", 60,
               message="predictive before the restart")
    operator.kill()
    restarted = time.monotonic()
    operator.start()
    seen = []
    while time.monotonic() - restarted < 20:
        tenant = get("tenant", name)
        seen.append((condition(tenant, "Ready")["status"], condition(tenant, "AutoscalingReady")["status"],
                     condition(tenant, "AutoscalingReady")["reason"], time.monotonic() - restarted))
        time.sleep(0.5)
    assert all(ready == "True" and auto_ready == "True" for ready, auto_ready, _, _ in seen), seen
    eventually(lambda: condition(get("tenant", name), "AutoscalingReady")["reason"] == "Predictive", 60,
               message="predictive again after the refit")
    reactive = [t for _, _, reason, t in seen if reason == "Reactive"]
    back = next((t for _, _, reason, t in seen if reactive and reason == "Predictive" and t > reactive[0]), None)
    print(f"\noperator restart: Ready stayed True over {len(seen)} looks; Reactive (refitting) from "
          f"{reactive[0] if reactive else float('nan'):.1f}s, Predictive again at "
          f"{back if back is not None else float('nan'):.1f}s after the restart")
