"""Exports made by tenant owners are bounded per tenant (review finding, issues 13 and 16).

A tenant owner may create `export` WorkflowRuns in the tenant namespace and delete them again (which
frees the run quota), so without a bound their archives piled up in the store until retention (30
days by default). LifecyclePolicy `ownerExportsKept` (default 1) keeps the newest that many owner
exports per tenant; older ones are purged once a new one is published, with an Event on the Tenant.
Exports run from the operator's namespace never count. Real OpenBao (the data key is wrapped by the
tenant's transit key) and the real archive store of the e2e operator.
"""

from __future__ import annotations

import json
import shutil

from . import kube
from .conftest import ARCHIVE_DIR
from .kube import eventually, get, kubectl, tenant_yaml


def _export(name: str, ns: str, run: str) -> str:
    """Run an export from `ns` to its end; the archive id (the run is deleted after, as an owner may)."""
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": run, "namespace": ns},
            "spec": {"tenant": name, "workflow": "export", "parameters": {}}}
    kubectl("create", "-f", "-", input=json.dumps(body))
    st = eventually(lambda: ((get("workflowrun", run, ns) or {}).get("status") or {})
                    if ((get("workflowrun", run, ns) or {}).get("status") or {}).get("phase") in ("Succeeded", "Failed")
                    else None, 60, 1, f"export {run} done")
    assert st["phase"] == "Succeeded", st
    kubectl("delete", "workflowrun", run, "-n", ns)
    return st["outputs"]["archive"]


def _kept(ids: list[str]) -> list[str]:
    return [a for a in ids if (ARCHIVE_DIR / a / "manifest.json").exists()]


def _pruned_events(name: str) -> list[str]:
    events = kube.object_events("Tenant", name, namespace="default", reason="OwnerExportsPruned")
    return [e.get("message", "") for e in events]


def test_owner_exports_pile_up(backends, operator, cleanup_tenants):
    name = "rv1e"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, vault={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    made = [_export(name, f"tenant-{name}", f"rv1e-{i}") for i in range(3)]
    try:
        # No LifecyclePolicy: ownerExportsKept 1, so only the newest owner export is kept.
        assert _kept(made) == made[-1:], _kept(made)
        events = eventually(lambda: _pruned_events(name), 20, 1, "Event OwnerExportsPruned")
        assert any(made[0] in e for e in events), events
    finally:
        for archive_id in made:
            shutil.rmtree(ARCHIVE_DIR / archive_id, ignore_errors=True)


def test_owner_exports_kept_counts_only_the_owners_exports(backends, operator, cleanup_tenants):
    name, policy = "rv1k", "rv1k-keep-two"
    cleanup_tenants.append(name)
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": policy},
                           "spec": {"reclaim": "Delete", "ownerExportsKept": 2}}))
    kube.apply(tenant_yaml(name, vault={"enabled": True}, lifecyclePolicyRef=policy))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    platform = _export(name, "tenancy-system", "rv1k-platform")
    owners = [_export(name, f"tenant-{name}", f"rv1k-{i}") for i in range(3)]
    try:
        assert _kept([platform, *owners]) == [platform, *owners[1:]]
        refused = kubectl("apply", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": policy},
             "spec": {"reclaim": "Delete", "ownerExportsKept": 0}}))
        assert refused.returncode != 0 and "ownerExportsKept" in refused.stderr, refused.stderr
    finally:
        for archive_id in [platform, *owners]:
            shutil.rmtree(ARCHIVE_DIR / archive_id, ignore_errors=True)
