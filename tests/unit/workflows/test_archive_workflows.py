"""export, restore and offboard: step lists, parameters, and the decisions each step makes on a fake
Kubernetes API. The archive itself and the servers are exercised in e2e/test_workflow_archive.py."""

from __future__ import annotations

import asyncio
import copy

import pytest
from tenancy_operator.workflows import archive, offboard, registry
from tenancy_operator.workflows.engine import StepContext, StepFailed


class FakeKube:
    def __init__(self, tenant: dict | None, policy: dict | None = None) -> None:
        self.tenant, self.policy, self.patches, self.deleted = tenant, policy, [], []

    async def get(self, kind, name, namespace=None):
        if kind == "Tenant":
            return copy.deepcopy(self.tenant)
        return self.policy if kind == "LifecyclePolicy" else None

    async def merge_patch(self, kind, name, namespace, patch, subresource=None, field_manager=None):
        self.patches.append(patch)
        for k, v in patch.get("spec", {}).items():
            if v is None:
                self.tenant["spec"].pop(k, None)
            else:
                self.tenant["spec"][k] = v
        return self.tenant

    async def delete(self, kind, name, namespace=None):
        self.deleted.append(name)
        self.tenant = None
        return True


class Services:
    def __init__(self, kube: FakeKube) -> None:
        self.kube, self.poll, self.exported = kube, 0.0, []

    async def export_archive(self, tenant, archive_id):
        self.exported.append(archive_id)
        return {"id": archive_id, "location": f"dir:///a/{archive_id}", "bytes": 10, "expiresAt": "2027-01-01T00:00:00Z"}


def _tenant(**spec) -> dict:
    return {"metadata": {"name": "acme", "uid": "u1", "generation": 1}, "spec": {"state": "Active", **spec},
            "status": {"placement": {"postgres": "pg", "vault": "bao"}, "observedGeneration": 1}}


def _ctx(kube: FakeKube, params: dict | None = None, outputs: dict | None = None) -> StepContext:
    return StepContext(run="r1", tenant="acme", params=params or {}, outputs=outputs or {}, services=Services(kube))


def test_registered_with_their_steps_and_undos():
    assert {"export", "restore", "offboard"} <= set(registry.WORKFLOWS)
    shape = {w: [(s.name, s.compensate is not None) for s in registry.steps_for(w, p)]
             for w, p in (("export", {}), ("restore", {"archive": "acme-1"}), ("offboard", {}))}
    assert shape == {
        "export": [("reserve-id", False), ("export", True)],
        "restore": [("check-archive", False), ("request-restore", True), ("wait-restored", False)],
        "offboard": [("prepare", False), ("suspend", True), ("archive", True), ("delete", False)],
    }


@pytest.mark.parametrize(("workflow", "params", "text"), [
    ("export", {"x": "1"}, "no parameters"),
    ("offboard", {"x": "1"}, "no parameters"),
    ("restore", {}, "needs the parameter archive"),
    ("restore", {"archive": "../etc"}, "not an archive id"),
    ("restore", {"archive": "a-1", "overwrite": "yes"}, "true or false"),
    ("restore", {"archive": "a-1", "into": "b"}, "not into"),
])
def test_bad_parameters_are_refused(workflow, params, text):
    with pytest.raises(ValueError, match=text):
        registry.steps_for(workflow, params)


def test_export_reserves_the_id_once_and_the_export_uses_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    kube = FakeKube(_tenant())
    first = asyncio.run(archive._reserve(_ctx(kube)))
    assert first["archive"].startswith("acme-")
    again = asyncio.run(archive._reserve(_ctx(kube, outputs=first)))  # a rerun keeps the recorded id
    assert again == first
    ctx = _ctx(kube, outputs=first)
    out = asyncio.run(archive._export(ctx))
    assert out["archive"] == first["archive"] and ctx.services.exported == [first["archive"]] and not kube.patches


def test_export_refuses_a_released_tenant(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    tenant = _tenant()
    tenant["status"]["archive"] = {"id": "acme-old", "state": "Released"}
    with pytest.raises(StepFailed, match="acme-old"):
        asyncio.run(archive._reserve(_ctx(FakeKube(tenant))))


def test_export_undo_removes_the_folder_and_its_staging(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    (tmp_path / "acme-1").mkdir()
    (tmp_path / "acme-1" / "manifest.json").write_text("{}")
    (tmp_path / ".staging-acme-1").mkdir()
    (tmp_path / "other-1").mkdir()
    asyncio.run(archive._unexport(_ctx(FakeKube(_tenant()), outputs={"archive": "acme-1"})))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-1"]


def test_restore_request_is_taken_back_only_while_nothing_was_written():
    kube = FakeKube(_tenant())
    ctx = _ctx(kube, {"archive": "old-1", "overwrite": "true"})
    asyncio.run(archive._request_restore(ctx))
    assert kube.tenant["spec"]["restoreFrom"] == {"archive": "old-1", "overwrite": True}
    kube.tenant["status"]["restore"] = {"archive": "old-1", "state": "Loading"}
    asyncio.run(archive._unrequest_restore(ctx))
    assert "restoreFrom" in kube.tenant["spec"]  # writes began: the Tenant handler finishes the load
    kube.tenant["status"].pop("restore")
    asyncio.run(archive._unrequest_restore(ctx))
    assert "restoreFrom" not in kube.tenant["spec"]


def test_restore_into_a_suspended_tenant_is_refused():
    with pytest.raises(StepFailed, match="Suspended"):
        asyncio.run(archive._request_restore(_ctx(FakeKube(_tenant(state="Suspended")), {"archive": "a-1"})))


def test_wait_restored_fails_with_the_tenants_reason_and_message():
    tenant = _tenant(restoreFrom={"archive": "a-1"})
    tenant["status"]["conditions"] = [
        {"type": "RestoreReady", "status": "False", "reason": "ArchiveTampered", "observedGeneration": 1,
         "message": "archive file redis.jsonl.enc: size differs"},
        {"type": "Stalled", "status": "True", "reason": "ArchiveTampered"}]
    with pytest.raises(StepFailed, match="ArchiveTampered.*redis.jsonl.enc"):
        asyncio.run(archive._wait_restored(_ctx(FakeKube(tenant), {"archive": "a-1"})))


@pytest.mark.parametrize(("tenant", "policy", "text"), [
    (_tenant(deletionProtection=True), None, "deletionProtection"),
    (_tenant(lifecyclePolicyRef="keep"), {"spec": {"deletionProtection": True}}, "LifecyclePolicy keep"),
    # The protecting policy was deleted: the label stays (a missing policy never lifts protection).
    ({**_tenant(lifecyclePolicyRef="gone"), "metadata": {"name": "acme", "uid": "u1",
                                                          "labels": {"tenancy.dev/deletion-protected": "true"}}},
     None, "recreate the policy without deletionProtection"),
])
def test_offboard_refuses_a_protected_tenant_before_anything(monkeypatch, tmp_path, tenant, policy, text):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    kube = FakeKube(tenant, policy)
    with pytest.raises(StepFailed, match=text):
        asyncio.run(offboard._prepare(_ctx(kube)))
    assert not kube.patches


def test_offboard_refuses_a_tenant_without_openbao(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    tenant = _tenant()
    tenant["status"]["placement"].pop("vault")
    with pytest.raises(StepFailed, match="OpenBao"):
        asyncio.run(offboard._prepare(_ctx(FakeKube(tenant))))


def test_offboard_undo_resumes_and_loads_back_a_released_archive():
    kube = FakeKube(_tenant(state="Archived"))
    kube.tenant["status"]["archive"] = {"id": "acme-9", "state": "Released"}
    ctx = _ctx(kube, outputs={"stateBefore": "Active"})
    asyncio.run(offboard._unarchive(ctx))
    assert kube.tenant["spec"]["state"] == "Suspended"
    assert kube.tenant["spec"]["restoreFrom"] == {"archive": "acme-9", "overwrite": True}
    asyncio.run(offboard._resume(ctx))
    assert kube.tenant["spec"]["state"] == "Active"


def test_offboard_undo_of_an_archive_that_never_exported_only_resumes():
    kube = FakeKube(_tenant(state="Archived"))
    kube.tenant["status"]["archive"] = {"id": "acme-9", "state": "Exporting"}
    asyncio.run(offboard._unarchive(_ctx(kube, outputs={"stateBefore": "Suspended"})))
    asyncio.run(offboard._resume(_ctx(kube, outputs={"stateBefore": "Suspended"})))
    assert kube.tenant["spec"] == {"state": "Suspended"}  # it was suspended before the run: it stays so
