"""What a restore takes on trust from an archive (backends/archive_checks.py and each part's `check`):
a manifest claiming another tenant than its id, wrapping key and key owner say is refused before the
data key is unwrapped; a name a part would write outside the target tenant is refused before any write.
No servers: the transit unwrap is a stand-in that records which key it was asked for."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from tenancy_operator.api import names
from tenancy_operator.backends import (
    archive,
    archive_checks,
    archive_store,
    kube_export,
    mongodb_export,
    search_export,
    vault_export,
    vault_keys,
)
from tenancy_operator.backends import archive_crypto as crypto
from tenancy_operator.handlers import archive_restore

VICTIM, EVIL = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def _forge(root: Path, archive_id: str, tenant: str, key_name: str, kv: bytes, uid: str = "u",
           mount: str = "transit") -> bytes:
    """An archive as someone who can write the volume and encrypt with transit key `key_name` makes it:
    every checksum, chunk tag and the manifest MAC are right under a data key of their choosing."""
    folder = root / archive_id
    folder.mkdir()
    key, name = crypto.new_data_key(), "kv.json.enc"
    out = io.BytesIO()
    crypto.encrypt_file(io.BytesIO(kv), out, key, archive_id, name)
    (folder / name).write_bytes(out.getvalue())
    manifest = {"formatVersion": 1, "id": archive_id, "tenant": tenant, "tenantUid": uid, "backends": {},
                "encryption": {"wrappedKey": "vault:v1:forged",
                               "wrappingKey": {"backend": "vault-main", "mount": mount, "name": key_name}},
                "files": {name: {"part": "vault", "size": len(out.getvalue()), "sha256": crypto.sha256_file(
                    folder / name)[1]}}}
    manifest["manifestMac"] = crypto.manifest_mac(manifest, key)
    (folder / archive_store.MANIFEST).write_text(json.dumps(manifest))
    return key


def _verify(root: Path, archive_id: str, key: bytes) -> tuple[list[str], archive.Verified | None, Exception | None]:
    asked: list[str] = []

    async def unwrap(manifest):  # transit decrypt: any tenant-* key the operator's token may use
        asked.append(manifest["encryption"]["wrappingKey"]["name"])
        return key

    try:
        return asked, asyncio.run(archive.verify(archive_store.DirectoryStore(root), archive_id, unwrap)), None
    except crypto.Tampered as exc:
        return asked, None, exc


def test_an_archive_forged_with_another_tenants_key_is_refused_before_unwrapping(tmp_path: Path):
    """The reviewer's reproduction: an archive of `victim` (id, manifest) whose data key the attacker
    wrapped with its own key `tenant-evil` verified and restored. It must not get as far as the unwrap."""
    aid = "victim-20260101-000000-abcdef"
    key = _forge(tmp_path, aid, "victim", "tenant-evil", b'{"../tenant-other/x": {"p": "evil"}}')
    asked, verified, refused = _verify(tmp_path, aid, key)
    assert verified is None and asked == []
    assert isinstance(refused, archive_checks.Mismatch)
    assert "tenant-evil" in str(refused) and "tenant-victim" in str(refused)


@pytest.mark.parametrize(("archive_id", "tenant", "key_name", "mount", "says"), [
    ("victim-20260101-000000-abcdef", "evil", "tenant-evil", "transit", "one of tenant victim"),  # id of another
    ("evil-20260101-000000-abcdef", "victim", "tenant-victim", "transit", "one of tenant evil"),
    ("victim-1", "victim", "tenant-victim", "transit", "not of the form"),
    ("victim-20260101-000000-abcdef", "victim", "tenant-victim", "transit-other", "transit-other/tenant-victim"),
    ("victim-20260101-000000-abcdef", "victim", "tenant-victim-x", "transit", "tenant-victim-x"),
    ("x-20260101-000000-abcdef", "../x", "tenant-../x", "transit", "no tenant name"),
])
def test_the_manifests_tenant_id_and_wrapping_key_must_agree(tmp_path: Path, archive_id, tenant, key_name, mount,
                                                             says):
    key = _forge(tmp_path, archive_id, tenant, key_name, b"{}", mount=mount)
    asked, verified, refused = _verify(tmp_path, archive_id, key)
    assert verified is None and asked == [] and isinstance(refused, archive_checks.Mismatch)
    assert says in str(refused)


def test_a_tenant_may_forge_an_archive_of_itself_only(tmp_path: Path):
    """With its own key a tenant can make an archive of itself: it verifies (restoring it into itself
    loads its own data), and its key's owner record lets it into that name, not into another."""
    aid = "evil-20260101-000000-abcdef"
    key = _forge(tmp_path, aid, "evil", "tenant-evil", b'{"app/x": {"k": "v"}}', uid=EVIL)
    asked, verified, refused = _verify(tmp_path, aid, key)
    assert refused is None and asked == ["tenant-evil"] and verified is not None
    verified.workdir.cleanup()
    archive_checks.check_key_owner(verified.manifest, EVIL, "evil", EVIL)
    archive_checks.check_key_owner(verified.manifest, EVIL, "evil-copy", "33")  # a person restores evil's own archive


def _manifest(tenant: str, uid: str) -> dict:
    return {"tenant": tenant, "tenantUid": uid}


def test_the_wrapping_keys_owner_record_must_name_the_manifests_tenant_uid():
    # The archived tenant deleted, its key kept recorded as its own: restorable into any name.
    archive_checks.check_key_owner(_manifest("acme", VICTIM), VICTIM, "acme-2", "new")
    # A restore of the name's own archive, once resolve handed the key to the restoring Tenant.
    archive_checks.check_key_owner(_manifest("acme", VICTIM), "new", "acme", "new")
    archive_checks.check_key_owner(_manifest("acme", VICTIM), vault_keys.UNKNOWN_OWNER, "acme", "new")
    refused = [
        (_manifest("acme", VICTIM), EVIL, "acme-2", "new"),  # the live owner of tenant-acme claims an old UID
        (_manifest("acme", VICTIM), "new", "acme-2", "new"),  # the key is the restoring Tenant's, of another name
        (_manifest("acme", VICTIM), None, "acme-2", "new"),  # no record: nothing ties the key to that Tenant
        (_manifest("acme", VICTIM), None, "acme", "new"),
        (_manifest("acme", VICTIM), vault_keys.UNKNOWN_OWNER, "acme-2", "new"),
        (_manifest("acme", VICTIM), "", "acme", ""),  # a restore with no UID of its own takes nothing over
    ]
    for manifest, owner, into, into_uid in refused:
        with pytest.raises(archive_checks.Mismatch, match="transit key tenant-acme"):
            archive_checks.check_key_owner(manifest, owner or None, into, into_uid)


def test_the_unwrap_refuses_a_wrapping_backend_that_is_no_openbao():
    manifest = {"tenant": "acme", "tenantUid": VICTIM,
                "encryption": {"wrappedKey": "x", "wrappingKey": {"backend": "pg", "name": "tenant-acme"}}}

    async def run():
        unwrap = await archive_restore.unwrapper({"pg": {"spec": {"type": "postgres"}}}, None, "acme-2", "new")
        return await unwrap(manifest)

    with pytest.raises(archive_checks.Mismatch, match="Backend pg .type postgres"):
        asyncio.run(run())


def test_ids_name_their_tenant_unambiguously():
    assert archive_store.tenant_of("acme-eu-20260101-000000-abcdef") == "acme-eu"
    assert archive_store.tenant_of(archive_store.new_id("a")) == "a"
    assert archive_store.tenant_of("acme-1") is None
    assert archive_store.tenant_of("acme-20260101-000000-abcdef\n") is None
    with pytest.raises(archive_store.StoreError):
        archive_store.valid_id("acme-20260101-000000-abcdef\n")
    assert not names.is_tenant_name("acme\n")


@pytest.mark.parametrize("path", ["../tenant-b/x", "a/../../tenant-b/x", "/abs", "a//b", "a/./b", ".", "..", "a/",
                                  "a\\..\\b", "a%2e%2e/b", "%2F", "a b", "a?b", "a#b", "a*", "", "x\n", "é"])
def test_kv_paths_that_could_leave_the_tenants_folder_are_refused(tmp_path: Path, path: str):
    source = tmp_path / "kv.json"
    source.write_text(json.dumps({"ok": {"k": "v"}, path: {"p": "evil"}}))
    with pytest.raises(archive_checks.Unsafe, match="vault part: KV path"):
        vault_export.check_kv(source)


def test_kv_paths_a_tenant_writes_are_kept(tmp_path: Path):
    source = tmp_path / "kv.json"
    secrets = {"db": {"password": "p1"}, "nested/api": {"token": "t"}, "a.b/c-d_e@f=g:h,i~j+k": {"x": 1}}
    source.write_text(json.dumps(secrets))
    assert vault_export.check_kv(source) == secrets
    source.write_text(json.dumps({"db": "not an object"}))
    with pytest.raises(archive_checks.Unsafe, match="not a JSON object"):
        vault_export.check_kv(source)


@pytest.mark.parametrize(("item", "says"), [
    ({"name": "../../tenant-b/configmaps/x"}, "not a DNS-1123"),
    ({"name": "tenant-session-keys", "labels": {"app.kubernetes.io/managed-by": "tenancy-operator"}}, "not the tenant"),
    ({"name": "kube-root-ca.crt"}, "not the tenant"),
    ({"name": "A"}, "not a DNS-1123"),
    ({"name": "app\n"}, "not a DNS-1123"),  # '$' alone would let a trailing newline through
])
def test_configmaps_an_export_never_keeps_are_refused(tmp_path: Path, item: dict, says: str):
    path = tmp_path / "configmaps.json"
    path.write_text(json.dumps([{"name": "app-settings", "labels": {"app": "api"}}, item]))
    with pytest.raises(archive_checks.Unsafe, match=says):
        kube_export.check(path)
    path.write_text(json.dumps([{"name": "app-settings", "labels": {"app": "api"}, "data": {"a": "b"}}]))
    assert [c["name"] for c in kube_export.check(path)] == ["app-settings"]


def _lines(path: Path, *items: dict) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


@pytest.mark.parametrize("bad", [
    [{"c": "system.views", "indexes": []}],
    [{"c": "_ferretdb_database_metadata", "indexes": []}],
    [{"c": "a$b", "indexes": []}],
    [{"c": "", "indexes": []}],
    [{"c": "people", "d": {"_id": 1}}],  # a document before any collection
    [{"c": "people", "indexes": []}, {"x": 1}],
])
def test_mongodb_collections_outside_what_a_tenant_can_have_are_refused(tmp_path: Path, bad: list[dict]):
    with pytest.raises(archive_checks.Unsafe, match="mongodb part"):
        mongodb_export.check(_lines(tmp_path / "m.jsonl", *bad))
    good = _lines(tmp_path / "ok.jsonl", {"c": "people", "indexes": [{"key": [["n", 1]], "name": "n_1", "unique": True}]},
                  {"c": "people", "d": {"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": 1}}, {"c": "empty", "indexes": []})
    assert mongodb_export.check(good) == 2


@pytest.mark.parametrize(("bad", "says"), [
    ({"index": "x/../../t-b_y", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "a,t-b_y", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "%2e%2e", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "*", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "x?pretty", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "ok\n", "mappings": {}, "settings": {}}, "not allowed"),
    ({"index": "ok", "mappings": {}, "settings": {"blocks": {"read_only": True}}}, "blocks"),
    ({"i": "undeclared", "id": "1", "s": {}, "r": None}, "neither an index nor a document"),
])
def test_search_indices_outside_the_tenants_prefix_are_refused(tmp_path: Path, bad: dict, says: str):
    with pytest.raises(archive_checks.Unsafe, match=says):
        search_export.check(_lines(tmp_path / "s.jsonl", bad))
    good = _lines(tmp_path / "ok.jsonl",
                  {"index": "products", "mappings": {"properties": {}}, "settings": {"number_of_shards": "1"}},
                  {"i": "products", "id": "sku-1", "s": {"title": "x"}, "r": None},
                  {"index": "logs.2026-01+a_b", "mappings": {}, "settings": {}},
                  {"i": "logs.2026-01+a_b", "id": "l1", "s": {"msg": "hi"}, "r": "r7"})
    assert search_export.check(good) == 2


def test_the_archive_table_reaches_the_lazily_loaded_checks(tmp_path: Path):
    """archive.CHECKS holds the MongoDB and search checks through backends/lazy_modules.py: same verdicts."""
    from tenancy_operator.backends import archive

    with pytest.raises(archive_checks.Unsafe, match="mongodb part"):
        archive.CHECKS["mongodb"](_lines(tmp_path / "m.jsonl", {"c": "system.views", "indexes": []}))
    assert archive.CHECKS["mongodb"](_lines(tmp_path / "m-ok.jsonl", {"c": "people", "indexes": []})) == 1
    with pytest.raises(archive_checks.Unsafe, match="not allowed"):
        archive.CHECKS["search"](_lines(tmp_path / "s.jsonl", {"index": "*", "mappings": {}, "settings": {}}))
    good = {"index": "products", "mappings": {}, "settings": {}}
    assert archive.CHECKS["search"](_lines(tmp_path / "s-ok.jsonl", good)) == 1
