"""`kubectl tenant archives|archive|restore`: the table, and the spec each command writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from tenancy_operator.cli import archives, kubeapi, main


def _archive(root, archive_id: str, tenant: str, created: str, expires: str, size: int) -> None:
    folder = root / archive_id
    folder.mkdir()
    (folder / "postgres.dump.enc").write_bytes(b"x" * size)
    (folder / "manifest.json").write_text(json.dumps({"tenant": tenant, "createdAt": created, "expiresAt": expires,
                                                      "backends": {"postgres": {}, "vault": {}}}))


def test_archives_table_lists_complete_archives_with_size_age_tenant_and_expiry(tmp_path):
    _archive(tmp_path, "acme-1", "acme", "2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z", 3000)
    _archive(tmp_path, "beta-1", "beta", "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z", 10)
    (tmp_path / ".staging-acme-2").mkdir()  # an export in progress is not an archive
    text = archives.table(archives.read(str(tmp_path)), datetime(2026, 1, 2, tzinfo=UTC))
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "TENANT", "SIZE", "AGE", "EXPIRES", "PARTS"]
    assert lines[1].split()[:2] == ["acme-1", "acme"] and "in 29d" in lines[1] and "postgres,vault" in lines[1]
    assert "due" in lines[2]
    assert lines[-1].startswith("2 archives")


def test_archives_without_a_store_is_an_error(monkeypatch, capsys):
    monkeypatch.delenv("TENANCY_ARCHIVE_DIR", raising=False)
    assert main.main(["archives"]) == 1
    assert "TENANCY_ARCHIVE_DIR" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "spec"), [
    (["archive", "acme"], {"state": "Archived"}),
    (["restore", "acme", "--from", "acme-1"], {"state": "Active", "restoreFrom": {"archive": "acme-1", "overwrite": False}}),
    (["restore", "acme", "--from", "acme-1", "--overwrite"],
     {"state": "Active", "restoreFrom": {"archive": "acme-1", "overwrite": True}}),
])
def test_archive_and_restore_write_the_spec(monkeypatch, argv, spec):
    seen = []
    monkeypatch.setattr(kubeapi.Kubectl, "tenant_exists", lambda self, name: True)
    monkeypatch.setattr(kubeapi.Kubectl, "patch_tenant_spec", lambda self, name, s: seen.append((name, s)))
    assert main.main(argv) == 0
    assert seen == [("acme", spec)]


def test_restore_into_a_new_tenant_creates_it_with_the_archived_spec(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "acme-20261203-160000-abcdef"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"spec": {
        "state": "Archived", "postgres": {"enabled": True, "backend": "pg-a"}, "vault": {"enabled": True},
        "adoptRetainedData": True, "restoreFrom": {"archive": "older"}, "lifecyclePolicyRef": "keep"}}))
    created = []
    monkeypatch.setattr(kubeapi.Kubectl, "tenant_exists", lambda self, name: False)
    monkeypatch.setattr(kubeapi.Kubectl, "create_tenant", lambda self, name, s: created.append((name, s)))
    assert main.main(["restore", "acme2", "--from", folder.name, "--dir", str(tmp_path)]) == 0
    assert created == [("acme2", {"postgres": {"enabled": True, "backend": "pg-a"}, "vault": {"enabled": True},
                                  "lifecyclePolicyRef": "keep", "state": "Active",
                                  "restoreFrom": {"archive": folder.name, "overwrite": False}})]
    monkeypatch.delenv("TENANCY_ARCHIVE_DIR", raising=False)
    assert main.main(["restore", "acme3", "--from", folder.name]) == 1  # no store to read the spec from
    assert "--dir" in capsys.readouterr().err
    assert main.main(["restore", "acme3", "--from", "gone-1", "--dir", str(tmp_path)]) == 1


def test_status_shows_archive_and_restore_progress():
    from tenancy_operator.cli import render
    tenant = {"metadata": {"name": "acme", "generation": 1}, "spec": {},
              "status": {"observedGeneration": 1,
                         "archive": {"id": "acme-1", "state": "Exporting", "bytesDone": 3 << 20, "bytesTotal": 12 << 20},
                         "restore": {"archive": "old-1", "state": "Done", "bytesDone": 100, "bytesTotal": 100}}}
    text = render.status_text(tenant, datetime(2026, 12, 3, tzinfo=UTC))
    assert "Archive: acme-1 Exporting, 25% (3.0 MiB of 12.0 MiB)" in text
    assert "Restore: from old-1 Done, 100% (100 B of 100 B)" in text


def test_expiry_follows_the_lifecycle_policys_retention_now_as_the_purge_does(tmp_path):
    """A retention changed after the export moves the purge (archive_purge); the EXPIRES column says so."""
    for archive_id, policy in (("acme-1", "keep"), ("beta-1", "gone"), ("gamma-1", None)):
        folder = tmp_path / archive_id
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({
            "tenant": archive_id[:-2], "createdAt": "2026-01-01T00:00:00Z", "expiresAt": "2026-01-31T00:00:00Z",
            "retention": "720h", "lifecyclePolicy": policy, "backends": {}}))
    policies = {"keep": {"spec": {"retention": "2160h"}}}  # 90 days now; "gone" was deleted
    rows = {r["id"]: r for r in archives.with_current_retention(archives.read(str(tmp_path)), policies)}
    assert rows["acme-1"]["expiresAt"] == "2026-04-01T00:00:00Z" and rows["acme-1"]["retention"] == "2160h"
    assert rows["beta-1"]["expiresAt"] == rows["gamma-1"]["expiresAt"] == "2026-01-31T00:00:00Z"
    text = archives.table(list(rows.values()), datetime(2026, 2, 15, tzinfo=UTC))
    assert "in 45d" in text.splitlines()[1] and "due" in text.splitlines()[2]
