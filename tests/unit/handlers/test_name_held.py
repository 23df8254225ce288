"""A name held by a deleted tenant's archives: the Stalled message names them and the ways out; a restore of
one of them (and only of them) marks the slice so the adapter hands the key on."""

import json

from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.backends.base import NameHeldByArchives, TenantSlice
from tenancy_operator.handlers import name_held

OLD = "11111111-1111-1111-1111-111111111111"


def _archive(root, archive_id: str, tenant: str, uid: str, key: str) -> None:
    (root / archive_id).mkdir()
    (root / archive_id / "manifest.json").write_text(json.dumps(
        {"tenant": tenant, "tenantUid": uid, "encryption": {"wrappingKey": {"backend": "vault-main", "name": key}}}))


def test_the_message_names_the_holders_archives_and_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    _archive(tmp_path, "acme-20260101-000000-aaaaaa", "acme", OLD, "tenant-acme")
    _archive(tmp_path, "acme-20260102-000000-bbbbbb", "acme", "another-uid", "tenant-acme")
    _archive(tmp_path, "acme-x-20260101-000000-cccccc", "acme-x", OLD, "tenant-acme-x")
    text = name_held.message(NameHeldByArchives("vault backend vault-main", "tenant-acme", OLD), "acme")
    assert "archives acme-20260101-000000-aaaaaa." in text and "bbbbbb" not in text and "cccccc" not in text
    for words in ("another name", "kubectl tenant restore acme --from acme-20260101-000000-aaaaaa", "retention purge"):
        assert words in text, text


def test_only_a_restore_of_an_archive_of_this_name_and_key_hands_the_key_on(tmp_path, monkeypatch):
    monkeypatch.setenv("TENANCY_ARCHIVE_DIR", str(tmp_path))
    _archive(tmp_path, "acme-20260101-000000-aaaaaa", "acme", OLD, "tenant-acme")
    _archive(tmp_path, "other-20260101-000000-aaaaaa", "other", OLD, "tenant-other")
    want = TenantSlice(tenant="acme", namespace="tenant-acme", uid="new")

    def spec(archive: str | None) -> TenantSpec:
        return TenantSpec.model_validate({"restoreFrom": {"archive": archive}} if archive else {})

    assert name_held.with_restore(want, "acme", spec("acme-20260101-000000-aaaaaa")).restoring_uid == OLD
    assert name_held.with_restore(want, "acme", spec("other-20260101-000000-aaaaaa")).restoring_uid == ""
    assert name_held.with_restore(want, "acme", spec("acme-20990101-000000-ffffff")).restoring_uid == ""
    assert name_held.with_restore(want, "acme", spec(None)) is want
