"""Whose a transit key is: one owner per key, recorded beside it, so a kept key never changes hands.

A tenant's transit key outlives the Tenant when it wraps archives (reclaim Archive, state Archived,
an export that still lives): without it those archives could never be read. OpenBao transit keys
hold no metadata, so the owner is recorded in the operator's own KV v2 mount: the entry
`tenants/_transit-keys/<key>` (no data, only `custom_metadata` with the owning Tenant's UID; outside
every tenant's policy, as '_' is in no tenant name).

A tenant's key is always `tenant-<name>` (the fixed tenant policies reach exactly the key named as
the login's namespace). `resolve` says whether this Tenant may have it: yes when its record names
this Tenant's UID, or names a deleted Tenant whose retained data this one re-attaches
(spec.adoptRetainedData) or whose archive a person restores into it (spec.restoreFrom: the new
tenant gets the old data and key on purpose), or there is no record and either no key (the name is
free) or a key made before records existed by this very tenant (a legacy key: recorded now). When
the key is recorded for another UID (kept for a deleted tenant's archives), resolve raises
NameHeldByArchives: the new Tenant is Stalled and gets no login role, since its workloads would reach
that key. The ways out: another name, a restore (above), or the retention purge of those archives,
which deletes the key and its record (handlers/archive_purge.py).

A legacy key without a record is a live tenant's when the tenant's ownership record already named
it before this pass, or (a tenant from before ownership records) its policy `tenant-<name>` exists.
Otherwise it outlived a tenant deleted before this version (kept for archives): it is recorded as
`UNKNOWN_OWNER`'s and the name is held (a restore of any archive of the name re-records it). Known gap: a key kept by a tenant deleted
before ownership records existed, while an older Tenant of the name still had no record and a policy,
is taken for that tenant's. Blocking calls: run them via vault._run.
"""

from __future__ import annotations

from typing import Any

import hvac
from hvac import exceptions as hvac_errors

from ..api import names
from .base import NameHeldByArchives

__all__ = ["TRANSIT_MOUNT", "KV_MOUNT", "OWNER_FIELD", "UNKNOWN_OWNER", "owner_of", "exists", "record", "resolve", "release",
           "forget"]

TRANSIT_MOUNT = "transit"
KV_MOUNT = "tenants"
OWNER_FIELD = "tenancy.dev/tenant-uid"
UNKNOWN_OWNER = "deleted-before-key-records"
"""The owner recorded for a key that outlived a tenant deleted before this version: no live UID equals it."""


def _path(key: str) -> str:
    return f"{KV_MOUNT}/metadata/{names.vault_key_record(key)}"


def _read(client: hvac.Client, path: str) -> dict[str, Any] | None:
    try:
        return client.read(path)
    except hvac_errors.InvalidPath:
        return None


def owner_of(client: hvac.Client, key: str) -> str | None:
    """The UID the key's record names; None when there is no record."""
    meta = ((_read(client, _path(key)) or {}).get("data") or {}).get("custom_metadata") or {}
    return meta.get(OWNER_FIELD) or None


def exists(client: hvac.Client, key: str) -> bool:
    return _read(client, f"{TRANSIT_MOUNT}/keys/{key}") is not None


def record(client: hvac.Client, key: str, uid: str) -> None:
    client.write(_path(key), custom_metadata={OWNER_FIELD: uid})


def resolve(client: hvac.Client, tenant: str, uid: str, adopt: frozenset[str] = frozenset(),
            newly_marked: bool = False, restoring: str = "", backend: str = "openbao") -> tuple[str, list[str]]:
    """The transit key name of Tenant `uid` named `tenant` (always `tenant-<name>`), and the records
    written (read first; a tenant whose record is in place writes nothing). `newly_marked`: the
    tenant's ownership record was missing before this pass (a new Tenant, or one from before ownership
    records). `restoring`: the UID of the deleted Tenant whose archive spec.restoreFrom loads.
    Raises NameHeldByArchives, writing nothing for the tenant, when the key is another Tenant's.
    Shape: ("tenant-acme", ["transit key tenant-acme owner recorded"])."""
    base = names.vault_key(tenant)
    owner = owner_of(client, base)
    if owner == uid:
        return base, []
    if (owner is None and newly_marked and exists(client, base)
            and _read(client, f"sys/policies/acl/{names.vault_policy(tenant)}") is None):
        record(client, base, UNKNOWN_OWNER)  # outlived a tenant deleted before key records: not this one's
        owner = UNKNOWN_OWNER
    if owner is not None and restoring and owner in (restoring, UNKNOWN_OWNER):
        record(client, base, uid)
        return base, [f"transit key {base} owner re-recorded for the restore of a deleted tenant's archive"]
    if owner is None or owner in adopt:
        record(client, base, uid)
        how = "re-attached from a deleted tenant" if owner else "recorded"
        return base, [f"transit key {base} owner {how}"]
    raise NameHeldByArchives(backend, base, owner)


def release(client: hvac.Client, tenant: str, uid: str, legacy_ours: bool, keep: bool) -> list[str]:
    """Delete the transit key of Tenant `uid` named `tenant` and its record, or with `keep` keep it
    recorded as its own (a legacy key gets its record now); returns what was deleted. Its own: recorded
    for `uid`, or without a record when `legacy_ours` (the tenant's ownership record is this Tenant's,
    or missing). A key recorded for another Tenant is never touched."""
    key = names.vault_key(tenant)
    recorded = owner_of(client, key)
    if recorded != uid and not (recorded is None and legacy_ours):
        return []
    present = exists(client, key)
    if keep:
        if present and recorded is None:
            record(client, key, uid)
        return []
    done: list[str] = []
    if present:
        client.write(f"{TRANSIT_MOUNT}/keys/{key}/config", deletion_allowed=True)
        client.delete(f"{TRANSIT_MOUNT}/keys/{key}")
        done.append(f"{TRANSIT_MOUNT} key {key}")
    forget(client, key)
    return done


def forget(client: hvac.Client, key: str) -> None:
    """Delete the key's owner record (after the key itself)."""
    if _read(client, _path(key)) is not None:
        client.delete(_path(key))
