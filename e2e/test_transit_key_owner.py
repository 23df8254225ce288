"""A transit key kept for a deleted tenant's archives never passes to a new Tenant of the same name (issue 13,
review finding wt-review1): the new tenant gets a key of its own, a person's restore still unwraps the old
archive (by the operator's token, for that restore only), and the retention purge still deletes the kept key.

Real OpenBao: the tenant's app logs in as its pods do (ServiceAccount tenant-app) and is refused the old key.
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


def _ready(name: str) -> dict:
    return eventually(lambda: (t := get("tenant", name)) and condition(t, "Ready").get("status") == "True" and t,
                      120, 1, f"tenant {name} Ready")


def _archive_of(name: str, uid: str) -> str:
    for folder in ARCHIVE_DIR.iterdir() if ARCHIVE_DIR.is_dir() else ():
        manifest = folder / "manifest.json"
        if manifest.is_file() and (m := json.loads(manifest.read_text())).get("tenantUid") == uid:
            assert m["tenant"] == name
            return folder.name
    raise AssertionError(f"no archive of {name} ({uid})")


def _refused(call) -> bool:
    try:
        call()
    except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
        return True
    return False


def test_a_new_tenant_under_a_deleted_name_does_not_get_its_kept_transit_key(backends, operator, cleanup_tenants):
    """OLD is deleted with reclaim Archive: its transit key is kept, to unwrap that archive. A new Tenant of the
    same name (another UID, maybe another owner) must not be handed that key."""
    started = time.monotonic()
    name = (f"tko-{secrets.token_hex(3)}-" + "a" * 60)[:55]  # the longest name: its own key is the longest name
    ns = f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": POLICY},
                           "spec": {"reclaim": "Archive", "retention": "1h"}}))
    kube.apply(tenant_yaml(name, lifecyclePolicyRef=POLICY, vault={"enabled": True}))
    old_uid = _ready(name)["metadata"]["uid"]
    creds = credentials(name)
    old_key = creds["VAULT_TRANSIT_KEY"]
    assert old_key == f"tenant-{name}"
    app = vault_login(creds, ns)
    app.secrets.kv.v2.create_or_update_secret(path=f"{creds['VAULT_KV_PATH']}/app", secret={"pw": "of-old"},
                                              mount_point=creds["VAULT_KV_MOUNT"])
    sealed = app.secrets.transit.encrypt_data(name=old_key, plaintext=base64.b64encode(b"old owner's").decode(),
                                              mount_point="transit")["data"]["ciphertext"]

    kubectl("delete", "tenant", name, "--wait=false")
    eventually(lambda: get("tenant", name) is None, 120, 1, f"tenant {name} archived and deleted")
    archive_id = _archive_of(name, old_uid)
    manifest = json.loads((ARCHIVE_DIR / archive_id / "manifest.json").read_text())
    assert manifest["encryption"]["wrappingKey"]["name"] == old_key
    admin = vault_admin()
    assert admin.read(f"transit/keys/{old_key}") is not None, "the key wrapping the archive was not kept"

    # A new Tenant under the name: Ready, with a key of its own; the old key is in nothing it holds.
    kube.apply(tenant_yaml(name, vault={"enabled": True}))
    new_uid = _ready(name)["metadata"]["uid"]
    assert new_uid != old_uid
    creds = credentials(name)
    new_key = creds["VAULT_TRANSIT_KEY"]
    print(f"\nold key {old_key}, new tenant's key {new_key}")
    app = vault_login(creds, ns)
    wrapped = manifest["encryption"]["wrappedKey"]
    assert _refused(lambda: app.secrets.transit.decrypt_data(name=old_key, ciphertext=wrapped, mount_point="transit")), \
        "the new tenant's workloads unwrap the old tenant's archive key"
    assert _refused(lambda: app.secrets.transit.decrypt_data(name=old_key, ciphertext=sealed, mount_point="transit"))
    assert new_key == f"tenant-{name}.{new_uid}"
    with pytest.raises(hvac.exceptions.InvalidRequest):  # its own key is another key: the old ciphertexts stay sealed
        admin.secrets.transit.decrypt_data(name=new_key, ciphertext=wrapped, mount_point="transit")
    own = app.secrets.transit.encrypt_data(name=new_key, plaintext="bmV3", mount_point="transit")["data"]["ciphertext"]
    assert app.secrets.transit.decrypt_data(name=new_key, ciphertext=own, mount_point="transit")["data"]["plaintext"] == "bmV3"

    # A person restores the old archive into it: the operator unwraps with the old key, for the restore only.
    kubectl("patch", "tenant", name, "--type=merge", "-p", json.dumps({"spec": {"restoreFrom": {"archive": archive_id}}}))
    eventually(lambda: ((get("tenant", name) or {}).get("status") or {}).get("restore", {}).get("state") == "Done",
               120, 1, "restore Done")
    read = app.secrets.kv.v2.read_secret_version(path=f"{creds['VAULT_KV_PATH']}/app", mount_point=creds["VAULT_KV_MOUNT"],
                                                 raise_on_deleted_version=True)
    assert read["data"]["data"] == {"pw": "of-old"}
    assert credentials(name)["VAULT_TRANSIT_KEY"] == new_key
    assert _refused(lambda: app.secrets.transit.decrypt_data(name=old_key, ciphertext=wrapped, mount_point="transit"))

    # Retention: once its last archive is purged, the kept key goes too; the live tenant's own key stays.
    path = ARCHIVE_DIR / archive_id / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"createdAt": "2000-01-01T00:00:00Z"}))
    eventually(lambda: not (ARCHIVE_DIR / archive_id).exists(), 60, 1, "the expired archive purged")
    eventually(lambda: admin.read(f"transit/keys/{old_key}") is None, 15, 1, "the kept key deleted by the purge")
    assert admin.read(f"transit/keys/{new_key}") is not None, "the live tenant's own key was deleted"
    print(f"took {time.monotonic() - started:.1f} s")
