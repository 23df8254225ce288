"""A transit key kept for a deleted tenant's archives never passes to a new Tenant of the same name by accident
(issue 13, review finding wt-review1, reconciled with issue 19's fixed policies): the fixed tenant policies give a
login from namespace `tenant-<name>` exactly key `tenant-<name>`, so while that key is recorded for the deleted
Tenant the new one is Stalled NameHeldByArchives with no login role. A person's restore of one of those archives
into the name hands it the old data and key on purpose (Ready); the retention purge deletes a kept key and its
record, and a Tenant held by it then continues with a fresh key.

Real OpenBao: the tenant's app logs in as its pods do (ServiceAccount tenant-app) and is refused.
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import hvac.exceptions
import pytest

from . import kube
from .admin import vault_admin
from .conftest import ARCHIVE_DIR
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, vault_login

POLICY = "tko-archive"
RECORD = "tenants/metadata/_transit-keys/{}"


def _ready(name: str, timeout: float = 120) -> dict:
    return eventually(lambda: (t := get("tenant", name)) and condition(t, "Ready").get("status") == "True" and t,
                      timeout, 1, f"tenant {name} Ready")


def _archive_of(name: str, uid: str) -> str:
    for folder in ARCHIVE_DIR.iterdir() if ARCHIVE_DIR.is_dir() else ():
        manifest = folder / "manifest.json"
        if manifest.is_file() and (m := json.loads(manifest.read_text())).get("tenantUid") == uid:
            assert m["tenant"] == name
            return folder.name
    raise AssertionError(f"no archive of {name} ({uid})")


def _archived_and_deleted(name: str, uid: str) -> str:
    kubectl("delete", "tenant", name, "--wait=false")
    eventually(lambda: get("tenant", name) is None, 120, 1, f"tenant {name} archived and deleted")
    return _archive_of(name, uid)


def _owner(key: str) -> str | None:
    try:
        meta = vault_admin().read(RECORD.format(key))
    except hvac.exceptions.InvalidPath:
        return None
    return (((meta or {}).get("data") or {}).get("custom_metadata") or {}).get("tenancy.dev/tenant-uid")


def _held(name: str, holder_archive: str) -> dict:
    """The Tenant is Stalled NameHeldByArchives on VaultReady, naming the archive and the ways out, with a
    Warning Event; nothing of it exists in OpenBao (no login role)."""
    def check():
        t = get("tenant", name)
        part = condition(t, "VaultReady")
        assert condition(t, "Stalled").get("status") == "True" and part.get("reason") == "NameHeldByArchives", part
        assert condition(t, "Ready").get("status") != "True"
        return t

    t = eventually(check, 60, 1, f"{name} Stalled NameHeldByArchives")
    message = condition(t, "VaultReady")["message"]
    for words in (holder_archive, f"kubectl tenant restore {name} --from", "another name", "retention purge"):
        assert words in message, message
    uid = t["metadata"]["uid"]
    eventually(lambda: any(e["type"] == "Warning"
                           for e in kube.object_events("Tenant", name, reason="NameHeldByArchives", uid=uid)),
               20, 1, "a Warning Event NameHeldByArchives")
    admin = vault_admin()
    assert admin.read(f"auth/kubernetes/role/tenant-{name}") is None, "a held tenant was given a login role"
    assert admin.read(f"tenants/metadata/{name}") is None, "a held tenant's ownership record was written"
    return t


def _login_refused(creds: dict[str, str], ns: str) -> None:
    eventually(lambda: kubectl("get", "serviceaccount", "tenant-app", "-n", ns, check=False).returncode == 0,
               60, 1, f"ServiceAccount tenant-app in {ns}")
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):  # no role: nothing to decrypt with
        vault_login(creds, ns)


def test_a_name_held_by_a_deleted_tenants_archives(backends, operator, cleanup_tenants):
    """OLD is deleted with reclaim Archive: its transit key is kept, to unwrap that archive. A new Tenant of the
    same name is held (no login role) until a person restores that archive into it; after its own archived
    deletion the next Tenant of the name is held again, until the retention purge deletes the key."""
    started = time.monotonic()
    name = f"tko-{secrets.token_hex(3)}"
    ns, key = f"tenant-{name}", f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": POLICY},
                           "spec": {"reclaim": "Archive", "retention": "1h"}}))
    kube.apply(tenant_yaml(name, lifecyclePolicyRef=POLICY, vault={"enabled": True}))
    old_uid = _ready(name)["metadata"]["uid"]
    creds = credentials(name)
    assert creds["VAULT_TRANSIT_KEY"] == key
    app = vault_login(creds, ns)
    app.secrets.kv.v2.create_or_update_secret(path=f"{creds['VAULT_KV_PATH']}/app", secret={"pw": "of-old"},
                                              mount_point=creds["VAULT_KV_MOUNT"])
    sealed = app.secrets.transit.encrypt_data(name=key, plaintext=base64.b64encode(b"old owner's").decode(),
                                              mount_point="transit")["data"]["ciphertext"]
    first = _archived_and_deleted(name, old_uid)
    manifest = json.loads((ARCHIVE_DIR / first / "manifest.json").read_text())
    assert manifest["encryption"]["wrappingKey"]["name"] == key
    admin = vault_admin()
    assert admin.read(f"transit/keys/{key}") is not None, "the key wrapping the archive was not kept"
    assert _owner(key) == old_uid

    # A new Tenant under the name: held, with no login role; its workloads cannot log in, so cannot decrypt.
    kube.apply(tenant_yaml(name, lifecyclePolicyRef=POLICY, vault={"enabled": True}))
    new_uid = _held(name, first)["metadata"]["uid"]
    assert new_uid != old_uid
    _login_refused(creds, ns)
    assert _owner(key) == old_uid

    # A person restores the old archive into it: the key is re-recorded, the tenant Ready with the old data and key.
    kubectl("patch", "tenant", name, "--type=merge", "-p", json.dumps({"spec": {"restoreFrom": {"archive": first}}}))
    eventually(lambda: ((get("tenant", name) or {}).get("status") or {}).get("restore", {}).get("state") == "Done",
               120, 1, "restore Done")
    _ready(name)
    assert _owner(key) == new_uid
    creds = credentials(name)
    assert creds["VAULT_TRANSIT_KEY"] == key
    app = vault_login(creds, ns)
    read = app.secrets.kv.v2.read_secret_version(path=f"{creds['VAULT_KV_PATH']}/app", mount_point=creds["VAULT_KV_MOUNT"],
                                                 raise_on_deleted_version=True)
    assert read["data"]["data"] == {"pw": "of-old"}
    plain = app.secrets.transit.decrypt_data(name=key, ciphertext=sealed, mount_point="transit")["data"]["plaintext"]
    assert base64.b64decode(plain) == b"old owner's"

    # Its archived deletion keeps the key again (now recorded for it); the next Tenant of the name is held by it.
    second = _archived_and_deleted(name, new_uid)
    assert _owner(key) == new_uid
    kube.apply(tenant_yaml(name, vault={"enabled": True}))
    third_uid = _held(name, second)["metadata"]["uid"]

    # Retention: once the archives are purged, the kept key and its record go, and the held tenant continues
    # with a fresh key that opens nothing sealed before.
    for archive_id in (first, second):
        path = ARCHIVE_DIR / archive_id / "manifest.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"createdAt": "2000-01-01T00:00:00Z"}))
    eventually(lambda: not any((ARCHIVE_DIR / a).exists() for a in (first, second)), 60, 1, "the expired archives purged")
    _ready(name, 60)
    assert _owner(key) == third_uid, "the purge left the old owner's record, or the new tenant was not recorded"
    creds = credentials(name)
    app = vault_login(creds, ns)
    with pytest.raises(hvac.exceptions.InvalidRequest):  # a fresh key: the old ciphertexts stay sealed
        app.secrets.transit.decrypt_data(name=key, ciphertext=sealed, mount_point="transit")
    own = app.secrets.transit.encrypt_data(name=key, plaintext="bmV3", mount_point="transit")["data"]["ciphertext"]
    assert app.secrets.transit.decrypt_data(name=key, ciphertext=own, mount_point="transit")["data"]["plaintext"] == "bmV3"
    print(f"took {time.monotonic() - started:.1f} s")
