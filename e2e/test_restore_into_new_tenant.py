"""Restore into a Tenant that does not exist yet (`kubectl tenant restore NEW --from ID`), from an
owner's export of a tenant since deleted (review finding, issues 13 and 16).

Nothing transient may look Stalled: a Tenant created to be restored must never show Stalled (terminal,
needs a person) on its way to Done, least of all RestoreRefused saying it "does not enable" services its
spec enables. Real PostgreSQL, Redis and OpenBao; the plugin as a person runs it.
"""

from __future__ import annotations

import json
import os
import subprocess

from . import kube
from .conftest import ARCHIVE_DIR
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
POLICY = "rv1-delete"
SRC = ("rv1s-" + "a" * 60)[:55]
DST = ("rv1d-" + "a" * 60)[:55]


def _gone(name: str) -> None:
    if get("tenant", name) is not None:
        kubectl("delete", "tenant", name, "--wait=false")
        eventually(lambda: get("tenant", name) is None, 120, 1, f"tenant {name} deleted")


def test_export_delete_then_plugin_restore_into_a_new_tenant(backends, operator, cleanup_tenants):
    _gone(SRC)
    _gone(DST)
    cleanup_tenants += [SRC, DST]
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                           "metadata": {"name": POLICY}, "spec": {"reclaim": "Delete", "retention": "1h"}}))
    kube.apply(tenant_yaml(SRC, lifecyclePolicyRef=POLICY, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{SRC}", "--timeout=120s", timeout=130)
    creds = credentials(SRC)
    pg(creds, "CREATE TABLE t(id int primary key, v text)")
    pg(creds, "INSERT INTO t VALUES (1, 'kept')")
    redis_client(creds).set(f"t:{SRC}:k", "v")

    ns = f"tenant-{SRC}"
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": "rv1-exp", "namespace": ns},
            "spec": {"tenant": SRC, "workflow": "export", "parameters": {}}}
    kubectl("create", "-f", "-", input=json.dumps(body))
    status = eventually(lambda: ((get("workflowrun", "rv1-exp", ns) or {}).get("status") or {})
                        if ((get("workflowrun", "rv1-exp", ns) or {}).get("status") or {}).get("phase")
                        in ("Succeeded", "Failed", "Cancelled") else None, 180, 1, "export finished")
    print("export status", json.dumps(status)[:1500])
    assert status["phase"] == "Succeeded", status
    archive_id = status["outputs"]["archive"]

    # The source goes (reclaim Delete): is the export it made still restorable?
    _gone(SRC)
    out = subprocess.run(["kubectl-tenant", "restore", DST, "--from", archive_id, "--dir", str(ARCHIVE_DIR)],
                         capture_output=True, text=True, timeout=60, env=os.environ)
    print("plugin:", out.returncode, out.stdout[-800:], out.stderr[-800:])
    assert out.returncode == 0

    seen_stalled: list[str] = []

    def restored():
        tenant = get("tenant", DST) or {}
        st = tenant.get("status") or {}
        stalled = kube.condition(tenant, "Stalled")
        if stalled.get("status") == "True":
            msg = f"{stalled.get('reason')}: {stalled.get('message')}"
            if msg not in seen_stalled:
                seen_stalled.append(msg)
        return st if (st.get("restore") or {}).get("state") == "Done" else None

    result = eventually(restored, 150, 1, "restore done")
    print("restore result", json.dumps(result.get("restore")), "stalled on the way:", seen_stalled)
    creds = credentials(DST)
    assert [r["v"] for r in pg(creds, "SELECT v FROM t WHERE id = 1")] == ["kept"]
    # A tenant created to be restored must never say Stalled (terminal, needs a human) on its way to Done,
    # least of all that it "does not enable" services its spec enables.
    assert seen_stalled == []
