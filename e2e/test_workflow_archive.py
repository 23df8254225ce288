"""The export, restore and offboard workflows (issue 16 on the lifecycle archive of issue 13), on the real
PostgreSQL, Redis and OpenBao, with the archive store of conftest.ARCHIVE_DIR read directly.

export keeps the tenant Ready and leaves an archive that verifies with the tenant's transit key;
offboard suspends, archives and deletes a tenant, and restore (a second run) loads that archive into a
new Tenant of another name; restore of a tampered archive fails naming the file and leaves the tenant
as it was."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from tenancy_operator.backends import archive, archive_store

from . import kube
from .admin import pg_databases, vault_admin
from .conftest import ARCHIVE_DIR
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
OPERATOR_NS = "tenancy-system"
POLICY = "wfx-delete"
EXPORTED: dict[str, str] = {}
"""tenant -> the archive the export test made (the tamper test spoils it)."""


@pytest.fixture(scope="module", autouse=True)
def _runs_removed():
    """The runs go with the module: another checkout's operator would act on them (and restamp them)."""
    yield
    for ns, name in RUNS:
        kubectl("delete", "workflowrun", name, "-n", ns, "--ignore-not-found", "--wait=false", check=False)


RUNS: list[tuple[str, str]] = []


def _fresh(*names: str) -> None:
    for name in names:
        if get("tenant", name) is not None:
            kubectl("delete", "tenant", name, "--wait=false")
            eventually(lambda n=name: get("tenant", n) is None, 120, 1, f"tenant {name} deleted")


def _ready(*names: str) -> None:
    # reclaim Delete: a rerun of these tests starts from nothing (Retain would keep data under the names)
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                           "metadata": {"name": POLICY}, "spec": {"reclaim": "Delete", "retention": "24h"}}))
    for name in names:
        kube.apply(tenant_yaml(name, lifecyclePolicyRef=POLICY, **FULL))
    kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], "--timeout=120s", timeout=130)


def _run(ns: str, tenant: str, workflow: str, name: str, timeout: float = 180, **params: str) -> dict:
    """Create a WorkflowRun and wait until it is finished; returns its status."""
    kubectl("delete", "workflowrun", name, "-n", ns, "--ignore-not-found")
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": name, "namespace": ns},
            "spec": {"tenant": tenant, "workflow": workflow, "parameters": params}}
    kubectl("create", "-f", "-", input=json.dumps(body))
    RUNS.append((ns, name))

    def finished() -> dict | None:
        status = (get("workflowrun", name, ns) or {}).get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed", "Cancelled") else None

    return eventually(finished, timeout, 1, f"workflowrun {ns}/{name} finished")


async def _unwrap(manifest: dict) -> bytes:
    encryption = manifest["encryption"]
    return base64.b64decode(vault_admin().secrets.transit.decrypt_data(
        name=encryption["wrappingKey"]["name"], ciphertext=encryption["wrappedKey"],
        mount_point="transit")["data"]["plaintext"])


def _verified(archive_id: str) -> dict:
    """Every file's size and sha256, the data key, the manifest's seal and every chunk, as restore checks them."""
    checked = asyncio.run(archive.verify(archive_store.DirectoryStore(ARCHIVE_DIR), archive_id, _unwrap))
    checked.workdir.cleanup()
    return checked.manifest


def _archives_of(tenant: str) -> set[str]:
    return {p.name for p in ARCHIVE_DIR.iterdir() if (p / "manifest.json").is_file()
            and json.loads((p / "manifest.json").read_text())["tenant"] == tenant} if ARCHIVE_DIR.is_dir() else set()


def _seed(tenant: str) -> None:
    creds = credentials(tenant)
    pg(creds, "CREATE TABLE kept (id int PRIMARY KEY, v text)")
    pg(creds, "INSERT INTO kept VALUES (1, 'row one')")
    redis_client(creds).set(creds["REDIS_KEY_PREFIX"] + "greeting", "hello")


def test_export_keeps_the_tenant_ready_and_its_archive_verifies(backends, operator, cleanup_tenants):
    name = "wfx-exp"
    _fresh(name)  # deleted by the next test, which uses its archive
    _ready(name)
    _seed(name)
    before = _archives_of(name)
    # tenant-safe: run from the tenant's own namespace
    status = _run(f"tenant-{name}", name, "export", "export-1")
    assert status["phase"] == "Succeeded", status
    archive_id = status["outputs"]["archive"]
    assert _archives_of(name) - before == {archive_id}  # exactly one archive, the one the run reports
    assert status["outputs"]["location"].endswith(archive_id) and int(status["outputs"]["bytes"]) > 0
    manifest = _verified(archive_id)
    assert manifest["tenant"] == name and set(manifest["files"]) == {"postgres.dump.enc", "redis.jsonl.enc",
                                                                      "kv.json.enc", "configmaps.json.enc"}
    tenant = get("tenant", name)
    assert condition(tenant, "Ready")["status"] == "True" and tenant["status"]["phase"] == "Ready"
    assert (tenant["status"].get("archive") or {}).get("state") != "Released"
    creds = credentials(name)  # the live data is still there and served
    assert pg(creds, "SELECT v FROM kept WHERE id = 1")[0]["v"] == "row one"
    assert redis_client(creds).get(creds["REDIS_KEY_PREFIX"] + "greeting") == "hello"
    EXPORTED[name] = archive_id


def test_restore_of_a_tampered_archive_fails_naming_the_file(backends, operator, cleanup_tenants):
    name = "wfx-exp"
    if name not in EXPORTED:
        pytest.fail("needs the archive of test_export_keeps_the_tenant_ready_and_its_archive_verifies")
    archive_id = EXPORTED[name]
    cleanup_tenants.append(name)
    target = ARCHIVE_DIR / archive_id / "postgres.dump.enc"
    changed = bytearray(target.read_bytes())
    changed[len(changed) // 2] ^= 0x01
    target.write_bytes(bytes(changed))
    creds = credentials(name)
    pg(creds, "UPDATE kept SET v = 'changed since the export' WHERE id = 1")
    status = _run(OPERATOR_NS, name, "restore", "wfx-restore-tampered", archive=archive_id, overwrite="true")
    assert status["phase"] == "Failed", status
    assert "ArchiveTampered" in status["message"] and "postgres.dump.enc" in status["message"], status["message"]
    steps = {s["name"]: s["phase"] for s in status["steps"]}
    assert steps == {"check-archive": "Compensated", "request-restore": "Compensated", "wait-restored": "Failed"}
    # Nothing was written, and the request is taken back: the tenant is Ready again with its own data.
    eventually(lambda: "restoreFrom" not in get("tenant", name)["spec"]
               and condition(get("tenant", name), "Ready")["status"] == "True", 60, 1, "tenant Ready again")
    assert pg(creds, "SELECT v FROM kept WHERE id = 1")[0]["v"] == "changed since the export"


def test_offboard_then_restore_into_another_tenant(backends, operator, cleanup_tenants):
    src, dst = "wfx-off", "wfx-back"
    _fresh(src, dst)
    cleanup_tenants += [dst, src]
    _ready(src)
    _seed(src)
    before = _archives_of(src)
    status = _run(OPERATOR_NS, src, "offboard", "wfx-offboard", timeout=240)
    assert status["phase"] == "Succeeded", status
    assert [s["name"] for s in status["steps"]] == ["prepare", "suspend", "archive", "delete"]
    archive_id = status["outputs"]["archive"]
    assert _archives_of(src) - before == {archive_id}  # one archive: the delete reused it
    assert get("tenant", src) is None
    assert "t_wfx_off" not in pg_databases("t_wfx_off")  # the live data is released
    _verified(archive_id)

    _ready(dst)
    status = _run(OPERATOR_NS, dst, "restore", "wfx-restore", archive=archive_id)
    assert status["phase"] == "Succeeded", status
    tenant = get("tenant", dst)
    assert tenant["status"]["restore"]["archive"] == archive_id and tenant["status"]["restore"]["state"] == "Done"
    creds = credentials(dst)
    assert pg(creds, "SELECT v FROM kept WHERE id = 1")[0]["v"] == "row one"
    assert redis_client(creds).get(creds["REDIS_KEY_PREFIX"] + "greeting") == "hello"
    assert condition(tenant, "Ready")["status"] == "True"


def test_export_killed_mid_run_makes_one_archive(backends, operator, cleanup_tenants):
    """SIGKILL of the operator as soon as the id is recorded (the export is running or just done): after the
    restart the run ends Succeeded with exactly that one archive, and no staging folder is left."""
    name = "wfx-kill"
    _fresh(name)
    cleanup_tenants.append(name)
    _ready(name)
    creds = credentials(name)
    pg(creds, "CREATE TABLE bulk AS SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) i")
    before = _archives_of(name)
    ns, run = f"tenant-{name}", "export-kill"
    kubectl("delete", "workflowrun", run, "-n", ns, "--ignore-not-found")
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun", "metadata": {"name": run, "namespace": ns},
        "spec": {"tenant": name, "workflow": "export"}}))
    RUNS.append((ns, run))
    eventually(lambda: ((get("workflowrun", run, ns) or {}).get("status") or {}).get("currentStep") == "export",
               60, 0.1, "the export step started")
    operator.kill()
    reserved = get("workflowrun", run, ns)["status"]["outputs"]["archive"]
    operator.start()
    done = eventually(lambda: (s := (get("workflowrun", run, ns) or {}).get("status") or {}).get("phase")
                      in ("Succeeded", "Failed") and s, 180, 1, "the run finished after the restart")
    assert done["phase"] == "Succeeded", done
    assert done["outputs"]["archive"] == reserved
    assert _archives_of(name) - before == {reserved}, "one archive, under the id recorded before the export"
    assert not [p.name for p in ARCHIVE_DIR.iterdir() if p.name.startswith(f".staging-{name}-")]
    _verified(reserved)
