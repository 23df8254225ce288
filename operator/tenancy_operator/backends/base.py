"""What every service adapter shares: how to reach a backend, what a tenant asks of it, and errors.

Each adapter module (`postgres`, `redis_acl`, `vault`) exposes the same verbs: `ensure` (read, then
write only what differs; returns what it repaired), `close`, `delete`, and `probe` for the Backend's
health. The slice says everything else, so there is no verb per transition: verify is `ensure`
finding nothing to do, rotation is `ensure` with new credentials, suspend and resume are `ensure`
with `suspended` set or cleared. The adapters hold no state but caches of what a server told them (a
normalized reference form, mounts already prepared); `forget_cache(target=None)` drops them, and the
handlers call it when a repair recurs, because a stale cache is the usual cause.

`close(target, tenant) -> list[str]` shuts every door of a tenant whose Tenant object is gone and
whose data is retained (reclaim Retain, and Archive until it is built), knowing only the name:
PostgreSQL login roles NOLOGIN and their sessions ended; the Redis ACL user `off` and its
connections killed; the OpenBao policy rewritten to deny all, the login role removed and its tokens
revoked. It keeps every byte of data, reads first and writes only what is still open (a second call
returns `[]`), and raises BackendUnavailable / BackendRefused like the other verbs, so a deletion
retries rather than leaving a door open unseen. It returns what it closed.

An adapter may also offer `ensure_server(target, settings) -> ServerReport` (and the name of the
Backend condition it sets, `SERVER_CONDITION`): server-wide hardening the Backend's spec asks for
(PostgreSQL `restrictSharedDatabases`), run with its health probe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api import names

__all__ = ["BackendUnavailable", "BackendRefused", "UnsafeServerConfig", "AdminPrivilegeMissing", "OwnedByAnotherTenant", "NameHeldByArchives", "Ownership", "another_tenants", "foreign_members", "Target", "TenantSlice",
           "Report", "ServerReport"]


class BackendUnavailable(Exception):
    """The server could not be reached or failed; retry with backoff."""


class BackendRefused(Exception):
    """The server answered but refused what we asked, in a way retrying will not fix."""


class UnsafeServerConfig(BackendRefused):
    """The server is reachable and the admin works, but a server-wide setting breaks the tenants'
    fence (an OpenSearch role mapping that gives every user a role, say): the Backend is not Ready,
    with a message naming the setting, until a person changes it."""
class AdminPrivilegeMissing(BackendRefused):
    """The admin credentials log in but lack a privilege the adapter needs; the message names it."""


class OwnedByAnotherTenant(BackendRefused):
    """Objects this tenant's name maps to carry another Tenant's UID: nothing was written.

    `objects` names them in the backend's terms; `owner_uid` is the UID in their mark. The handler
    turns it into a Stalled part naming the owner (see handlers/services_part.py).
    """

    def __init__(self, backend: str, objects: list[str], owner_uid: str):
        self.backend, self.objects, self.owner_uid = backend, objects, owner_uid
        super().__init__(f"{', '.join(objects)} on {backend} carry the ownership mark of Tenant uid {owner_uid}")


class NameHeldByArchives(BackendRefused):
    """The tenant's transit key `tenant-<name>` is recorded for another (deleted) Tenant `owner_uid`, kept
    because it wraps that tenant's archives: nothing was written, and this Tenant gets no login role, as
    its workloads would reach that key (backends/vault_keys.py). The handler turns it into a Stalled part."""

    def __init__(self, backend: str, key: str, owner_uid: str):
        self.backend, self.key, self.owner_uid = backend, key, owner_uid
        super().__init__(f"transit key {key} on {backend} is kept for the archives of an earlier Tenant "
                         f"(uid {owner_uid})")


def another_tenants(mark: str | None, want: TenantSlice) -> bool:
    """Does `mark` (a role's COMMENT) name a Tenant other than `want`'s (its UID or one it adopts)?
    Unmarked objects and comments that are no mark are nobody's: False."""
    return bool(mark) and mark.startswith(names.OWNER_MARK_PREFIX) and names.parse_owner_mark(mark) not in (
        want.uid, *want.adopt_uids)


def foreign_members(roles: Mapping[str, Mapping[str, Any]], want: TenantSlice) -> list[tuple[str, str]]:
    """(role, member) for members of the tenant's roles that carry another Tenant's mark.

    `roles`: role name -> a role_state row whose `members` is JSON text {member: mark}. A member of a
    tenant's role has its privileges: one of another tenant (granted by hand, or by a login role on
    older PostgreSQL releases that let a role grant membership in itself) is a door between them. Unmarked members (the admin joining
    for a moment, platform roles) are left alone."""
    out = []
    for role, row in roles.items():
        for member, mark in json.loads(row.get("members") or "{}").items():
            if another_tenants(mark, want):
                out.append((role, member))
    return sorted(out)


class Ownership:
    """The verdict on each object's ownership mark, decided before any write (pure).

    A mark naming this Tenant's UID: ours. No mark at all: made by an operator version before marks
    existed (or by a crash between create and mark), adopted and marked. A UID the handler listed in
    `adopt` (retained data of a deleted Tenant, `spec.adoptRetainedData`): re-marked, and said so.
    Any other UID: OwnedByAnotherTenant, raised before the first write.
    """

    def __init__(self, backend: str, want: TenantSlice):
        self.backend, self.uid, self.adopt = backend, want.uid, want.adopt_uids
        self.to_mark: list[str] = []
        self.adopted: list[str] = []
        self._foreign: dict[str, list[str]] = {}

    def see(self, obj: str, owner_uid: str | None) -> None:
        """`owner_uid` is what the object's mark says (None: no mark, or the object does not exist)."""
        if owner_uid == self.uid:
            return
        if owner_uid is not None and owner_uid not in self.adopt:
            self._foreign.setdefault(owner_uid, []).append(obj)
            return
        if owner_uid is not None:
            self.adopted.append(obj)
        self.to_mark.append(obj)

    def check(self) -> None:
        if not self.uid:
            raise ValueError("a TenantSlice needs the Tenant's uid to mark what it owns")
        for owner_uid, objects in self._foreign.items():
            raise OwnedByAnotherTenant(self.backend, objects, owner_uid)


@dataclass(frozen=True)
class Target:
    """One Backend: where it is and the admin credentials from its Secret."""

    name: str
    type: str
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    tls: bool = False
    public_host: str = ""
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def app_host(self) -> str:
        return self.public_host or self.host


@dataclass(frozen=True)
class TenantSlice:
    """What one tenant needs from one backend, already decided by reconcile/."""

    tenant: str
    namespace: str
    uid: str = ""
    """The Tenant's metadata.uid: every object is marked with it, and objects marked otherwise are refused."""
    adopt_uids: frozenset[str] = frozenset()
    """UIDs of deleted Tenants whose retained data this one re-attaches (spec.adoptRetainedData)."""
    restoring_uid: str = ""
    """OpenBao: the UID of the deleted Tenant whose archive spec.restoreFrom loads into this one; its kept
    transit key `tenant-<name>` is re-recorded as this Tenant's (a person's decision: backends/vault_keys.py)."""
    password: str = field(default="", repr=False)
    """The active credential's password; empty: unknown this pass, the backend keeps what it holds."""
    slot: str = "a"
    """The PostgreSQL login role slot that is active."""
    previous_valid: bool = False
    """Within a rotation overlap: the other slot / previous password keeps working."""
    previous_password_sha256: str = ""
    """Redis: the previous password's hash, accepted during the overlap."""
    password_staged: bool = False
    """This pass hands the active slot a password it has not held yet (a rotation's, or the first
    credentials'): writing it is the rotation's; a password written on any other pass repairs drift."""
    suspended: bool = False
    connection_limit: int = 20
    transit_key: bool = True
    """OpenBao: transit use in the policy and `VAULT_TRANSIT_*` in the Secret; off keeps an existing key."""
    kv: bool = True
    """OpenBao: the KV path in the policy and `VAULT_KV_*` in the Secret."""
    signing_algorithm: str = ""
    """When set, a session-signing key of this type (TenantSessionPolicy)."""
    session_rotate_every: float = 0.0
    """Seconds: the session key gets a new version when its newest is this old (0: never)."""
    session_overlap: float = 0.0
    """Seconds a replaced session key version stays live after its successor is made."""
    max_shards: int = 0
    """Search: the shards the tenant's indices may hold before index creation is refused (0: no limit)."""
    tokens_issued_before: float | None = None
    """OpenBao: revoke the role's tokens issued before this moment (Unix seconds). Set once the overlap
    of a rotation has ended, so tokens from before a rotation (a compromised role, say) stop working
    then, while apps that log in again get new ones."""


@dataclass
class Report:
    """What an ensure did: the writes it made (empty in steady state) and what apps need to know."""

    repaired: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    """For a repaired object: what differed, in words (field names and non-secret values only)."""
    credential_writes: list[str] = field(default_factory=list)
    """The repaired entries a change of credentials explains alone (a password, a slot's LOGIN turned on
    or off and the sessions that ended with it): a rotation's pass counts them as the rotation's, every
    other entry as drift."""
    adopted: list[str] = field(default_factory=list)
    """Objects retained from a deleted Tenant and re-marked as this one's (a RetainedDataAdopted Event)."""
    endpoints: dict[str, str] = field(default_factory=dict)
    version: str = ""
    session_keys: dict[str, Any] | None = None
    """OpenBao: the JWK Set (RFC 7517) of the session key's live versions, when the tenant has one."""
    session_rotated: list[str] = field(default_factory=list)
    """OpenBao: what the session key's schedule changed this pass (rotated, retired, trimmed); not drift."""
    database_bytes: int | None = None
    """PostgreSQL: the size of the tenant's database as this pass read it (pg_database_size)."""
    refused: str = ""
    """What the admin may not put right (a tenant role's attribute only a superuser may take), with the
    statement a person runs: the part is Stalled, reason InsufficientPrivilege; the writes made count."""
    limit: str = ""
    """A limit the tenant has reached and what the server refuses while it lasts (the service works):
    the part's reason is LimitReached, a Warning Event."""


@dataclass
class ServerReport:
    """What `ensure_server` found: one Backend condition (type, True/False, reason, message) and its writes."""

    condition: str
    ok: bool
    reason: str
    message: str
    repaired: list[str] = field(default_factory=list)
