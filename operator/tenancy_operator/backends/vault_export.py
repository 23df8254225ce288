"""OpenBao part of an archive, and the data key's wrapping.

KV: the latest version's data of every secret under `tenants/tenant-<name>/` (older versions and
metadata are not archived; a secret whose latest version is deleted or destroyed is left out).
Transit keys are not archived: the tenant's key `transit/tenant-<name>` (recorded as its Tenant's:
backends/vault_keys.py) is created non-exportable, so its material never leaves OpenBao. It wraps each archive's data key instead
(transit encrypt by the operator's token) and is kept, recorded as its Tenant's, when the tenant's
live data is released for an archive, because without it the archive could never be read again; the
purge of the last archive it wraps deletes it (handlers/archive_purge.py).

Restore writes each archived secret under the target tenant's folder only: the whole part is refused
(archive_checks.Unsafe, naming the path) before the first write when any path is not on the
allow-list of archive_checks.kv_path, since the operator's token may write every tenant's folder and
the HTTP client collapses `..` in the URL.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import hvac
from hvac import exceptions as hvac_errors

from ..api import names
from . import vault_keys
from .archive_checks import Unsafe, kv_path
from .base import Target
from .vault import KV_MOUNT, TRANSIT_MOUNT, _run

__all__ = ["dump_kv", "check_kv", "restore_kv", "holds_kv", "wrap", "unwrap", "key_owner", "drop_kept_key",
           "server_version"]


def _kv_root(tenant: str) -> str:
    return names.vault_kv_path(tenant).split("/", 1)[1]


def _paths(client: hvac.Client, root: str) -> list[str]:
    out: list[str] = []
    try:
        listing = client.list(f"{KV_MOUNT}/metadata/{root}")
    except hvac_errors.InvalidPath:
        return out
    for entry in ((listing or {}).get("data") or {}).get("keys", []):
        child = f"{root}/{entry}".replace("//", "/")
        out += _paths(client, child.rstrip("/")) if entry.endswith("/") else [child]
    return out


async def server_version(target: Target) -> str:
    return await _run(target, lambda c: str(c.sys.read_health_status(method="GET").get("version", "")))


async def dump_kv(target: Target, tenant: str, out: Path) -> int:
    root = _kv_root(tenant)

    def work(client: hvac.Client) -> int:
        secrets: dict[str, Any] = {}
        for path in _paths(client, root):
            try:
                read = client.secrets.kv.v2.read_secret_version(path=path, mount_point=KV_MOUNT,
                                                                raise_on_deleted_version=True)
            except hvac_errors.InvalidPath:
                continue  # latest version deleted or destroyed
            secrets[path[len(root) + 1:]] = read["data"]["data"]
        out.write_text(json.dumps(secrets, sort_keys=True))
        return len(secrets)

    return await _run(target, work)


async def holds_kv(target: Target, tenant: str) -> bool:
    return bool(await _run(target, lambda c: _paths(c, _kv_root(tenant))))


def check_kv(source: Path) -> dict[str, Any]:
    """The archived secrets, `{path below the tenant's folder: data}`, once every path and value is
    safe to write; else Unsafe naming the first that is not. Writes nothing."""
    secrets = json.loads(source.read_text())
    if not isinstance(secrets, dict):
        raise Unsafe("vault", "the KV part is not a JSON object of path -> secret")
    for rel, data in secrets.items():
        kv_path(rel)
        if not isinstance(data, dict):
            raise Unsafe("vault", f"KV path {rel!r}: its secret is not a JSON object")
    return secrets


async def restore_kv(target: Target, tenant: str, source: Path) -> int:
    root = _kv_root(tenant)
    secrets = check_kv(source)  # every path checked before the first write

    def work(client: hvac.Client) -> int:
        for rel, data in secrets.items():
            client.secrets.kv.v2.create_or_update_secret(path=f"{root}/{rel}", secret=data, mount_point=KV_MOUNT)
        return len(secrets)

    return await _run(target, work)


async def wrap(target: Target, tenant: str, uid: str, data_key: bytes) -> tuple[str, str]:
    """The data key encrypted by the transit key of Tenant `uid` (made, non-exportable, if it is
    missing): (the key's name, the wrapped data key)."""

    def work(client: hvac.Client) -> tuple[str, str]:
        key, _ = vault_keys.resolve(client, tenant, uid, backend=f"vault backend {target.name}")
        try:
            client.read(f"{TRANSIT_MOUNT}/keys/{key}")["data"]
        except (hvac_errors.InvalidPath, TypeError):
            client.write(f"{TRANSIT_MOUNT}/keys/{key}", type="aes256-gcm96")
        reply = client.secrets.transit.encrypt_data(name=key, plaintext=base64.b64encode(data_key).decode(),
                                                    mount_point=TRANSIT_MOUNT)
        return key, reply["data"]["ciphertext"]

    return await _run(target, work)


async def unwrap(target: Target, key_name: str, wrapped: str) -> bytes:
    """The data key back, by transit decrypt with `key_name`; refused (BackendRefused) by any other key."""

    def work(client: hvac.Client) -> bytes:
        reply = client.secrets.transit.decrypt_data(name=key_name, ciphertext=wrapped, mount_point=TRANSIT_MOUNT)
        return base64.b64decode(reply["data"]["plaintext"])

    return await _run(target, work)


async def key_owner(target: Target, key_name: str) -> str | None:
    """The Tenant UID transit key `key_name`'s owner record names (None: no record)."""
    return await _run(target, lambda c: vault_keys.owner_of(c, key_name))


async def drop_kept_key(target: Target, key_name: str, live_uid: str | None) -> bool:
    """Delete a transit key kept for archives, and its owner record, once no archive needs it; False
    when it is already gone or still in use: its record names `live_uid` (the UID of the live Tenant
    of that name), or it has no record while such a Tenant lives (a key from before records)."""

    def work(client: hvac.Client) -> bool:
        owner = vault_keys.owner_of(client, key_name)
        if live_uid is not None and owner in (live_uid, None):
            return False
        gone = not vault_keys.exists(client, key_name)
        if not gone:
            client.write(f"{TRANSIT_MOUNT}/keys/{key_name}/config", deletion_allowed=True)
            client.delete(f"{TRANSIT_MOUNT}/keys/{key_name}")
        vault_keys.forget(client, key_name)
        return not gone

    return await _run(target, work)
