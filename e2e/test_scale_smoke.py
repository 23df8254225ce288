"""The fleet scale bench (`make bench-scale`, bench/scale/) at N=3: it runs end to end on the real platform.

Functional only, no timing asserted: three tenants with PostgreSQL, Redis and OpenBao applied at once
are all seen Ready by the bench's watch, every figure of the bench's row is a number and printed, and
all three are deleted and gone afterwards (the watch saw their DELETED events, the list has none).
"""

from __future__ import annotations

import secrets

from bench.scale import report, run, setup

from .kube import kubectl

N = 3


def test_scale_bench_smoke_three_tenants_ready_measured_and_deleted(operator, backends):
    setup.with_room(backends, N)
    tag = secrets.token_hex(2)
    row = run.run_size(N, operator, idle_seconds=3, run=tag, settle=1)

    assert len(row["times"]) == N and all(t > 0 for t in row["times"]), row["times"]
    missing = [k for k in run.FIELDS if not isinstance(row.get(k), int | float)]
    assert not missing, f"figures the bench did not measure: {missing}"
    assert row["writes_per_tenant"] > 0, "the audit log showed no write of the operator for the new tenants"
    assert row["api_reads_per_tenant"] > 0, "the API server counted no GET or LIST while the batch ran"
    assert row["rss_mb"] > 0 and row["cpu_s"] > 0
    text = report.table([row])
    print(f"\nscale smoke, N={N} (numbers not asserted):\n{text}")
    for title, _ in run.FIELDS.values():
        assert title == "N" or f"| {title} |" in text
    left = kubectl("get", "tenants", "-l", f"{run.LABEL}={tag}", "-o", "name").stdout.split()
    assert not left, f"bench tenants left after the run: {left}"
