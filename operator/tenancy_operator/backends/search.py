"""OpenSearch adapter: one index space per tenant, fenced by the security plugin.

Per tenant `<name>` (names from api/names.py, injective: the prefix ends in `_`, which tenant names
cannot hold, so `t-a_*` never covers tenant `a-b`'s `t-a-b_*`):
- indices `t-<name>_*`, and an index template `tenant-<name>` for that pattern (one shard, no
  replica: what a single node can hold green);
- a role `tenant-<name>` with document, index and mapping actions on `t-<name>_*` only (no aliases:
  see INDEX_ACTIONS), and the cluster actions a client needs for bulk, mget, msearch and scrolls
  (bulk, mget, msearch, mtv, scroll: CLUSTER_PERMISSIONS), none that lists or reads other indices;
- internal users `tenant-<name>_a` and `tenant-<name>_b` (the credential slots, as PostgreSQL's
  login roles), mapped to the role by the role mapping `tenant-<name>`.

Rotation: the new password goes to the other slot's user; the previous slot's user keeps its
password through the overlap and is removed when it ends, so a running app is never cut and the
old credentials are refused afterwards. Suspend and Retain-on-delete (`close`) remove both users
and keep the role, mapping, template and indices. Every request authenticates anew (basic auth),
so a removed user is refused at its next request.

Ownership: the role's and the role mapping's `description`, the template's `_meta` and the users'
`attributes` carry the owner mark; the role's is read before any write.

Reads first: a pass that finds everything as wanted only reads (GETs, and one authentication as
the active user to check its password). Admin credentials come from the Backend's Secret
(`username`, `password`, and `ca.crt`, the CA that signed the server's certificate, when
`endpoint.tls`).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import ssl
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    NotFoundError,
    SSLError,
    TransportError,
)
from opensearchpy.exceptions import (
    ConnectionError as OSConnectionError,
)

from ..api import names
from . import search_es
from .base import (
    BackendRefused,
    BackendUnavailable,
    OwnedByAnotherTenant,
    Ownership,
    Report,
    Target,
    TenantSlice,
    UnsafeServerConfig,
)
from .search_limits import role_for_limit, settings_path
from .search_names import MARK_ATTRIBUTE, SLOTS, pattern, role_name, user_name

__all__ = ["ensure", "close", "delete", "probe", "forget_cache", "unsafe_mappings", "role_body", "template_body", "mapping_body",
           "user_body", "SLOTS", "CLUSTER_PERMISSIONS", "INDEX_ACTIONS"]

SECURITY = "/_plugins/_security/api"
# The multi-item requests' own actions, which the plugin checks at cluster level before each item is
# checked against the index permissions. Not the `cluster_composite_ops` group: it also holds
# `indices:admin/aliases*` and `indices:data/write/reindex`.
CLUSTER_PERMISSIONS = ("indices:data/write/bulk", "indices:data/read/mget", "indices:data/read/msearch",
                       "indices:data/read/mtv", "indices:data/read/scroll")
# Not `indices_all`: it holds indices:admin/aliases, and the plugin checks an alias request against the
# index only, so A could name an alias of its own index `t-<b>_x` and B's searches would read A's data.
INDEX_ACTIONS = ("crud", "create_index", "indices_monitor", "indices:admin/delete", "indices:admin/get",
                 "indices:admin/mapping/put", "indices:admin/mappings/get", "indices:admin/refresh*",
                 "indices:admin/flush*", "indices:admin/settings/update", "indices:admin/resolve/index")
# What a tenant at its shard limit (TenantSlice.max_shards) loses: new indices (explicit or made by a
# write to a missing index) and settings updates (more replicas).
GROWTH_ACTIONS = ("create_index", "indices:admin/settings/update")

_clients: dict[tuple[str, str, int, str], AsyncOpenSearch] = {}
# The client logs every request (a 404 we expect as a warning); the adapter reports what matters.
logging.getLogger("opensearch").setLevel(logging.ERROR)


def index_actions(at_limit: bool = False) -> list[str]:
    """The role's actions on the tenant's pattern; at its shard limit, without GROWTH_ACTIONS."""
    return [a for a in INDEX_ACTIONS if not (at_limit and a in GROWTH_ACTIONS)]


def role_body(tenant: str, uid: str, at_limit: bool = False) -> dict[str, Any]:
    return {"description": names.owner_mark(uid), "cluster_permissions": list(CLUSTER_PERMISSIONS),
            "index_permissions": [{"index_patterns": [pattern(tenant)], "allowed_actions": index_actions(at_limit),
                                   "fls": [], "masked_fields": []}],
            "tenant_permissions": []}


def mapping_body(tenant: str, uid: str) -> dict[str, Any]:
    return {"description": names.owner_mark(uid), "users": [user_name(tenant, s) for s in SLOTS],
            "backend_roles": [], "hosts": []}


def template_body(tenant: str, uid: str) -> dict[str, Any]:
    return {"index_patterns": [pattern(tenant)], "priority": 100, "_meta": {MARK_ATTRIBUTE: uid},
            "template": {"settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0"}}}}


def user_body(uid: str, password: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": {MARK_ATTRIBUTE: uid}, "backend_roles": []}
    if password is not None:
        body["password"] = password
    return body


def _client(target: Target, username: str | None = None, password: str | None = None) -> AsyncOpenSearch:
    """The admin client (cached per Backend), or a throw-away one for a tenant user's credentials."""
    key = (target.name, target.host, target.port, target.password)
    if username is None and key in _clients:
        return _clients[key]
    tls: dict[str, Any] = {}
    if target.tls:  # the Secret's CA, else the system's; hostname checked either way
        tls = {"use_ssl": True, "ssl_context": ssl.create_default_context(cadata=target.extra.get("ca.crt") or None)}
    client = AsyncOpenSearch(hosts=[{"host": target.host, "port": target.port}], **tls,
                             http_auth=(username or target.username, password if username else target.password),
                             timeout=10, max_retries=0)
    if username is None:
        _clients[key] = client
    return client


def elastic(target: Target) -> bool:
    """Is this Backend Elasticsearch (`spec.search.flavor`)? Its verbs are search_es's."""
    return target.extra.get("flavor") == "elasticsearch"


def forget_cache(target: Target | None = None) -> None:
    """Drop cached admin clients (of one Backend, or all); their connections close with them."""
    search_es.forget_cache(target)
    for key in [k for k in _clients if target is None or k[0] == target.name]:
        _clients.pop(key, None)


async def _call(target: Target, method: str, path: str, body: Any = None, *, client: AsyncOpenSearch | None = None,
                missing_ok: bool = False) -> Any:
    """One request; None for a 404 when `missing_ok`. Errors become BackendUnavailable/BackendRefused."""
    try:
        raw = isinstance(body, str)  # an NDJSON `_bulk` body (search_export), sent as it is
        return await (client or _client(target)).transport.perform_request(
            method, path, body=body if raw else json.dumps(body) if body is not None else None,
            headers={"content-type": "application/x-ndjson" if raw else "application/json"} if body is not None
            else None)
    except NotFoundError:
        if missing_ok:
            return None
        raise BackendRefused(f"search backend {target.name}: {method} {path} found nothing") from None
    except SSLError as exc:
        raise BackendRefused(f"search backend {target.name}: the server's TLS certificate does not verify against "
                             f"the admin Secret's ca.crt ({_short(exc)})") from None
    except AuthenticationException:
        raise BackendRefused(f"search backend {target.name}: the admin Secret's username/password were refused "
                             "(HTTP 401)") from None
    except AuthorizationException as exc:
        raise BackendRefused(f"search backend {target.name}: the admin user may not {method} {path} (HTTP 403: "
                             f"{_short(exc)})") from None
    except OSConnectionError as exc:
        if _certificate_problem(exc):  # aiohttp reports a failed verification as a connection error
            raise BackendRefused(f"search backend {target.name}: the server's TLS certificate does not verify "
                                 f"against the admin Secret's ca.crt ({_short(exc)})") from None
        raise BackendUnavailable(f"search backend {target.name} unreachable: {_short(exc)}") from None
    except TransportError as exc:
        if isinstance(exc.status_code, int) and exc.status_code >= 500 or exc.status_code == "N/A":
            raise BackendUnavailable(f"search backend {target.name} failed: {_short(exc)}") from None
        raise BackendRefused(f"search backend {target.name} refused {method} {path}: {_short(exc)}") from None


def _certificate_problem(exc: BaseException) -> bool:
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or e in seen:
            continue
        if isinstance(e, ssl.SSLCertVerificationError) or type(e).__name__ == "ClientConnectorCertificateError":
            return True
        seen.append(e)
        todo += [getattr(e, "info", None), e.__cause__, e.__context__]
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "error", "") or exc)
    info = getattr(exc, "info", None)
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        text = str(info["error"].get("reason") or text)
    return text[:300]


def unsafe_mappings(mappings: dict[str, Any]) -> list[str]:
    """Role mappings (of `GET .../rolesmapping`) that hand a role to tenants' users the operator did not
    map: a user pattern that matches `tenant-<name>_a`, or any host (a host mapping applies to every
    user connecting from it). The plugin's stock `own_index` mapping (`users: ["*"]`, indices_all on an
    index named like the user, aliases included) is one: with it a tenant makes index `tenant-<a>_a`
    and aliases it as `t-<b>_x`, into tenant B's searches. Each entry names the mapping and why."""
    found = []
    for name, mapping in sorted((mappings or {}).items()):
        users = [u for u in mapping.get("users") or [] if any(c in u for c in "*?[")
                 and fnmatch.fnmatchcase("tenant-x_a", u)]
        hosts = list(mapping.get("hosts") or [])
        if users or hosts:
            found.append(f"{name} (" + ", ".join(([f"users {users}"] if users else []) +
                                                 ([f"hosts {hosts}"] if hosts else [])) + ")")
    return found


async def probe(target: Target) -> str:
    """The server's version; the admin must be able to read the role mappings, and none may give
    tenants' users a role the operator did not map (UnsafeServerConfig names it)."""
    if elastic(target):
        return await search_es.probe(target)
    info = await _call(target, "GET", "/")
    unsafe = unsafe_mappings(await _call(target, "GET", f"{SECURITY}/rolesmapping") or {})
    if unsafe:
        raise UnsafeServerConfig(
            f"search backend {target.name}: role mapping {'; '.join(unsafe)} gives every tenant's user a role "
            "beyond its own index pattern (the stock own_index mapping lets a tenant alias an index into another "
            f"tenant's space); delete it: DELETE {SECURITY}/rolesmapping/<name> (docs/how-it-works.md)")
    return str((info or {}).get("version", {}).get("number", ""))


async def _get(target: Target, kind: str, name: str) -> dict[str, Any] | None:
    found = await _call(target, "GET", f"{SECURITY}/{kind}/{name}", missing_ok=True)
    return (found or {}).get(name)


async def _template(target: Target, tenant: str) -> dict[str, Any] | None:
    found = await _call(target, "GET", f"/_index_template/{role_name(tenant)}", missing_ok=True)
    templates = (found or {}).get("index_templates") or []
    return templates[0].get("index_template") if templates else None


def _owner(obj: dict[str, Any] | None, where: str) -> str | None:
    if obj is None:
        return None
    if where == "description":
        return names.parse_owner_mark(obj.get("description"))
    if where == "_meta":
        return (obj.get("_meta") or {}).get(MARK_ATTRIBUTE)
    return (obj.get("attributes") or {}).get(MARK_ATTRIBUTE)


def _role_differs(live: dict[str, Any], want: dict[str, Any]) -> list[str]:
    found = []
    if live.get("description") != want["description"]:
        found.append("description (ownership mark)")
    if sorted(live.get("cluster_permissions") or []) != sorted(want["cluster_permissions"]):
        found.append(f"cluster_permissions {live.get('cluster_permissions')}")
    got = [(sorted(p.get("index_patterns") or []), sorted(p.get("allowed_actions") or []), bool(p.get("dls")),
            bool(p.get("fls")), bool(p.get("masked_fields"))) for p in live.get("index_permissions") or []]
    wanted = want["index_permissions"][0]
    if got != [([pattern_], sorted(wanted["allowed_actions"]), False, False, False)
               for pattern_ in wanted["index_patterns"]]:
        found.append(f"index_permissions {got}")
    if live.get("tenant_permissions"):
        found.append("tenant_permissions")
    return found


def _template_differs(live: dict[str, Any], want: dict[str, Any]) -> list[str]:
    found = []
    if sorted(live.get("index_patterns") or []) != want["index_patterns"]:
        found.append(f"index_patterns {live.get('index_patterns')}")
    if (live.get("_meta") or {}) != want["_meta"]:
        found.append("_meta (ownership mark)")
    settings = ((live.get("template") or {}).get("settings") or {}).get("index") or {}
    if {k: str(v) for k, v in settings.items()} != want["template"]["settings"]["index"]:
        found.append(f"settings {settings}")
    return found


async def _authenticates(target: Target, user: str, password: str) -> bool:
    """Does `user` log in with `password`? (a read: the plugin's authinfo as that user)."""
    client = _client(target, user, password)
    try:
        await _call(target, "GET", "/_plugins/_security/authinfo", client=client)
        return True
    except BackendRefused as exc:
        if "401" in str(exc):
            return False
        raise
    finally:
        await client.close()


async def ensure(target: Target, want: TenantSlice) -> Report:
    if elastic(target):
        return await search_es.ensure(target, want)
    tenant, report = want.tenant, Report()
    role, mapping = role_name(tenant), role_name(tenant)
    live_role = await _get(target, "roles", role)
    live_mapping = await _get(target, "rolesmapping", mapping)
    live_template = await _template(target, tenant)
    users = {slot: await _get(target, "internalusers", user_name(tenant, slot)) for slot in SLOTS}
    marks = Ownership(f"search backend {target.name}", want)
    marks.see(f"role {role} and indices {pattern(tenant)}", _owner(live_role, "description"))
    for what, owner in ((f"role mapping {mapping}", _owner(live_mapping, "description")),
                        (f"index template {role}", _owner(live_template, "_meta")),
                        *((f"internal user {user_name(tenant, s)}", _owner(u, "attributes")) for s, u in users.items())):
        if owner is not None:
            marks.see(what, owner)
    marks.check()
    report.adopted += marks.adopted

    async def put(what: str, path: str, body: dict[str, Any], diff: str) -> None:
        await _call(target, "PUT", path, body)
        report.repaired.append(what)
        report.diffs[what] = diff

    settings = await _call(target, "GET", settings_path(tenant), missing_ok=True) if want.max_shards else None
    want_role, drift, decided = role_for_limit(want, report, settings, live_role, role_body, _role_differs)
    if decided:
        await _call(target, "PUT", f"{SECURITY}/roles/{role}", want_role)
    elif drift:
        await put(f"role {role}", f"{SECURITY}/roles/{role}", want_role, "; ".join(drift))
    want_template = template_body(tenant, want.uid)
    drift = ["missing"] if live_template is None else _template_differs(live_template, want_template)
    if drift:
        await put(f"index template {role}", f"/_index_template/{role}", want_template, "; ".join(drift))
    want_mapping = mapping_body(tenant, want.uid)
    if live_mapping is None or live_mapping.get("description") != want_mapping["description"] or sorted(
            live_mapping.get("users") or []) != want_mapping["users"] or live_mapping.get("backend_roles") or \
            live_mapping.get("hosts"):
        await put(f"role mapping {mapping}", f"{SECURITY}/rolesmapping/{mapping}", want_mapping,
                  "missing" if live_mapping is None else f"users {live_mapping.get('users')}")
    for slot, live in users.items():
        user = user_name(tenant, slot)
        active = slot == want.slot
        keep = not want.suspended and (active or want.previous_valid)
        if not keep:
            if live is not None:
                await _call(target, "DELETE", f"{SECURITY}/internalusers/{user}", missing_ok=True)
                report.repaired.append(f"internal user {user} removed")
                if not want.suspended:  # the old slot at its overlap's end; a suspension's removal is not
                    report.credential_writes.append(f"internal user {user} removed")
            continue
        if not active:
            continue  # the previous slot keeps the password it has through the overlap
        if not want.password:
            continue  # the password is unknown this pass: the server keeps what it holds
        why = ("missing" if live is None else "attributes" if _owner(live, "attributes") != want.uid
               or live.get("backend_roles") else "")
        if not why and not await _authenticates(target, user, want.password):
            why = "password"
        if why:
            await put(f"internal user {user}", f"{SECURITY}/internalusers/{user}", user_body(want.uid, want.password),
                      why)
            if why in ("missing", "password") and want.password_staged:  # a rotation's staging makes it anew
                report.credential_writes.append(f"internal user {user}")
    scheme = "https" if target.tls else "http"
    report.endpoints = {
        "SEARCH_URL": f"{scheme}://{target.app_host}:{target.port}",
        "SEARCH_USERNAME": user_name(tenant, want.slot),
        "SEARCH_PASSWORD": want.password,
        "SEARCH_INDEX_PREFIX": names.search_prefix(tenant),
    }
    if target.tls and target.extra.get("ca.crt"):
        report.endpoints["SEARCH_CA_CERT"] = target.extra["ca.crt"]
    return report


async def close(target: Target, tenant: str) -> list[str]:
    """Remove both users (the tenant's doors); keep the role, mapping, template and every index."""
    if elastic(target):
        return await search_es.close(target, tenant)
    done = []
    for slot in SLOTS:
        user = user_name(tenant, slot)
        if await _get(target, "internalusers", user) is not None:
            await _call(target, "DELETE", f"{SECURITY}/internalusers/{user}", missing_ok=True)
            done.append(f"internal user {user} removed")
    return done


async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Remove the users, indices, template, role mapping and role (the role last: it holds the mark);
    raises OwnedByAnotherTenant, touching nothing, when the role's mark names another UID."""
    if elastic(target):
        return await search_es.delete(target, tenant, uid)
    role = role_name(tenant)
    owner = _owner(await _get(target, "roles", role), "description")
    if owner not in (None, uid):
        raise OwnedByAnotherTenant(f"search backend {target.name}", [f"role {role} and indices {pattern(tenant)}"],
                                   owner)
    done = await close(target, tenant)
    found = await _call(target, "GET", settings_path(tenant), missing_ok=True) or {}
    for index in sorted(found):
        if index.startswith(names.search_prefix(tenant)):  # exact names: never a wildcard delete
            await _call(target, "DELETE", f"/{index}", missing_ok=True)
            done.append(f"index {index}")
    for what, path in ((f"index template {role}", f"/_index_template/{role}"),
                       (f"role mapping {role}", f"{SECURITY}/rolesmapping/{role}"),
                       (f"role {role}", f"{SECURITY}/roles/{role}")):
        if await _call(target, "DELETE", path, missing_ok=True) is not None:
            done.append(what)
    return done
