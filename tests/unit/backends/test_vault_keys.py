"""Whose a transit key is (backends/vault_keys.py), against an in-memory stand-in for the two OpenBao paths it uses."""

import pytest
from hvac import exceptions as hvac_errors
from tenancy_operator.backends import vault_keys
from tenancy_operator.backends.base import NameHeldByArchives

OLD, NEW = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


class Paths:
    """transit/keys/<key> and tenants/metadata/<record>: read, write, delete."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}
        self.writes = 0

    def read(self, path: str):
        if path not in self.data:
            raise hvac_errors.InvalidPath()
        return {"data": self.data[path]}

    def write(self, path: str, **body):
        self.writes += 1
        if not path.endswith("/config"):
            self.data[path] = body

    def delete(self, path: str):
        self.data.pop(path, None)


def _key(client: Paths, name: str, owner: str | None) -> None:
    client.data[f"transit/keys/{name}"] = {"type": "aes256-gcm96"}
    if owner:
        vault_keys.record(client, name, owner)


def test_a_free_name_is_the_tenants_and_steady_state_writes_nothing():
    client = Paths()
    assert vault_keys.resolve(client, "acme", NEW)[0] == "tenant-acme"
    writes = client.writes
    assert vault_keys.resolve(client, "acme", NEW) == ("tenant-acme", [])
    assert client.writes == writes


def test_a_key_kept_for_another_tenant_holds_the_name_until_a_restore_or_the_purge():
    client = Paths()
    _key(client, "tenant-acme", OLD)
    writes = client.writes
    with pytest.raises(NameHeldByArchives) as held:
        vault_keys.resolve(client, "acme", NEW, newly_marked=True)
    assert (held.value.key, held.value.owner_uid) == ("tenant-acme", OLD)
    assert client.writes == writes and vault_keys.owner_of(client, "tenant-acme") == OLD
    # A restore of another tenant's archive does not free it; one of the holder's archives does.
    with pytest.raises(NameHeldByArchives):
        vault_keys.resolve(client, "acme", NEW, restoring="33333333-3333-3333-3333-333333333333")
    key, done = vault_keys.resolve(client, "acme", NEW, restoring=OLD)
    assert key == "tenant-acme" and done and vault_keys.owner_of(client, "tenant-acme") == NEW
    assert vault_keys.resolve(client, "acme", NEW, restoring=OLD) == (key, [])
    # The purge deletes a kept key and its record: the name is free again.
    client = Paths()
    _key(client, "tenant-acme", OLD)
    client.delete("transit/keys/tenant-acme")
    vault_keys.forget(client, "tenant-acme")
    assert vault_keys.resolve(client, "acme", NEW)[0] == "tenant-acme"
    assert vault_keys.owner_of(client, "tenant-acme") == NEW


def test_a_legacy_key_is_recorded_for_its_tenant_and_retained_data_is_re_attached():
    client = Paths()
    _key(client, "tenant-acme", None)
    assert vault_keys.resolve(client, "acme", OLD)[0] == "tenant-acme"
    assert vault_keys.owner_of(client, "tenant-acme") == OLD
    assert vault_keys.resolve(client, "acme", NEW, adopt=frozenset({OLD}))[0] == "tenant-acme"
    assert vault_keys.owner_of(client, "tenant-acme") == NEW


def test_release_keeps_or_deletes_only_the_tenants_own_key():
    client = Paths()
    _key(client, "tenant-acme", OLD)
    assert vault_keys.release(client, "acme", NEW, legacy_ours=True, keep=False) == []
    assert vault_keys.exists(client, "tenant-acme") and vault_keys.owner_of(client, "tenant-acme") == OLD
    assert vault_keys.release(client, "acme", OLD, legacy_ours=True, keep=True) == []
    assert vault_keys.exists(client, "tenant-acme")
    assert vault_keys.release(client, "acme", OLD, legacy_ours=True, keep=False) == ["transit key tenant-acme"]
    assert not vault_keys.exists(client, "tenant-acme") and vault_keys.owner_of(client, "tenant-acme") is None


def test_release_with_keep_records_a_legacy_key():
    client = Paths()
    _key(client, "tenant-acme", None)
    assert vault_keys.release(client, "acme", OLD, legacy_ours=True, keep=True) == []
    assert vault_keys.owner_of(client, "tenant-acme") == OLD


def test_a_key_that_outlived_a_tenant_deleted_before_key_records_holds_the_name():
    client = Paths()
    _key(client, "tenant-acme", None)  # kept for archives by a version without key records; no policy left
    with pytest.raises(NameHeldByArchives):
        vault_keys.resolve(client, "acme", NEW, newly_marked=True)
    assert vault_keys.owner_of(client, "tenant-acme") == vault_keys.UNKNOWN_OWNER
    # A tenant from before ownership records still has its policy: its key stays its own.
    client = Paths()
    _key(client, "tenant-acme", None)
    client.data["sys/policies/acl/tenant-acme"] = {"policy": "..."}
    assert vault_keys.resolve(client, "acme", OLD, newly_marked=True)[0] == "tenant-acme"
