"""Whose a transit key is: one owner per key, recorded beside it, so a kept key never changes hands.

A tenant's transit key outlives the Tenant when it wraps archives (reclaim Archive, state Archived,
an export that still lives): without it those archives could never be read. OpenBao transit keys
hold no metadata, so the owner is recorded in the operator's own KV v2 mount: the entry
`tenants/_transit-keys/<key>` (no data, only `custom_metadata` with the owning Tenant's UID; outside
every tenant's policy, as '_' is in no tenant name).

Which key is a tenant's (`resolve`): `tenant-<name>` when its record names this Tenant's UID, or
names a deleted Tenant whose retained data this one re-attaches (spec.adoptRetainedData), or there is
no record and either no key (the name is free) or a key made before records existed by this very
tenant (a legacy key: recorded now). When `tenant-<name>` is recorded for another UID (kept for a
deleted tenant's archives), a new Tenant of that name gets its own key `tenant-<name>.<uid>` and is
never granted the old one. A person's restore may still unwrap an old archive's data key with the
old key, by the operator's token, for that restore only.

A legacy key without a record is a live tenant's when the tenant's ownership record already named
it before this pass, or (a tenant from before ownership records) its policy `tenant-<name>` exists.
Otherwise it outlived a tenant deleted before this version (kept for archives): it is recorded as
`UNKNOWN_OWNER`'s and the new Tenant gets its own key. Known gap: a key kept by a tenant deleted
before ownership records existed, while an older Tenant of the name still had no record and a policy,
is taken for that tenant's. Blocking calls: run them via vault._run.
"""

from __future__ import annotations

from typing import Any

import hvac
from hvac import exceptions as hvac_errors

from ..api import names

__all__ = ["TRANSIT_MOUNT", "KV_MOUNT", "OWNER_FIELD", "owner_of", "exists", "record", "resolve", "release", "forget"]

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
            newly_marked: bool = False) -> tuple[str, list[str]]:
    """The transit key name of Tenant `uid` named `tenant`, and the records written (read first; a
    tenant whose record is in place writes nothing). `newly_marked`: the tenant's ownership record was
    missing before this pass (a new Tenant, or one from before ownership records).
    Shape: ("tenant-acme", ["transit key tenant-acme owner recorded"])."""
    base, own = names.vault_key(tenant), names.vault_owner_key(tenant, uid)
    if owner_of(client, own) == uid:
        return own, []
    owner = owner_of(client, base)
    if owner == uid:
        return base, []
    if (owner is None and newly_marked and exists(client, base)
            and _read(client, f"sys/policies/acl/{names.vault_policy(tenant)}") is None):
        record(client, base, UNKNOWN_OWNER)  # outlived a tenant deleted before key records: not this one's
        owner = UNKNOWN_OWNER
    if owner is None or owner in adopt:
        record(client, base, uid)
        how = "re-attached from a deleted tenant" if owner else "recorded"
        return base, [f"transit key {base} owner {how}"]
    # Kept for another (deleted) Tenant's archives: this one gets a key of its own.
    record(client, own, uid)
    return own, [f"transit key {own} owner recorded (transit key {base} is kept for an earlier tenant's archives)"]


def release(client: hvac.Client, tenant: str, uid: str, legacy_ours: bool, keep: bool) -> list[str]:
    """Delete the transit keys of Tenant `uid` named `tenant` and their records, or with `keep` keep them
    recorded as its own (a legacy key gets its record now); returns what was deleted. Its own: recorded
    for `uid`, or `tenant-<name>` without a record when `legacy_ours` (the tenant's ownership record is
    this Tenant's, or missing). A key recorded for another Tenant is never touched."""
    done: list[str] = []
    base = names.vault_key(tenant)
    for key in (base, names.vault_owner_key(tenant, uid)):
        recorded = owner_of(client, key)
        if recorded != uid and not (recorded is None and key == base and legacy_ours):
            continue
        present = exists(client, key)
        if keep:
            if present and recorded is None:
                record(client, key, uid)
            continue
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
