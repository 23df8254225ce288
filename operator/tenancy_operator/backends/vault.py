"""OpenBao (Vault API) adapter: a transit key, a KV v2 path and a Kubernetes login role.

Per tenant: transit key `tenant-<name>` (and a signing key `tenant-<name>` in its own
`transit-sessions` mount), KV v2 data under `tenants/tenant-<name>/`, and role `tenant-<name>` in the
Kubernetes auth method, bound to ServiceAccount `tenant-app` in the tenant namespace `tenant-<name>`
and granting the fixed policies (TENANT_POLICIES) the spec enables. Those policies are the platform's
and templated on the login's namespace, so every tenant object is named as its namespace and the
operator writes no policy text (its own policy refuses it: charts/tenancy-operator/files/openbao-operator.hcl).
Role fields are sent as comma strings, the form the operator's policy admits.

Ownership: the KV v2 entry `tenants/<name>` (beside the tenant's `tenant-<name>/` folder, so outside its
policy) holds no data, only `custom_metadata` with the owning Tenant's UID; it is read before any
write and covers every object of the tenant here. The transit key has its own record
(backends/vault_keys.py), because it can outlive the tenant for its archives: a new Tenant of the
same name is then refused (NameHeldByArchives, before any write: no login role, so its workloads never
reach the kept key) until a person restores one of those archives into it or the purge deletes the key.

Closing the door (suspend, Retain on delete) removes the login role so no new token is issued, then
revokes the role's outstanding tokens by accessor (a revoked token is refused at once). A spec that
takes a policy away from a live role revokes the tokens issued before, which still carry it.

hvac is synchronous; each call runs in a thread so kopf's loop keeps going.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import hvac
import requests
from hvac import exceptions as hvac_errors

from ..api import names
from . import vault_keys, vault_login, vault_sessions
from .base import (
    AdminPrivilegeMissing,
    BackendRefused,
    BackendUnavailable,
    OwnedByAnotherTenant,
    Ownership,
    Report,
    Target,
    TenantSlice,
)

__all__ = ["ensure", "close", "delete", "probe", "forget_cache", "token_policies", "TENANT_POLICIES", "TRANSIT_MOUNT",
           "KV_MOUNT", "AUTH_MOUNT"]

TRANSIT_MOUNT = vault_keys.TRANSIT_MOUNT
SESSION_MOUNT = "transit-sessions"
OWNER_FIELD = vault_keys.OWNER_FIELD
KV_MOUNT = vault_keys.KV_MOUNT
AUTH_MOUNT = "kubernetes"
APP_SERVICE_ACCOUNT = "tenant-app"
MAX_TOKEN_LOOKUPS = 2000
"""Token accessors looked up per pass at most; the role is already gone, so a pass that runs out of
budget leaves the rest to the next pass instead of stalling the reconcile."""
_prepared: set[tuple[str, str, int]] = set()
_token_roles: dict[tuple[str, str, int], dict[str, tuple[str, float]]] = {}
"""Per server: token accessor -> (the auth path and role that issued it, its creation time). A token's metadata never
changes, so each live accessor is looked up once; entries of expired tokens are dropped each pass."""


TENANT_POLICIES = {"kv": "tenancy-tenant-kv", "transit": "tenancy-tenant-transit", "session": "tenancy-tenant-session"}
"""The fixed policies the platform writes (charts/tenancy-operator/files/openbao-tenant-*.hcl): their paths
follow the token's own Kubernetes login (its ServiceAccount's namespace, `tenant-<name>`), so one text
serves every tenant and the operator never writes policy text."""


def token_policies(kv: bool, transit: bool, session_key: bool) -> list[str]:
    """The fixed policies a tenant's login role grants: exactly what its spec enables, in a fixed order
    (the operator's own policy admits only these comma-joined sets as `token_policies`)."""
    return [TENANT_POLICIES[part] for part, on in (("kv", kv), ("transit", transit), ("session", session_key)) if on]


def _client(target: Target) -> hvac.Client:
    return vault_login.client(target, vault_login.token_for(target))


def _read(client: hvac.Client, path: str) -> dict[str, Any] | None:
    try:
        return client.read(path)
    except hvac_errors.InvalidPath:
        return None


def forget_cache(target: Target | None = None) -> None:
    """Forget which servers were prepared (mounts, auth method): the next call checks them again.

    OpenBao in dev mode, or a server restored from an older snapshot, comes back without them.
    """
    if target is None:
        _prepared.clear()
    else:
        _prepared.discard((target.name, target.host, target.port))


async def _run(target: Target, work):
    def call():
        try:
            return work(_client(target))
        except (requests.RequestException, hvac_errors.VaultError):
            forget_cache(target)  # a failure may mean the mounts went away (a restart without storage)
            raise

    try:
        return await asyncio.to_thread(call)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise BackendUnavailable(f"vault backend {target.name} unreachable: {exc}") from exc
    except (hvac_errors.VaultDown, hvac_errors.InternalServerError, hvac_errors.BadGateway) as exc:
        raise BackendUnavailable(f"vault backend {target.name} failed: {exc}") from exc
    except hvac_errors.Forbidden as exc:
        vault_login.forget(target)  # a revoked AppRole token: log in again next time
        raise BackendRefused(f"vault backend {target.name} refused the operator's token: {exc}") from exc
    except hvac_errors.VaultError as exc:
        raise BackendRefused(f"vault backend {target.name} refused: {exc}") from exc


def _prepare(client: hvac.Client, target: Target) -> None:
    """Mounts and the Kubernetes auth method every tenant relies on; read first, write once."""
    key = (target.name, target.host, target.port)
    if key in _prepared:
        return
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    try:  # a least-privileged token may not mount: the platform makes them (platform/admins.sh)
        for transit in (TRANSIT_MOUNT, SESSION_MOUNT):
            if f"{transit}/" not in mounts:
                client.sys.enable_secrets_engine("transit", path=transit)
        if f"{KV_MOUNT}/" not in mounts:
            client.sys.enable_secrets_engine("kv", path=KV_MOUNT, options={"version": "2"})
        auths = client.sys.list_auth_methods()
        auths = auths.get("data", auths)
        if f"{AUTH_MOUNT}/" not in auths:
            client.sys.enable_auth_method("kubernetes", path=AUTH_MOUNT)
    except hvac_errors.Forbidden as exc:
        raise AdminPrivilegeMissing(
            f"vault backend {target.name}: mounts {TRANSIT_MOUNT}/, {SESSION_MOUNT}/ (transit), {KV_MOUNT}/ (kv v2) "
            f"and auth method {AUTH_MOUNT}/ must exist, and the operator's token may not make them: {exc}") from exc
    # The platform configures Kubernetes auth and writes the fixed tenant policies; the operator may
    # only look (its policy refuses writes), and says what is missing instead of failing each tenant.
    if not ((_read(client, f"auth/{AUTH_MOUNT}/config") or {}).get("data") or {}).get("kubernetes_host"):
        raise AdminPrivilegeMissing(f"vault backend {target.name}: auth method {AUTH_MOUNT}/ has no kubernetes_host; "
                                    "the platform admin configures it (docs/backend-admins.md)")
    absent = [p for p in TENANT_POLICIES.values() if _read(client, f"sys/policies/acl/{p}") is None]
    if absent:
        raise AdminPrivilegeMissing(f"vault backend {target.name}: policies {', '.join(absent)} are missing; the platform "
                                    "admin writes them from charts/tenancy-operator/files/openbao-tenant-*.hcl")
    _prepared.add(key)


async def probe(target: Target) -> str:
    def work(client: hvac.Client) -> str:
        health = client.sys.read_health_status(method="GET")
        health = health.json() if hasattr(health, "json") else health
        if health.get("sealed"):
            raise BackendUnavailable(f"vault backend {target.name} is sealed")
        missing = vault_login.missing_capabilities(client, target)
        if missing:
            raise AdminPrivilegeMissing(f"vault backend {target.name}: the operator's token lacks {'; '.join(missing)} "
                                        "(policy: charts/tenancy-operator/files/openbao-operator.hcl)")
        _prepare(client, target)
        return str(health.get("version", ""))

    return await _run(target, work)


def _role_body(namespace: str, policies: list[str]) -> dict[str, Any]:
    """The login role as OpenBao reads it back (lists); `_role_params` gives the form it is written in."""
    return {
        "bound_service_account_names": [APP_SERVICE_ACCOUNT],
        "bound_service_account_namespaces": [namespace],
        "token_policies": policies,
        "token_ttl": 3600,
    }


def _role_params(body: dict[str, Any]) -> dict[str, Any]:
    """Lists as comma strings: the operator's policy admits `allowed_parameters` values, which the server
    compares with strings only (a JSON list matches none)."""
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in body.items()}


def _role_differs(live: dict[str, Any] | None, body: dict[str, Any]) -> list[str]:
    def norm(value: Any) -> Any:
        return sorted(value) if isinstance(value, list) else value

    return sorted(k for k in body if live is None or norm(live.get(k) or ([] if isinstance(body[k], list) else None))
                  != norm(body[k]))


async def ensure(target: Target, want: TenantSlice) -> Report:
    policy, role = names.vault_policy(want.tenant), names.vault_policy(want.tenant)
    session = bool(want.signing_algorithm)
    report = Report()
    key = names.vault_key(want.tenant)

    def work(client: hvac.Client) -> None:
        _prepare(client, target)
        record = f"{KV_MOUNT}/metadata/{names.vault_owner_record(want.tenant)}"
        marks = Ownership(f"vault backend {target.name}", want)
        marks.see(f"policy, role, keys and {names.vault_kv_path(want.tenant)}/", _owner_uid(client, record))
        marks.check()
        # The key first: a pass killed before the mark is written still sees the tenant as new next time.
        _, recorded = vault_keys.resolve(client, want.tenant, want.uid, want.adopt_uids,
                                         newly_marked=bool(marks.to_mark) and not marks.adopted,
                                         restoring=want.restoring_uid, backend=f"vault backend {target.name}")
        report.repaired += recorded
        if marks.to_mark:
            client.write(record, custom_metadata={OWNER_FIELD: want.uid})
            report.repaired.append(f"ownership mark {record}")
            report.adopted += marks.adopted
        # A transit key is never deleted when transitKey is turned off: data encrypted with it would
        # become unreadable. It only leaves the policy and the Secret.
        if want.transit_key and _read(client, f"{TRANSIT_MOUNT}/keys/{key}") is None:
            client.write(f"{TRANSIT_MOUNT}/keys/{key}", type="aes256-gcm96")
            report.repaired.append(f"transit key {key}")
        if session:
            # KeyTypeChanged (a ValueError) leaves the part Stalled: retrying cannot change a key's type.
            keys = vault_sessions.ensure(client, SESSION_MOUNT, names.vault_session_key(want.tenant),
                                         want.signing_algorithm, want.session_rotate_every or float("inf"),
                                         want.session_overlap, time.time())
            report.repaired += keys.repaired
            report.session_rotated = keys.rotated
            report.session_keys = keys.jwks
        if want.suspended:
            report.repaired += _close(client, target, want.tenant)
        else:
            report.repaired += _drop_legacy_policy(client, policy)
            path = f"auth/{AUTH_MOUNT}/role/{role}"
            body = _role_body(want.namespace, token_policies(want.kv, want.transit_key, session))
            live = (_read(client, path) or {}).get("data")
            differs = _role_differs(live, body)
            if differs:
                client.write(path, **_role_params(body))
                report.repaired.append(f"login role {role}")
                report.diffs[f"login role {role}"] = "missing" if live is None else "; ".join(
                    f"{k}: {live.get(k)!r} (want {body[k]!r})" for k in differs)
                if live is not None and set(live.get("token_policies") or []) - set(body["token_policies"]):
                    # Issued tokens keep the policies they were issued with: revoke those holding one taken away.
                    retired = _revoke_tokens(client, target, role, issued_before=time.time())
                    if retired:
                        report.repaired.append(f"{retired} tokens of role {role} holding a policy taken away revoked")
            if want.tokens_issued_before is not None:
                retired = _revoke_tokens(client, target, role, issued_before=want.tokens_issued_before)
                if retired:
                    report.repaired.append(f"{retired} tokens of role {role} from before the last rotation revoked")
        health = client.sys.read_health_status(method="GET")
        report.version = str((health.json() if hasattr(health, "json") else health).get("version", ""))

    await _run(target, work)
    scheme = "https" if target.tls else "http"
    report.endpoints = {
        "VAULT_ADDR": f"{scheme}://{target.app_host}:{target.port}",
        "VAULT_AUTH_PATH": f"auth/{AUTH_MOUNT}",
        "VAULT_ROLE": role,
    }
    if want.kv:
        report.endpoints |= {"VAULT_KV_MOUNT": KV_MOUNT, "VAULT_KV_PATH": names.vault_kv_path(want.tenant).split("/", 1)[1]}
    if want.transit_key:
        report.endpoints |= {"VAULT_TRANSIT_MOUNT": TRANSIT_MOUNT, "VAULT_TRANSIT_KEY": key}
    return report


async def close(target: Target, tenant: str) -> list[str]:
    """Close the tenant's door and keep its keys and KV data: no login role, tokens revoked."""
    return await _run(target, lambda client: _close(client, target, tenant))


def _drop_legacy_policy(client: hvac.Client, policy: str) -> list[str]:
    """Remove the per-tenant policy `tenant-<name>` earlier versions wrote; the role no longer names it."""
    if _read(client, f"sys/policies/acl/{policy}") is None:
        return []
    client.delete(f"sys/policies/acl/{policy}")
    return [f"policy {policy} of an earlier version removed"]


def _close(client: hvac.Client, target: Target, tenant: str) -> list[str]:
    # Order: no new token can be issued; then the issued ones are revoked (refused at once). Each step
    # reads first, so a pass over a closed tenant writes nothing.
    policy = role = names.vault_policy(tenant)
    done = _drop_legacy_policy(client, policy)
    path = f"auth/{AUTH_MOUNT}/role/{role}"
    if _read(client, path) is not None:
        client.delete(path)
        done.append(f"login role {role} removed")
    revoked = _revoke_tokens(client, target, role)
    if revoked:
        done.append(f"{revoked} tokens of role {role} revoked")
    return done


def _revoke_tokens(client: hvac.Client, target: Target, role: str, issued_before: float | None = None) -> int:
    """Revoke the live tokens the Kubernetes auth role issued (only those created before
    `issued_before`, Unix seconds, when given); returns how many.

    OpenBao has no "tokens of a role" index: list every accessor (`LIST auth/token/accessors`, which
    needs `sudo`), look each new one up once (`auth/token/lookup-accessor`: `path` and `meta.role`
    name the login that issued it, `creation_time` when), and revoke the matches
    (`auth/token/revoke-accessor`). A token that expires meanwhile answers 400 and is skipped.
    """
    key = (target.name, target.host, target.port)
    try:
        listing = client.list("auth/token/accessors")
    except hvac_errors.InvalidPath:
        return 0
    accessors = ((listing or {}).get("data") or {}).get("keys") or []
    live = set(accessors)
    known = {a: v for a, v in _token_roles.get(key, {}).items() if a in live}
    _token_roles[key] = known
    issuer = f"auth/{AUTH_MOUNT}/login|{role}"
    revoked, lookups = 0, 0
    for accessor in accessors:
        if accessor not in known:
            if lookups >= MAX_TOKEN_LOOKUPS:
                break
            lookups += 1
            try:
                data = (client.write("auth/token/lookup-accessor", accessor=accessor) or {}).get("data") or {}
            except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath):
                continue
            known[accessor] = (f"{data.get('path', '')}|{(data.get('meta') or {}).get('role', '')}",
                               float(data.get("creation_time") or 0))
        issued_by, created = known[accessor]
        if issued_by == issuer and (issued_before is None or created < issued_before):
            try:
                client.write("auth/token/revoke-accessor", accessor=accessor)
                revoked += 1
            except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath):
                pass
            known.pop(accessor, None)
    return revoked


def _owner_uid(client: hvac.Client, record: str) -> str | None:
    meta = ((_read(client, record) or {}).get("data") or {}).get("custom_metadata") or {}
    return meta.get(OWNER_FIELD) or None


async def delete(target: Target, tenant: str, uid: str, keep_transit_key: bool = False) -> list[str]:
    """Everything of the tenant, the ownership record last; raises OwnedByAnotherTenant, touching
    nothing, when the record names another UID. `keep_transit_key`: the tenant's transit key stays,
    recorded as this Tenant's (vault_keys), because it wraps the data key of an archive (reclaim
    Archive, state Archived, an export that still lives)."""
    policy = names.vault_policy(tenant)
    kv = names.vault_kv_path(tenant).split("/", 1)[1]
    record = f"{KV_MOUNT}/metadata/{names.vault_owner_record(tenant)}"
    done: list[str] = []

    def work(client: hvac.Client) -> None:
        owner_uid = _owner_uid(client, record)
        if owner_uid not in (None, uid):
            raise OwnedByAnotherTenant(f"vault backend {target.name}", [f"policy, role, keys and {kv}/"], owner_uid)
        if _read(client, f"auth/{AUTH_MOUNT}/role/{policy}") is not None:
            client.delete(f"auth/{AUTH_MOUNT}/role/{policy}")
            done.append(f"login role {policy}")
        # Tokens the role issued keep their policies (paths named by their namespace) until they expire:
        # a Tenant of the same name made later would give them its new keys and KV data.
        revoked = _revoke_tokens(client, target, policy)
        if revoked:
            done.append(f"{revoked} tokens of role {policy} revoked")
        if _read(client, f"sys/policies/acl/{policy}") is not None:
            client.delete(f"sys/policies/acl/{policy}")
            done.append(f"policy {policy} of an earlier version")
        done.extend(vault_keys.release(client, tenant, uid, legacy_ours=owner_uid in (None, uid), keep=keep_transit_key))
        name = names.vault_session_key(tenant)
        if _read(client, f"{SESSION_MOUNT}/keys/{name}") is not None:
            client.write(f"{SESSION_MOUNT}/keys/{name}/config", deletion_allowed=True)
            client.delete(f"{SESSION_MOUNT}/keys/{name}")
            done.append(f"{SESSION_MOUNT} key {name}")
        _delete_tree(client, kv, done)
        if _read(client, record) is not None:
            client.delete(record)

    await _run(target, work)
    return done


def _delete_tree(client: hvac.Client, path: str, done: list[str]) -> None:
    try:
        listing = client.list(f"{KV_MOUNT}/metadata/{path}")
    except hvac_errors.InvalidPath:
        return
    for entry in ((listing or {}).get("data") or {}).get("keys", []):
        child = f"{path}/{entry}".replace("//", "/").rstrip("/")
        if entry.endswith("/"):
            _delete_tree(client, child, done)
        else:
            client.delete(f"{KV_MOUNT}/metadata/{child}")
            done.append(f"kv {KV_MOUNT}/{child}")
