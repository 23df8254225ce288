"""The operator's alerts through promtool: the plain rules file and the chart's PrometheusRule are the
same rules, each valid, and each alert has a firing and a silent case that promtool evaluates with
Prometheus's own engine (e2e/alerts/alerts_test.yaml). No operator and no platform server is needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from .kube import REPO
from .test_install_chart import _render

RULES = REPO / "charts" / "tenancy-operator" / "files" / "alerts.rules.yaml"
TESTS = REPO / "e2e" / "alerts" / "alerts_test.yaml"
ISSUE_ALERTS = {"TenantNotReady", "TenancyBackendUnavailable", "TenancyBackendCircuitOpen", "TenantCredentialRotationOverdue",
                "TenantIsolationBreached", "TenancyAuditChainBroken", "TenantDemandAnomaly", "TenancyReconcileErrorsRising",
                "TenancyOperatorDown"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool not found (platform/install.sh installs Debian's prometheus package, which ships it)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def alerts(groups: list[dict]) -> dict[str, dict]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_plain_rules_file_passes_promtool_check():
    run = promtool("check", "rules", str(RULES))
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(alerts(yaml.safe_load(RULES.read_text())["groups"])) == ISSUE_ALERTS


def test_every_alert_has_a_firing_and_a_silent_case():
    spec = yaml.safe_load(TESTS.read_text())
    cases = [c for t in spec["tests"] for c in t.get("alert_rule_test", [])]
    for name in ISSUE_ALERTS:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name}: no firing case"
        assert any(not c["exp_alerts"] for c in mine), f"{name}: no silent case"


def test_promtool_unit_tests_pass_on_the_plain_file():
    run = promtool("test", "rules", str(TESTS))
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_unit_tests_fail_on_a_wrong_threshold(tmp_path: Path):
    """The tests can fail: TenantNotReady after 20 minutes instead of 10 breaks its firing case."""
    groups = yaml.safe_load(RULES.read_text())
    alerts(groups["groups"])["TenantNotReady"]["for"] = "20m"
    (tmp_path / "alerts.rules.yaml").write_text(yaml.safe_dump(groups))
    spec = yaml.safe_load(TESTS.read_text()) | {"rule_files": ["alerts.rules.yaml"]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    run = promtool("test", "rules", str(tmp_path / "t.yaml"))
    assert run.returncode != 0 and "TenantNotReady" in run.stdout + run.stderr, run.stdout


def test_chart_prometheusrule_is_the_plain_file_and_passes_the_same_tests(platform, tmp_path: Path):
    docs = yaml.safe_load_all(_render("--api-versions", "monitoring.coreos.com/v1"))
    rule = next(d for d in docs if d and d.get("kind") == "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    (tmp_path / "alerts.rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    spec = yaml.safe_load(TESTS.read_text()) | {"rule_files": ["alerts.rules.yaml"]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    run = promtool("test", "rules", str(tmp_path / "t.yaml"))
    assert run.returncode == 0, run.stdout + run.stderr
    other = yaml.safe_load_all(helm_template_release("other"))
    other_rule = next(d for d in other if d and d.get("kind") == "PrometheusRule")
    down = alerts(other_rule["spec"]["groups"])["TenancyOperatorDown"]["expr"]
    assert 'job="other-tenancy-operator-metrics"' in down, down


def helm_template_release(release: str) -> str:
    from .test_install_chart import CHART, NAMESPACE, helm

    return helm("template", release, str(CHART), "--namespace", NAMESPACE,
                "--api-versions", "monitoring.coreos.com/v1").stdout


def test_the_plain_files_job_is_the_charts_and_the_local_platforms():
    """TenancyOperatorDown names one job: the chart's metrics Service for release `tenancy-operator` (a
    ServiceMonitor's job is the Service's name) and the local Prometheus's scrape job; else it fires forever."""
    down = alerts(yaml.safe_load(RULES.read_text())["groups"])["TenancyOperatorDown"]["expr"]
    assert 'up{job="tenancy-operator-metrics"}' in down, down
    service = next(d for d in yaml.safe_load_all(helm_template_release("tenancy-operator"))
                   if d and d.get("kind") == "Service" and d["metadata"]["name"].endswith("-metrics"))
    assert service["metadata"]["name"] == "tenancy-operator-metrics"
    platform_jobs = re.findall(r"job_name: (\S+)", (REPO / "platform" / "up.sh").read_text())
    assert "tenancy-operator-metrics" in platform_jobs, platform_jobs
