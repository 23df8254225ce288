"""bench/scale/report.py prints every target of issue 20, also for a run without an idle window.

`python -m bench.scale --idle-seconds 0` measured everything and then died printing the targets
(KeyError 'idle_api_writes').
"""

from bench.scale import report

ROW = {"p50": 1.0, "p95": 2.0, "wall": 3.0, "rss_mb": 200.0, "writes_per_tenant": 15.0, "cpu_per_tenant": 0.07}


def test_targets_without_an_idle_window():
    lines = report.targets([{**ROW, "n": 1}, {**ROW, "n": 1000}])
    assert any("no idle window run" in line for line in lines), lines


def test_targets_with_an_idle_window():
    idle = {"idle_s": 300, "idle_api_writes": 0, "idle_backend_writes": 0}
    lines = report.targets([{**ROW, "n": 1, **idle}, {**ROW, "n": 1000, **idle}])
    assert "1000 idle with 0 writes: 0 API, 0 backend in 300 s (met)" in lines


def test_idle_writes_at_1000_get_a_verdict():
    idle = {"idle_s": 300, "idle_api_writes": 0, "idle_backend_writes": 0}
    lines = report.targets([{**ROW, "n": 1000, **idle}])
    assert "1000 idle with 0 writes: 0 API, 0 backend in 300 s (met)" in lines
    lines = report.targets([{**ROW, "n": 1000, **idle, "idle_api_writes": 1}])
    assert "1000 idle with 0 writes: 1 API, 0 backend in 300 s (MISSED)" in lines


def test_a_profiled_size_is_written_into_the_results():
    text = report.render([{**ROW, "n": 1}], "settings", {1000: "self time: kopf 40%\n"})
    assert "Profile of the N=1000 batch (py-spy" in text and "self time: kopf 40%" in text


def test_the_bench_scrapes_at_the_charts_servicemonitor_interval():
    from bench.scale import setup

    assert setup.scrape_interval() == 30.0  # values.yaml metrics.serviceMonitor.interval: 30s
