"""The operator's /metrics against docs/observability.md, on the running e2e operator and real backends.

The table in the docs lists every `tenancy_*` metric; this scrapes what the process serves (the
`# TYPE` lines: a labelled metric is announced even before it has a series) and fails on a metric
served but not documented, or documented but not served. Then one tenant on PostgreSQL, Redis and
OpenBao shows the new series carry real values, and that it stays within the documented series bound.
"""

from __future__ import annotations

import re
import time
import urllib.request

from . import kube
from .kube import REPO, eventually, tenant_yaml

DOC = REPO / "docs" / "observability.md"
PER_TENANT_BOUND = 94  # docs/observability.md, "Label cardinality"
ROW = re.compile(r"^\| `(tenancy_[a-z0-9_]+)` \| (gauge|counter|histogram) \|([^|]*)\|(.*)\|$")


def documented() -> tuple[dict[str, tuple[str, set[str]]], set[str]]:
    """{metric: (type, labels)} from the docs' table, and the names marked pending."""
    rows, pending = {}, set()
    for line in DOC.read_text().splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m[1]] = (m[2], {x.strip() for x in m[3].split(",") if x.strip()})
            if "*(pending" in m[4]:
                pending.add(m[1])
    return rows, pending


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def exported(text: str) -> dict[str, str]:
    """{metric name as documented: type}; counters under their `_total` sample name."""
    out = {}
    for m in re.finditer(r"^# TYPE (tenancy_[a-z0-9_]+) (\w+)$", text, re.M):
        name, kind = m[1], m[2]
        out[name + "_total" if kind == "counter" and not name.endswith("_total") else name] = kind
    return out


def samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of the series of `name` whose labels include `labels`."""
    values = []
    for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m[1]))
        if all(have.get(k) == v for k, v in labels.items()):
            values.append(float(m[2]))
    return values


def test_docs_table_is_what_the_operator_exports(operator, backends):
    rows, pending = documented()
    assert len(rows) > 30, f"the metrics table in {DOC} was not found"
    # `tenancy_audit_chain_verified` has no sample until the audit trail's first check (its first tick: 3 s in e2e).
    deadline = time.monotonic() + 30
    while True:
        served = exported(scrape(operator.metrics_port))
        missing = sorted(set(rows) - set(served) - pending)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    undocumented = sorted(set(served) - set(rows))
    assert not missing, f"documented in {DOC.name} but not exported: {missing}"
    assert not undocumented, f"exported but not in the table of {DOC.name}: {undocumented}"
    wrong_type = {n: (rows[n][0], t) for n, t in served.items() if rows[n][0] != t}
    assert not wrong_type, f"(documented, exported) types differ: {wrong_type}"
    # Labels too: a series' label names are exactly the documented ones.
    text = scrape(operator.metrics_port)
    for name, (kind, labels) in rows.items():
        sample = name if kind != "histogram" else name + "_count"
        for m in re.finditer(rf"^{re.escape(sample)}\{{([^}}]*)\}} ", text, re.M):
            assert set(re.findall(r'(\w+)="', m[1])) == labels, f"{name}: labels {m[1]} vs documented {labels}"


def test_a_tenant_s_series_carry_real_values(operator, backends, cleanup_tenants):
    name = "obs-metrics"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, quota={"cpu": "2", "memory": "1Gi", "pods": "5"},
                           postgres={"enabled": True}, redis={"enabled": True}, vault={"enabled": True, "kv": True},
                           credentials={"rotateEvery": "720h"}))
    kube.kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=120s")
    started = time.time()

    def settled():
        text = scrape(operator.metrics_port)
        return samples(text, "tenancy_tenant_database_bytes", tenant=name) and \
            samples(text, "tenancy_tenant_quota_hard", tenant=name, resource="pods") and \
            samples(text, "tenancy_verify_passes_total", result="clean") and text

    text = eventually(settled, 60, message="the tenant's usage and a clean verify pass in /metrics")
    assert samples(text, "tenancy_tenant_database_bytes", tenant=name)[0] > 1_000_000  # an empty database is ~7 MB
    assert samples(text, "tenancy_tenant_quota_hard", tenant=name, resource="pods") == [5.0]
    assert samples(text, "tenancy_tenant_quota_hard", tenant=name, resource="requests.memory") == [float(2**30)]
    assert samples(text, "tenancy_tenant_quota_used", tenant=name, resource="pods") == [0.0]
    rotated = samples(text, "tenancy_credential_rotated_timestamp_seconds", tenant=name)[0]
    next_due = samples(text, "tenancy_credential_next_rotation_timestamp_seconds", tenant=name)[0]
    assert started - 300 < rotated <= time.time() and next_due - rotated == 720 * 3600
    for service, backend in (("postgres", "pg-main"), ("redis", "redis-main"), ("vault", "vault-main")):
        assert samples(text, "tenancy_backend_call_seconds_count", backend=backend, type=service, operation="ensure")[0] > 0
        assert samples(text, "tenancy_backend_probe_seconds", backend=backend, type=service)[0] > 0
        assert samples(text, "tenancy_backend_circuit_open", backend=backend) == [0.0]
    assert samples(text, "tenancy_handler_seconds_count", handler="tenant")[0] > 0
    assert samples(text, "tenancy_handler_seconds_count", handler="tenant-verify")[0] > 0
    series = [line for line in text.splitlines() if f'tenant="{name}"' in line and not line.startswith("#")]
    print(f"{len(series)} series for tenant {name} (bound {PER_TENANT_BOUND})")
    assert 20 < len(series) <= PER_TENANT_BOUND, f"{len(series)} series for one tenant: {series}"
