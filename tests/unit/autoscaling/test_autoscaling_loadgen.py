"""hack/loadgen.py: backfilled history and live values are the same function of time."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("loadgen", Path(__file__).resolve().parents[3] / "hack" / "loadgen.py")
loadgen = importlib.util.module_from_spec(_spec)
sys.modules["loadgen"] = loadgen  # dataclasses look their module up
_spec.loader.exec_module(loadgen)


def test_backfill_matches_live_values_and_ends_with_eof():
    name, trace = loadgen.parse_series("web=daily:base=100,spike=300,spike_at=3600,spike_len=120,ramp=30")
    out = io.StringIO()
    n = loadgen.write_openmetrics(out, [(name, trace)], 0, 7200, 60)
    lines = out.getvalue().splitlines()
    assert n == 120 and lines[-1] == "# EOF" and lines[1] == "# TYPE loadgen_request_rate gauge"
    sample = lines[2 + 61]  # t = 3660 s: inside the spike
    metric, value, ts = sample.rsplit(" ", 2)
    assert metric == 'loadgen_request_rate{series="web"}' and ts == "3660"
    assert float(value) == float(f"{trace.rate(3660 + 42):.6g}")  # constant within the minute
    assert float(value) > 350


def test_walk_is_deterministic_and_random_is_not_periodic():
    _, a = loadgen.parse_series("x=walk:origin=0,seed=3")
    _, b = loadgen.parse_series("x=walk:origin=0,seed=3")
    assert [a.rate(60 * k) for k in range(50)] == [b.rate(60 * k) for k in reversed(range(50))][::-1]
    _, r = loadgen.parse_series("x=random:seed=1")
    assert r.rate(0) != r.rate(86400)
