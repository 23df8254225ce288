"""The chart's Grafana dashboards: every panel expression parses (promtool, Prometheus's own parser) and
names only metrics the operator exports (docs/observability.md's table, which
e2e/test_observability_metrics.py holds to /metrics) or the platform provides (`up`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .kube import REPO
from .test_install_chart import _render
from .test_observability_metrics import documented
from .test_observability_rules import promtool

DASHBOARDS = sorted((REPO / "charts" / "tenancy-operator" / "dashboards").glob("*.json"))
PLATFORM = {"up"}  # Prometheus's own per-target series
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$tenant": "acme", "$backend": "pg-main",
             "$rule": "web"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan"}


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expression) of every target, and the metric of every label_values() variable."""
    out = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("definition") or ""
        m = re.match(r"label_values\((.*),\s*\w+\)$", query)
        if m:
            out.append((f"variable {var['name']}", m[1]))
    return out


def concrete(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (identifiers that are not functions, keywords or labels)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or m[0] in KEYWORDS or re.fullmatch(r"\d+\w*", m[0]):
            continue
        names.add(m[0])
    return names


def known_metrics() -> set[str]:
    rows, _ = documented()
    names = set(PLATFORM)
    for name, (kind, _labels) in rows.items():
        names |= {name + s for s in ("_bucket", "_count", "_sum")} if kind == "histogram" else {name}
    return names


def check_parses(exprs: list[str], tmp_path: Path) -> str:
    """promtool's verdict on the expressions as recording rules: empty when all parse."""
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:check:{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    run = promtool("check", "rules", str(path))
    return "" if run.returncode == 0 else run.stdout + run.stderr


def test_the_four_dashboards_ship_in_the_labelled_configmap(platform):
    assert [p.stem for p in DASHBOARDS] == ["autoscaling", "backends", "fleet-overview", "tenant"]
    docs = list(yaml.safe_load_all(_render()))
    cm = next(d for d in docs if d and d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {k: json.loads(v)["uid"] for k, v in cm["data"].items()} == {
        p.name: json.loads(p.read_text())["uid"] for p in DASHBOARDS}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_expression_parses_and_names_known_metrics(path, tmp_path):
    dashboard = json.loads(path.read_text())
    found = expressions(dashboard)
    assert len(found) >= 6, f"{path.name}: too few panels"
    problem = check_parses([concrete(e) for _, e in found], tmp_path)
    assert not problem, f"{path.name}: {problem}"
    known = known_metrics()
    unknown = {title: sorted(metric_names(concrete(e)) - known) for title, e in found}
    assert not any(unknown.values()), f"{path.name} names metrics nobody exports: {unknown}"


def test_the_checks_catch_a_bad_panel(tmp_path):
    """Both checks can fail: a syntax error, and a metric the operator does not export."""
    assert check_parses(["sum by (tenant (tenancy_tenant_phase)"], tmp_path)
    assert metric_names(concrete('sum(rate(tenancy_reconcile_totl{kind="Tenant"}[$__rate_interval]))')) - known_metrics() \
        == {"tenancy_reconcile_totl"}
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(tenancy_handler_seconds_bucket[5m])))') == \
        {"tenancy_handler_seconds_bucket"}
