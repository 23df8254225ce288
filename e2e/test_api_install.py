"""The API as CRDs on the real API server: kinds served, docs explained, bad input refused at apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from .kube import REPO, kubectl

KINDS = {"Tenant", "Backend", "CachePolicy", "TenantSessionPolicy", "LifecyclePolicy", "WorkflowRun"}
INVALID = sorted((REPO / "examples" / "invalid").glob("*.yaml"))
VALID = sorted((REPO / "examples").glob("*.yaml"))


def test_api_resources_lists_the_six_kinds(crds):
    out = kubectl("api-resources", "--api-group=tenancy.dev", "-o", "wide").stdout
    kinds = {word for line in out.splitlines()[1:] for word in line.split() if word in KINDS}
    assert kinds == KINDS, out
    assert "tn" in out and "wfr" in out


def test_explain_shows_field_docs(crds):
    out = kubectl("explain", "tenant.spec").stdout
    assert "Who administers the tenant namespace" in out
    assert "postgres" in out and "autoscaling" in out
    deeper = kubectl("explain", "tenant.spec.postgres.connectionLimit").stdout
    assert "CONNECTION LIMIT" in deeper


def test_category_lists_everything(crds):
    result = kubectl("get", "tenancy", "-A")
    assert result.returncode == 0


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <message>'"
    return first[len("# expect: "):]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_refused_with_its_message(crds, path):
    result = kubectl("apply", "--dry-run=server", "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert _expected(path) in result.stderr, result.stderr


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_passes_server_dry_run(crds, path):
    kubectl("apply", "--dry-run=server", "-f", str(path))
