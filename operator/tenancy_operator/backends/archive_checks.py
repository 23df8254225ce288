"""What a restore takes on trust from an archive: nothing, until it is checked here.

An archive's files authenticate under its data key, and the data key is whatever the transit key the
manifest names unwraps. Authentication alone therefore proves only that the archive was made by
someone who can encrypt with *some* transit key, and every tenant with OpenBao can encrypt with its
own `tenant-<name>`. Two kinds of checks make it enough.

Identity, before the data key is unwrapped (so before anything is decrypted or written), raising
`Mismatch` (a Tampered of `manifest.json`) that names what disagrees:

- the manifest names a tenant (a valid tenant name) and its Tenant's UID (`tenantUid`);
- the archive id begins with that name (`<tenant>-<time>-<hex>`, archive_store.new_id);
- the wrapping key is exactly `tenant-<tenant>` (api/names.vault_key), the one the operator wraps
  that tenant's archives with, on an OpenBao Backend (checked by the caller, which knows the Backends);
- that key's owner record in OpenBao (backends/vault_keys.py) names the manifest's `tenantUid`, or,
  for a restore into the archived tenant's own name, the restoring Tenant itself or UNKNOWN_OWNER
  (the owners vault_keys.resolve lets such a restore take the key from). No record: refused.

So the only archive a tenant can forge is one of itself (its own name, its own UID, its own key):
restoring that into itself loads its own data; a manifest claiming another tenant does not verify.

Contents, after every file authenticates and before the first write: every name a part would write
to is checked against what an export of the operator's own could hold (see each part's `check`;
the KV path rule is here), raising `Unsafe` naming the part and the item. A part is refused whole,
never loaded in part.
"""

from __future__ import annotations

import re
from typing import Any

from ..api import names
from . import archive_store
from .archive_crypto import Tampered
from .vault_keys import TRANSIT_MOUNT, UNKNOWN_OWNER

__all__ = ["Mismatch", "Unsafe", "check_identity", "check_key_owner", "kv_path"]

MANIFEST = archive_store.MANIFEST
_KV_SEGMENT = re.compile(r"^[A-Za-z0-9._~@+=:,-]{1,255}$")
"""One segment of a KV path below the tenant's folder: unreserved characters and a few safe ones;
no '/', '\\', '%', '?', '#', '*', space or control character. Segments of dots only are refused."""
_KV_PATH_MAX = 1024


class Mismatch(Tampered):
    """The manifest claims an archive of another tenant than its id, its wrapping key or that key's
    owner record say."""


class Unsafe(Exception):
    """A part holds a name that would be written outside the target tenant's own place."""

    def __init__(self, part: str, why: str) -> None:
        super().__init__(f"{part} part: {why}")
        self.part = part


def check_identity(archive_id: str, manifest: dict[str, Any]) -> str:
    """The archived tenant's name, once the id, the manifest and its wrapping key agree on it."""
    tenant = manifest.get("tenant")
    if not isinstance(tenant, str) or not names.is_tenant_name(tenant):
        raise Mismatch(MANIFEST, f"names tenant {tenant!r}, which is no tenant name")
    by_id = archive_store.tenant_of(archive_id)
    if by_id != tenant:
        raise Mismatch(MANIFEST, f"claims tenant {tenant} but archive id {archive_id} is "
                                 + (f"one of tenant {by_id}" if by_id else "not of the form <tenant>-<time>-<hex>"))
    uid = manifest.get("tenantUid")
    if not isinstance(uid, str) or not uid:
        raise Mismatch(MANIFEST, f"names no tenantUid for tenant {tenant}")
    wrapping = (manifest.get("encryption") or {}).get("wrappingKey") or {}
    if wrapping.get("name") != names.vault_key(tenant) or wrapping.get("mount", TRANSIT_MOUNT) != TRANSIT_MOUNT:
        raise Mismatch(MANIFEST, f"claims tenant {tenant} but its data key is wrapped by transit key "
                                 f"{wrapping.get('mount', TRANSIT_MOUNT)}/{wrapping.get('name')}; an archive of "
                                 f"{tenant} is wrapped by {TRANSIT_MOUNT}/{names.vault_key(tenant)} only")
    return tenant


def check_key_owner(manifest: dict[str, Any], owner: str | None, into: str, into_uid: str, where: str = "") -> None:
    """Does the owner record (`owner`, None: no record) of the manifest's wrapping key allow restoring
    it into Tenant `into_uid` named `into`? Call after check_identity, before unwrapping."""
    tenant, uid = manifest["tenant"], manifest["tenantUid"]
    key = names.vault_key(tenant)
    if owner is not None and owner == uid:
        return
    if owner is not None and tenant == into and into_uid and owner in (into_uid, UNKNOWN_OWNER):
        return  # a restore of the name's own archive: the key is (or may be) handed to this Tenant
    on = f" on {where}" if where else ""
    if owner is None:
        raise Mismatch(MANIFEST, f"names Tenant UID {uid} for tenant {tenant}, but transit key {key}{on} has no "
                                 "owner record, so nothing ties the key to that Tenant")
    raise Mismatch(MANIFEST, f"names Tenant UID {uid} for tenant {tenant}, but transit key {key}{on} is recorded "
                             f"as Tenant {owner}'s" + ("" if tenant == into else
                                                       f"; only a restore into {tenant} itself may use it"))


def kv_path(rel: Any) -> str:
    """`rel`, a KV path below the tenant's folder, when every segment is on the allow-list; else Unsafe
    naming it (an absolute path, '.' or '..', an empty segment, '\\' or a '%' escape would let the
    URL the write goes to leave the folder)."""
    if not isinstance(rel, str) or not rel or len(rel) > _KV_PATH_MAX:
        raise Unsafe("vault", f"KV path {rel!r} is empty, not text, or longer than {_KV_PATH_MAX}")
    for segment in rel.split("/"):
        if not _KV_SEGMENT.fullmatch(segment) or set(segment) == {"."}:
            raise Unsafe("vault", f"KV path {rel!r}: segment {segment!r} is not allowed (absolute paths, empty, "
                                  "'.' and '..' segments, '\\', '%' and characters outside A-Z a-z 0-9 . _ ~ @ + = : "
                                  ", - are refused)")
    return rel
