"""Elasticsearch adapter (`spec.search.flavor: elasticsearch`): the same index space per tenant as
search.py, fenced by Elasticsearch's own security API, with the `elasticsearch` client.

PROVEN ONLY BY UNIT TESTS OF THE REQUESTS (tests/unit/backends/test_search_es.py): no Elasticsearch
server can run on the project's machines, so no path here has met a real server (docs/how-it-works.md).

Per tenant `<name>` (the names of search.py, so a Backend's flavour never changes a tenant's names):
- indices `t-<name>_*` and the composable index template `tenant-<name>` (`PUT /_index_template`,
  the same body as OpenSearch; `_meta` carries the owner mark);
- a native role `tenant-<name>` (`PUT /_security/role`) with the index privileges in INDEX_PRIVILEGES
  on `t-<name>_*` only and no cluster privilege at all (no API keys, no cluster state, no other
  index's names); `metadata` carries the owner mark;
- native users `tenant-<name>_a` / `_b` (`PUT /_security/user`, the credential slots) holding that
  role directly: Elasticsearch's role mappings are for external realms, so there is none.

Rotation, suspend and close behave as on OpenSearch (the other slot gets the new password; the
previous slot's user is deleted when the overlap ends; suspend deletes both users, keeping role,
template and indices). Reads first: a pass that finds everything as wanted sends GETs and one
`GET /_security/_authenticate` as the active user.

Client: `elasticsearch` 9.x sends `compatible-with=9` media types, which Elasticsearch 8 refuses: the
client's major version is the server's (pyproject pins it).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import TlsError
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    NotFoundError,
)

from ..api import names
from .base import (
    BackendRefused,
    BackendUnavailable,
    OwnedByAnotherTenant,
    Ownership,
    Report,
    Target,
    TenantSlice,
)
from .search_limits import role_for_limit, settings_path
from .search_names import MARK_ATTRIBUTE, SLOTS, pattern, role_name, user_name

__all__ = ["ensure", "close", "delete", "probe", "forget_cache", "role_body", "user_body", "template_body",
           "INDEX_PRIVILEGES", "ADMIN_PRIVILEGES"]

SECURITY = "/_security"
# Not `manage` or `all`: they hold aliases and settings of any kind. `write` holds mapping updates,
# `maintenance` refresh, flush and force merge; `monitor` the index's own stats.
INDEX_PRIVILEGES = ("read", "write", "create_index", "delete_index", "view_index_metadata", "monitor", "maintenance")
GROWTH_PRIVILEGES = ("create_index",)
"""What a tenant at its shard limit loses (settings updates need `manage`, never granted)."""
ADMIN_PRIVILEGES = {"cluster": ["manage_security", "manage_index_templates"],
                    "index": [{"names": ["t-*"], "privileges": ["view_index_metadata", "delete_index"],
                               "allow_restricted_indices": False}]}
"""What probe asks `_has_privileges` for: the admin Secret's user must hold all of it."""

_clients: dict[tuple[str, str, int, str], AsyncElasticsearch] = {}
logging.getLogger("elastic_transport").setLevel(logging.ERROR)


def role_body(tenant: str, uid: str, at_limit: bool = False) -> dict[str, Any]:
    privileges = [p for p in INDEX_PRIVILEGES if not (at_limit and p in GROWTH_PRIVILEGES)]
    return {"cluster": [], "indices": [{"names": [pattern(tenant)], "privileges": privileges,
                                        "allow_restricted_indices": False}],
            "applications": [], "run_as": [], "metadata": {MARK_ATTRIBUTE: uid}}


def user_body(tenant: str, uid: str, password: str | None) -> dict[str, Any]:
    """A PUT without `password` keeps the user's password (Elasticsearch's rule for updates)."""
    body: dict[str, Any] = {"roles": [role_name(tenant)], "metadata": {MARK_ATTRIBUTE: uid}, "enabled": True}
    if password is not None:
        body["password"] = password
    return body


def template_body(tenant: str, uid: str) -> dict[str, Any]:
    return {"index_patterns": [pattern(tenant)], "priority": 100, "_meta": {MARK_ATTRIBUTE: uid},
            "template": {"settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0"}}}}


def _client(target: Target, username: str | None = None, password: str | None = None) -> AsyncElasticsearch:
    """The admin client (cached per Backend), or a throw-away one for a tenant user's credentials."""
    key = (target.name, target.host, target.port, target.password)
    if username is None and key in _clients:
        return _clients[key]
    scheme = "https" if target.tls else "http"
    tls: dict[str, Any] = {}
    if target.tls:  # the Secret's CA, else the system's; hostname checked either way
        tls = {"ssl_context": ssl.create_default_context(cadata=target.extra.get("ca.crt") or None)}
    client = AsyncElasticsearch(hosts=[f"{scheme}://{target.host}:{target.port}"], **tls,
                                basic_auth=(username or target.username, password if username else target.password),
                                request_timeout=10, max_retries=0, retry_on_timeout=False)
    if username is None:
        _clients[key] = client
    return client


def forget_cache(target: Target | None = None) -> None:
    for key in [k for k in _clients if target is None or k[0] == target.name]:
        _clients.pop(key, None)


async def _send(client: AsyncElasticsearch, method: str, path: str, body: Any) -> Any:
    """The one place a request leaves (the unit tests replace it and read every request)."""
    response = await client.perform_request(method, path, body=body,
                                            headers={"accept": "application/json"} | (
                                                {"content-type": "application/json"} if body is not None else {}))
    return response.body


async def _call(target: Target, method: str, path: str, body: Any = None, *, auth: tuple[str, str] | None = None,
                missing_ok: bool = False) -> Any:
    """One request as the admin (or `auth`); None for a 404 when `missing_ok`."""
    client = _client(target, *auth) if auth else _client(target)
    try:
        return await _send(client, method, path, body)
    except NotFoundError:
        if missing_ok:
            return None
        raise BackendRefused(f"search backend {target.name}: {method} {path} found nothing") from None
    except AuthenticationException:
        raise BackendRefused(f"search backend {target.name}: {'the admin Secret' if auth is None else 'the user'}'s "
                             "username/password were refused (HTTP 401)") from None
    except AuthorizationException as exc:
        raise BackendRefused(f"search backend {target.name}: the admin user may not {method} {path} (HTTP 403: "
                             f"{str(exc.message)[:200]})") from None
    except TlsError as exc:
        raise BackendRefused(f"search backend {target.name}: the server's TLS certificate does not verify against "
                             f"the admin Secret's ca.crt ({str(exc)[:200]})") from None
    except ESConnectionError as exc:
        raise BackendUnavailable(f"search backend {target.name} unreachable: {str(exc)[:200]}") from None
    except ApiError as exc:
        if exc.meta.status >= 500:
            raise BackendUnavailable(f"search backend {target.name} failed: {str(exc.message)[:200]}") from None
        raise BackendRefused(f"search backend {target.name} refused {method} {path}: {str(exc.message)[:200]}") from None
    finally:
        if auth:
            await client.close()


async def probe(target: Target) -> str:
    """The server's version; the admin must hold ADMIN_PRIVILEGES (asked, never tried by writing)."""
    info = await _call(target, "GET", "/")
    held = await _call(target, "POST", f"{SECURITY}/user/_has_privileges", ADMIN_PRIVILEGES) or {}
    if not held.get("has_all_requested"):
        raise BackendRefused(f"search backend {target.name}: the admin user lacks some of {ADMIN_PRIVILEGES} "
                             "(POST /_security/user/_has_privileges)")
    return str((info or {}).get("version", {}).get("number", ""))


async def _get(target: Target, kind: str, name: str) -> dict[str, Any] | None:
    found = await _call(target, "GET", f"{SECURITY}/{kind}/{name}", missing_ok=True)
    return (found or {}).get(name)


async def _template(target: Target, tenant: str) -> dict[str, Any] | None:
    found = await _call(target, "GET", f"/_index_template/{role_name(tenant)}", missing_ok=True)
    templates = (found or {}).get("index_templates") or []
    return templates[0].get("index_template") if templates else None


def _mark(obj: dict[str, Any] | None, key: str = "metadata") -> str | None:
    return None if obj is None else (obj.get(key) or {}).get(MARK_ATTRIBUTE)


def role_differs(live: dict[str, Any], want: dict[str, Any]) -> list[str]:
    found = [f"{k} {live.get(k)}" for k in ("cluster", "applications", "run_as") if live.get(k)]
    got = [(sorted(p.get("names") or []), sorted(p.get("privileges") or []), bool(p.get("allow_restricted_indices")),
            bool(p.get("field_security")), bool(p.get("query"))) for p in live.get("indices") or []]
    wanted = want["indices"][0]
    if got != [([pattern_], sorted(wanted["privileges"]), False, False, False) for pattern_ in wanted["names"]]:
        found.append(f"indices {got}")
    if _mark(live) != want["metadata"][MARK_ATTRIBUTE]:
        found.append("metadata (ownership mark)")
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
    try:
        await _call(target, "GET", f"{SECURITY}/_authenticate", auth=(user, password))
        return True
    except BackendRefused as exc:
        if "401" in str(exc):
            return False
        raise


async def ensure(target: Target, want: TenantSlice) -> Report:
    tenant, report = want.tenant, Report()
    role = role_name(tenant)
    live_role = await _get(target, "role", role)
    live_template = await _template(target, tenant)
    users = {slot: await _get(target, "user", user_name(tenant, slot)) for slot in SLOTS}
    marks = Ownership(f"search backend {target.name}", want)
    marks.see(f"role {role} and indices {pattern(tenant)}", _mark(live_role))
    for what, owner in ((f"index template {role}", _mark(live_template, "_meta")),
                        *((f"user {user_name(tenant, s)}", _mark(u)) for s, u in users.items())):
        if owner is not None:
            marks.see(what, owner)
    marks.check()
    report.adopted += marks.adopted

    async def put(what: str, path: str, body: dict[str, Any], diff: str) -> None:
        await _call(target, "PUT", path, body)
        report.repaired.append(what)
        report.diffs[what] = diff

    settings = await _call(target, "GET", settings_path(tenant), missing_ok=True) if want.max_shards else None
    want_role, drift, decided = role_for_limit(want, report, settings, live_role, role_body, role_differs)
    if decided:
        await _call(target, "PUT", f"{SECURITY}/role/{role}", want_role)
    elif drift:
        await put(f"role {role}", f"{SECURITY}/role/{role}", want_role, "; ".join(drift))
    want_template = template_body(tenant, want.uid)
    drift = ["missing"] if live_template is None else _template_differs(live_template, want_template)
    if drift:
        await put(f"index template {role}", f"/_index_template/{role}", want_template, "; ".join(drift))
    for slot, live in users.items():
        user = user_name(tenant, slot)
        active = slot == want.slot
        if want.suspended or not (active or want.previous_valid):
            if live is not None:
                await _call(target, "DELETE", f"{SECURITY}/user/{user}", missing_ok=True)
                report.repaired.append(f"user {user} removed")
                if not want.suspended:  # the old slot at its overlap's end; a suspension's removal is not
                    report.credential_writes.append(f"user {user} removed")
            continue
        if not active or not want.password:
            continue  # the previous slot keeps its password through the overlap; unknown: keep it
        why = ("missing" if live is None else "roles, metadata or enabled" if live.get("roles") != [role]
               or _mark(live) != want.uid or live.get("enabled") is False else "")
        if not why and not await _authenticates(target, user, want.password):
            why = "password"
        if why:
            await put(f"user {user}", f"{SECURITY}/user/{user}", user_body(tenant, want.uid, want.password), why)
            if why in ("missing", "password") and want.password_staged:  # a rotation's staging makes it anew
                report.credential_writes.append(f"user {user}")
    scheme = "https" if target.tls else "http"
    report.endpoints = {"SEARCH_URL": f"{scheme}://{target.app_host}:{target.port}",
                        "SEARCH_USERNAME": user_name(tenant, want.slot), "SEARCH_PASSWORD": want.password,
                        "SEARCH_INDEX_PREFIX": names.search_prefix(tenant)}
    if target.tls and target.extra.get("ca.crt"):
        report.endpoints["SEARCH_CA_CERT"] = target.extra["ca.crt"]
    return report


async def close(target: Target, tenant: str) -> list[str]:
    """Delete both users (the tenant's doors); keep the role, template and every index."""
    done = []
    for slot in SLOTS:
        user = user_name(tenant, slot)
        if await _get(target, "user", user) is not None:
            await _call(target, "DELETE", f"{SECURITY}/user/{user}", missing_ok=True)
            done.append(f"user {user} removed")
    return done


async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Users, indices (by exact name), template, then the role (it holds the mark); raises
    OwnedByAnotherTenant, touching nothing, when the role's mark names another UID."""
    role = role_name(tenant)
    owner = _mark(await _get(target, "role", role))
    if owner not in (None, uid):
        raise OwnedByAnotherTenant(f"search backend {target.name}", [f"role {role} and indices {pattern(tenant)}"],
                                   owner)
    done = await close(target, tenant)
    found = await _call(target, "GET", settings_path(tenant), missing_ok=True) or {}
    for index in sorted(found):
        if index.startswith(names.search_prefix(tenant)):
            await _call(target, "DELETE", f"/{index}", missing_ok=True)
            done.append(f"index {index}")
    for what, path in ((f"index template {role}", f"/_index_template/{role}"), (f"role {role}", f"{SECURITY}/role/{role}")):
        if await _call(target, "DELETE", path, missing_ok=True) is not None:
            done.append(what)
    return done
