"""`kubectl tenant` against a real Ready tenant: status, rotate, suspend, resume, list."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

from . import kube
from .kube import eventually, get, kubectl, tenant_yaml

NAME = "plugin-a"


def plugin(*args: str, via_kubectl: bool = True) -> str:
    cmd = ["kubectl", "tenant", *args] if via_kubectl else ["kubectl-tenant", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(cmd)}: {result.stderr}"
    return result.stdout


def _phase(name: str) -> str | None:
    return ((get("tenant", name) or {}).get("status") or {}).get("phase")


def test_plugin_commands_on_a_ready_tenant(operator, cleanup_tenants):
    cleanup_tenants.append(NAME)
    kube.apply(tenant_yaml(NAME))
    kubectl("wait", "--for=condition=Ready", f"tenant/{NAME}", "--timeout=60s", timeout=70)

    for via_kubectl in (True, False):
        out = plugin("status", NAME, via_kubectl=via_kubectl)
        assert out.splitlines()[0] == f"Tenant {NAME}"
        assert "Phase: Ready   Ready: True   State: Active" in out
        assert f"Namespace: tenant-{NAME}" in out
        row = next(line.split() for line in out.splitlines() if line.strip().startswith("Namespace "))
        assert row[1:3] == ["ok", "Succeeded"], out
        assert "\033[" not in out, "no colours when stdout is not a terminal"

    before = datetime.now(UTC).replace(microsecond=0)
    assert "rotation requested" in plugin("rotate", NAME)
    stamp = get("tenant", NAME)["metadata"]["annotations"]["tenancy.dev/rotate"]
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) >= before
    # The request starts a pass of the update handler at once (kopf records what that handler saw in
    # its diff base), not only the next verify pass.
    eventually(lambda: stamp in get("tenant", NAME)["metadata"]["annotations"].get(
        "tenancy.dev/last-handled-configuration", ""), 60, message="the update handler handled the request")

    plugin("suspend", NAME)
    assert get("tenant", NAME)["spec"]["state"] == "Suspended"
    eventually(lambda: _phase(NAME) == "Suspended", 60, message="phase Suspended")
    assert "Phase: Suspended   Ready: True   State: Suspended" in plugin("status", NAME)

    plugin("resume", NAME)
    assert get("tenant", NAME)["spec"]["state"] == "Active"
    eventually(lambda: _phase(NAME) == "Ready", 60, message="phase Ready again")

    listing = plugin("list")
    assert any(line.split()[:3] == [NAME, "Ready", "True"] for line in listing.splitlines())
    assert re.fullmatch(r"\d+ tenants?: \d+ Ready(, \d+ \w+)*", listing.splitlines()[-1]), listing


def test_plugin_reports_a_missing_tenant_as_an_error(platform):
    result = subprocess.run(["kubectl-tenant", "status", "no-such-tenant"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "not found" in result.stderr
