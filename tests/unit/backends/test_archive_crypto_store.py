"""Archive envelope encryption and the directory store (no servers: the transit wrap is a stand-in key)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tenancy_operator.backends import archive, archive_store
from tenancy_operator.backends import archive_crypto as crypto


def _roundtrip(data: bytes, key: bytes, name: str = "f.enc") -> bytes:
    sealed = io.BytesIO()
    assert crypto.encrypt_file(io.BytesIO(data), sealed, key, "a-1", name) == len(data)
    return sealed.getvalue()


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, crypto.CHUNK * 2 + 5])
def test_chunked_gcm_round_trips_every_size(size):
    key = crypto.new_data_key()
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert crypto.decrypt_bytes(_roundtrip(data, key), key, "a-1", "f.enc") == data


def test_another_key_a_changed_byte_a_cut_or_a_moved_file_is_refused():
    key = crypto.new_data_key()
    sealed = _roundtrip(b"y" * (crypto.CHUNK + 10), key)
    with pytest.raises(crypto.Tampered, match="f.enc: chunk 0 fails authentication"):
        crypto.decrypt_bytes(sealed, crypto.new_data_key(), "a-1", "f.enc")  # another tenant's data key
    flipped = bytearray(sealed)
    flipped[100] ^= 1
    with pytest.raises(crypto.Tampered, match="f.enc"):
        crypto.decrypt_bytes(bytes(flipped), key, "a-1", "f.enc")
    first_chunk = 4 + 12 + crypto.CHUNK + 16
    with pytest.raises(crypto.Tampered, match="chunk 0"):  # the last chunk cut off: chunk 0 was not last
        crypto.decrypt_bytes(sealed[:first_chunk], key, "a-1", "f.enc")
    with pytest.raises(crypto.Tampered):
        crypto.decrypt_bytes(sealed, key, "a-1", "other.enc")
    with pytest.raises(crypto.Tampered):
        crypto.decrypt_bytes(sealed, key, "a-2", "f.enc")


def test_manifest_mac_catches_an_edited_checksum():
    key = crypto.new_data_key()
    manifest = {"id": "a-1", "files": {"f.enc": {"sha256": "00"}}}
    manifest["manifestMac"] = crypto.manifest_mac(manifest, key)
    crypto.check_manifest_mac(manifest, key)
    manifest["files"]["f.enc"]["sha256"] = "11"
    with pytest.raises(crypto.Tampered, match="manifest.json"):
        crypto.check_manifest_mac(manifest, key)


def _fake_archive(store: archive_store.DirectoryStore, archive_id: str, key: bytes) -> None:
    staging = store.stage(archive_id)
    with (staging / "redis.jsonl.enc").open("wb") as dst:
        crypto.encrypt_file(io.BytesIO(b'{"k": "a"}\n'), dst, key, archive_id, "redis.jsonl.enc")
    size, digest = crypto.sha256_file(staging / "redis.jsonl.enc")
    tenant = archive_store.tenant_of(archive_id) or "t"
    manifest = {"formatVersion": archive.FORMAT_VERSION, "id": archive_id, "tenant": tenant, "tenantUid": "u-1",
                "createdAt": "2026-01-01T00:00:00Z",
                "encryption": {"wrappedKey": "vault:v1:x", "wrappingKey": {"backend": "bao", "mount": "transit",
                                                                           "name": f"tenant-{tenant}"}},
                "files": {"redis.jsonl.enc": {"part": "redis", "size": size, "sha256": digest}}}
    manifest["manifestMac"] = crypto.manifest_mac(manifest, key)
    (staging / archive_store.MANIFEST).write_text(json.dumps(manifest))
    assert store.list() == []  # staged is not listed: it is not complete
    store.publish(archive_id)


def test_store_publishes_verifies_and_purges_manifest_last(tmp_path: Path):
    store = archive_store.DirectoryStore(tmp_path)
    key = crypto.new_data_key()
    t1 = archive_store.new_id("t", datetime(2026, 1, 1, tzinfo=UTC))
    _fake_archive(store, t1, key)
    assert store.list() == [t1]

    async def unwrap(_):
        return key

    verified = asyncio.run(archive.verify(store, t1, unwrap))
    assert verified.plain["redis"].read_bytes() == b'{"k": "a"}\n'
    verified.workdir.cleanup()

    async def wrong(_):
        return crypto.new_data_key()

    with pytest.raises(crypto.Tampered, match="manifest.json"):
        asyncio.run(archive.verify(store, t1, wrong))

    data = store.file(t1, "redis.jsonl.enc")
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(crypto.Tampered, match="^redis.jsonl.enc: size .* sha256"):
        asyncio.run(archive.verify(store, t1, unwrap))
    data.unlink()
    with pytest.raises(crypto.Tampered, match="redis.jsonl.enc: is missing"):
        asyncio.run(archive.verify(store, t1, unwrap))

    assert store.delete(t1) == [archive_store.MANIFEST]
    assert store.list() == [] and not (tmp_path / t1).exists()


def test_a_killed_export_or_purge_is_never_listed_as_complete(tmp_path: Path):
    store = archive_store.DirectoryStore(tmp_path)
    killed = archive_store.new_id("t", datetime(2026, 12, 3, tzinfo=UTC))
    _dead(store.stage(killed))  # an export killed before publish
    assert store.list() == [] and store.clean_staging(tenant="t") == [".staging-" + killed]
    _fake_archive(store, "t-3", crypto.new_data_key())
    (tmp_path / "t-3" / archive_store.MANIFEST).unlink()  # a purge killed after the manifest, before rmdir
    assert store.list() == [] and store.half_purged() == ["t-3"]
    store.delete("t-3")
    assert store.half_purged() == []


def test_ids_and_names_cannot_leave_the_store(tmp_path: Path):
    store = archive_store.DirectoryStore(tmp_path)
    for bad in ("../x", "A", "", ".hidden"):
        with pytest.raises(archive_store.StoreError):
            store.manifest(bad)
    with pytest.raises(archive_store.StoreError):
        store.file("t-1", "../../etc/passwd")


def test_one_tenants_staging_clean_spares_a_tenant_whose_name_extends_it(tmp_path: Path):
    """Tenant `acme` starting an export must not remove the half-written export of `acme-eu` (its
    staging folder `.staging-acme-eu-…` also starts with `acme-`)."""
    store = archive_store.DirectoryStore(tmp_path)
    ours = archive_store.new_id("acme", datetime(2026, 12, 3, 16, 0, tzinfo=UTC))
    _dead(store.stage(ours))
    theirs = archive_store.new_id("acme-eu", datetime(2026, 12, 3, 16, 0, tzinfo=UTC))
    _dead(store.stage(theirs))
    assert store.clean_staging(tenant="acme") == [".staging-" + ours]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-" + theirs]


def _dead(folder: Path, ago: float = 3 * 3600) -> Path:
    """A job folder last touched `ago` seconds back, by a process that is gone."""
    os.utime(folder, (time.time() - ago, time.time() - ago))
    return folder


def test_a_running_export_is_never_cleaned_whatever_its_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An export that runs for more than the stale window (hours, for a big database) keeps its
    staging folder: the cleanup follows its heartbeat, not its age. Once the heartbeat stops and the
    window passes, the folder is removed (by this replica or another that shares the volume)."""
    monkeypatch.setenv("TENANCY_ARCHIVE_STALE_SECONDS", "0.5")
    store = archive_store.DirectoryStore(tmp_path)
    running = archive_store.new_id("big", datetime(2026, 12, 3, tzinfo=UTC))
    folder = _dead(store.stage(running))  # started hours ago...
    beat = archive_store.Heartbeat(folder, every=0.1).start()  # ...and still running in this process
    try:
        assert store.clean_staging() == [] and store.clean_staging(tenant="big") == []
        archive_store._RUNNING.discard(folder)  # as another replica sees it: only the heartbeat's mtime
        time.sleep(0.7)
        assert archive_store.alive(folder) and store.clean_staging() == []
    finally:
        beat.stop()
    time.sleep(0.7)  # the heartbeat stopped (process killed): stale after the window
    assert store.clean_staging() == [".staging-" + running]


def test_a_restore_work_folder_lives_while_its_restore_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TENANCY_ARCHIVE_STALE_SECONDS", "60")
    store = archive_store.DirectoryStore(tmp_path)
    work = archive.Workdir(_dead(store.work("acme")))
    assert store.clean_work() == []  # running here, though untouched for hours
    work.cleanup()
    assert not (tmp_path / ".work-acme").exists()
    killed = _dead(store.work("acme-eu"))  # a restore killed hours ago
    assert store.clean_work() == [".work-acme-eu"] and not killed.exists()
    again = store.work("acme")
    (again / "x").write_text("a killed run's clear data")
    assert list(store.work("acme").iterdir()) == []  # the rerun replaces it, nothing left behind
