"""Redis adapter: one ACL user per tenant, fenced to its key prefix and channel prefix.

User `tenant:<name>` may touch keys `t:<name>:*` and channels `t:<name>:*` only, and none of the
commands that reach past the prefix (KEYS, SCAN, RANDOMKEY list other tenants' key names) or past
the user (SELECT, FLUSHALL, CONFIG, ACL, ...). Passwords are sent as SHA-256 hashes (`#<hex>`), so
the plaintext never crosses the wire; during a rotation overlap the user holds both hashes.

Ownership: Redis objects hold no metadata, so the owning Tenant's UID is kept in the key
`tenancy:owner:<name>`, outside every tenant's `t:<name>:*` fence (no tenant can read or forge it),
read before any write. Redis keeps ACLs (and, without persistence, that key) in memory: after a
restart the verify pass finds the user missing and puts both back.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..api import names
from . import redis_privileges
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

__all__ = ["ensure", "close", "activity", "delete", "probe", "forget_cache", "password_sha256", "acl_rules", "DENIED_COMMANDS"]

# Categories a cache or queue needs; everything else stays off.
ALLOWED_CATEGORIES = ("read", "write", "keyspace", "string", "hash", "list", "set", "sortedset", "stream",
                      "bitmap", "hyperloglog", "geo", "pubsub", "transaction", "connection")
# Removed after the categories, because some sit inside them.
DENIED_COMMANDS = ("keys", "scan", "randomkey", "select", "swapdb", "flushall", "flushdb", "config", "acl", "debug",
                   "migrate", "module", "shutdown", "monitor", "client", "pubsub", "move", "copy", "object",
                   "sort", "sort_ro", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "function",
                   "script", "save", "bgsave", "bgrewriteaof", "replicaof", "slaveof", "sync", "psync", "failover",
                   "cluster", "readonly", "readwrite", "latency", "memory", "slowlog", "lastsave", "info",
                   "dbsize")

_clients: dict[tuple[str, str, int], aioredis.Redis] = {}
_reference: dict[tuple[str, str, int], str] = {}
REFERENCE_USER_PREFIX = "tenancy:reference:"
"""The operator's helper users (no password, disabled) whose rules Redis normalizes for comparison."""


def password_sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def acl_rules(tenant: str, hashes: list[str], enabled: bool) -> list[str]:
    """ACL SETUSER arguments; each is one token, so no input can smuggle another rule in."""
    prefix = names.redis_prefix(tenant)
    for h in hashes:
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError("password hashes must be 64 lower-case hex characters")
    rules = ["reset", "on" if enabled else "off", "sanitize-payload"]
    rules += [f"#{h}" for h in hashes]
    rules += [f"~{prefix}*", f"&{prefix}*"]
    rules += _command_rules()
    return rules


def _command_rules() -> list[str]:
    return ["-@all", *[f"+@{c}" for c in ALLOWED_CATEGORIES], "-@admin", "-@dangerous", "-@scripting",
            *[f"-{c}" for c in DENIED_COMMANDS]]


MAX_CONNECTIONS = 16
"""Connections to one Redis Backend at most; more calls at once wait for one (POOL_WAIT)."""
POOL_WAIT = 60.0
"""Seconds a call waits for a free connection before the backend is reported unavailable. redis-py's
default pool refuses at once past 100 calls in flight ("Too many connections"): at N=500 the operator's
own queue read as an unreachable Redis and flipped healthy tenants' CacheReady (bench/scale/RESULTS.md)."""


def queueing_client(target: Target, socket_timeout: float, decode_responses: bool) -> aioredis.Redis:
    """A client for the Backend's admin user whose calls wait for one of MAX_CONNECTIONS connections."""
    pool = aioredis.BlockingConnectionPool(
        max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT,
        connection_class=aioredis.SSLConnection if target.tls else aioredis.Connection,
        host=target.host, port=target.port, username=target.username or None, password=target.password or None,
        socket_timeout=socket_timeout, socket_connect_timeout=3, decode_responses=decode_responses, protocol=2)
    return aioredis.Redis(connection_pool=pool)


def _client(target: Target) -> aioredis.Redis:
    key = (target.name, target.host, target.port)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = queueing_client(target, socket_timeout=5, decode_responses=True)
    return client


async def _call(target: Target, *args: str):
    try:
        return await _client(target).execute_command(*args)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        _reference.pop((target.name, target.host, target.port), None)  # the server may come back another version
        raise BackendUnavailable(f"redis backend {target.name} unreachable: {exc}") from exc
    except ResponseError as exc:
        raise BackendRefused(f"redis backend {target.name} refused: {exc}") from exc
    except RedisError as exc:
        raise BackendUnavailable(f"redis backend {target.name} failed: {exc}") from exc


async def _missing_commands(target: Target) -> list[str]:
    """The commands the admin user lacks (see redis_privileges: DRYRUN, else its own rules judged)."""
    try:
        return await redis_privileges.missing_commands(_client(target), target.username)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise BackendUnavailable(f"redis backend {target.name} unreachable: {exc}") from exc


async def probe(target: Target) -> str:
    """The server version. Raises AdminPrivilegeMissing naming the commands the admin user lacks."""
    missing = await _missing_commands(target)
    if missing:
        raise AdminPrivilegeMissing(f"redis backend {target.name}: admin user {target.username or 'default'} may not run "
                                    f"{'; '.join(missing)} (rules: platform/admins/redis-operator.rules)")
    info = await _call(target, "INFO", "server")
    if isinstance(info, dict):
        return str(info.get("redis_version", ""))
    for line in str(info).splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    return ""


def _as_dict(reply) -> dict:
    if isinstance(reply, dict):
        return reply
    return {reply[i]: reply[i + 1] for i in range(0, len(reply or []), 2)}


def _differences(state: dict, hashes: list[str], enabled: bool, prefix: str, commands: str,
                 previous: str = "") -> list[str]:
    """What differs between the live user (ACL GETUSER, as the server normalized it) and what we want.

    Names fields only, never a password hash. Empty: nothing to write. A held password that is neither
    wanted nor `previous` (the hash a rotation's overlap end drops) is no rotation's doing: its entry
    says "passwords unknown", which a rotation's pass still reports as drift (`ensure`).
    """
    found: list[str] = []
    flags = set(state.get("flags") or [])
    if ("on" in flags) != enabled:
        found.append(f"flags {sorted(flags)} (want {'on' if enabled else 'off'})")
    if "nopass" in flags:  # set by hand: the rules reset it; drift even in a rotation's pass
        found.append("flags nopass (any password opens it)")
    held = state.get("passwords") or []
    unknown = set(held) - set(hashes) - {previous}
    if unknown:
        found.append(f"passwords unknown ({len(unknown)} held that the operator never gave)")
    elif sorted(held) != sorted(hashes):
        found.append(f"passwords ({len(held)} held, {len(hashes)} wanted)")
    for field_, want in (("keys", f"~{prefix}*"), ("channels", f"&{prefix}*")):
        if (state.get(field_) or "") != want:
            found.append(f"{field_} {state.get(field_)!r} (want {want!r})")
    if (state.get("commands") or "") != commands:
        found.append(f"commands {state.get('commands')!r} (server's form of ours: {commands!r})")
    return found


async def _drift(target: Target, user: str, hashes: list[str], enabled: bool, previous: str = "") -> list[str]:
    """Why the live user differs from what we want (empty when it matches); ["missing"] if absent.

    The command rules are compared in the server's own normalized form (see `_reference_commands`).
    A mismatch is checked again against a freshly derived reference before it counts: a cached
    reference goes stale (a Redis restart or upgrade the client reconnected through, an ACL LOAD, a
    hand edit of the reference user), and a stale one must never make us rewrite every tenant.

    The reference is derived first, even for a missing user: the pass that creates the user then
    also creates the reference user and caches its form, so the verify passes after it only read.
    Derived only on a mismatch, the first verify pass after a create wrote the reference user.
    """
    commands = await _reference_commands(target)
    current = await _call(target, "ACL", "GETUSER", user)
    if not current:
        return ["missing"]
    state = _as_dict(current)
    prefix = names.redis_prefix(user.split(":", 1)[1])
    found = _differences(state, hashes, enabled, prefix, commands, previous)
    if any(f.startswith("commands ") for f in found):
        forget_cache(target)
        found = _differences(state, hashes, enabled, prefix, await _reference_commands(target, rewrite=True), previous)
    return found


def forget_cache(target: Target | None = None) -> None:
    """Drop the cached reference form (of one backend, or all): the next comparison derives it anew."""
    if target is None:
        _reference.clear()
    else:
        _reference.pop((target.name, target.host, target.port), None)


async def _reference_commands(target: Target, rewrite: bool = False) -> str:
    """How this server spells our command rules once it has normalized them.

    Redis rewrites rules into its own order and expands categories, differently across versions, so
    we ask it: a disabled user with no password and no keys holds exactly our command rules, named by
    their hash. It is created once per server (and again after a restart); reading it is free.
    `rewrite` sets the reference user's rules again before reading them (one write to that helper
    user, never to a tenant), so a reference someone edited by hand is put right too.
    """
    key = (target.name, target.host, target.port)
    if key not in _reference:
        rules = _command_rules()
        user = REFERENCE_USER_PREFIX + hashlib.sha256(" ".join(rules).encode()).hexdigest()[:12]
        state = None if rewrite else await _call(target, "ACL", "GETUSER", user)
        if not state:
            await _call(target, "ACL", "SETUSER", user, "reset", "off", *rules)
            state = await _call(target, "ACL", "GETUSER", user)
        _reference[key] = _as_dict(state).get("commands") or ""
    return _reference[key]


async def ensure(target: Target, want: TenantSlice) -> Report:
    user = names.redis_user(want.tenant)
    if want.password:
        hashes = [password_sha256(want.password)]
        if want.previous_valid and want.previous_password_sha256:
            hashes.append(want.previous_password_sha256)
    else:  # the password is unknown this pass (credentials could not be read): keep what the server holds
        held = await _call(target, "ACL", "GETUSER", user)
        hashes = [h for h in (_as_dict(held).get("passwords") or []) if isinstance(h, str)] if held else []
    rules = acl_rules(want.tenant, hashes, enabled=not want.suspended)
    report = Report()
    owner_key = names.redis_owner_key(want.tenant)
    marks = Ownership(f"redis backend {target.name}", want)
    marks.see(f"ACL user {user} and keys {names.redis_prefix(want.tenant)}*",
              names.parse_owner_mark(await _call(target, "GET", owner_key)))
    marks.check()
    if marks.to_mark:
        await _call(target, "SET", owner_key, names.owner_mark(want.uid))
        report.repaired.append(f"ownership mark {owner_key}")
        report.adopted += marks.adopted
    drift = await _drift(target, user, hashes, not want.suspended, want.previous_password_sha256)
    if drift:
        await _call(target, "ACL", "SETUSER", user, *rules)
        report.repaired.append(f"ACL user {user}")
        report.diffs[f"ACL user {user}"] = "; ".join(drift)
        # What a rotation changes, and only that. A staging pass may also find the hash an earlier,
        # unclosed overlap kept (a rotation that does not wait for it): unknown to this slice, still its.
        if all(d.startswith("passwords (") or (want.password_staged and d.startswith("passwords unknown"))
               for d in drift):
            report.credential_writes.append(f"ACL user {user}")
    if want.suspended:
        # Every pass, not only the one that turned the user off: a crash between the two, or a
        # connection that slipped in, must not outlive the suspend.
        killed = await _end_connections(target, user)
        if killed:
            report.repaired.append(f"{killed} connections of {user} killed")
    host = target.app_host
    report.endpoints = {
        "REDIS_HOST": host,
        "REDIS_PORT": str(target.port),
        "REDIS_USERNAME": user,
        "REDIS_PASSWORD": want.password,
        "REDIS_KEY_PREFIX": names.redis_prefix(want.tenant),
        "REDIS_URL": f"redis{'s' if target.tls else ''}://{quote(user, safe='')}:{quote(want.password, safe='')}@{host}:{target.port}/0",
    }
    return report

async def close(target: Target, tenant: str) -> list[str]:
    """Close the tenant's door and keep its keys: the ACL user `off`, its connections killed."""
    user = names.redis_user(tenant)
    done: list[str] = []
    current = await _call(target, "ACL", "GETUSER", user)
    if not current:
        return done  # no such user: nothing can log in as it, and CLIENT KILL USER would refuse
    if "on" in set(_as_dict(current).get("flags") or []):
        await _call(target, "ACL", "SETUSER", user, "off")
        done.append(f"ACL user {user} off")
    killed = await _end_connections(target, user)
    if killed:
        done.append(f"{killed} connections of {user} killed")
    return done


async def activity(target: Target, tenant: str) -> dict[str, int]:
    """{"clients": open connections of the tenant's ACL user}. Reads only (`CLIENT LIST`)."""
    return {"clients": (await _client_users(target)).count(names.redis_user(tenant))}


async def _client_users(target: Target) -> list[str]:
    """The user of every open connection, from `CLIENT LIST` (RESP3 list or RESP2 text)."""
    listing = await _call(target, "CLIENT", "LIST")
    if isinstance(listing, list):
        return [str(c.get("user", "")) for c in listing if isinstance(c, dict)]
    return [f.split("=", 1)[1] for line in str(listing).splitlines() for f in line.split(" ") if f.startswith("user=")]


async def _end_connections(target: Target, user: str) -> int:
    """Kill the user's connections; reads `CLIENT LIST` first, so a pass with none writes nothing.

    `off` (and a dropped password) refuses new AUTH only: connections that authenticated before keep
    working until they are killed.
    """
    if user not in await _client_users(target):
        return 0
    return int(await _call(target, "CLIENT", "KILL", "USER", user, "SKIPME", "yes") or 0)

async def delete(target: Target, tenant: str, uid: str) -> list[str]:
    """Remove the user, end its connections, and unlink every key under the tenant's prefix, then the
    ownership mark; raises OwnedByAnotherTenant, touching nothing, when the mark names another UID."""
    user = names.redis_user(tenant)
    owner_key = names.redis_owner_key(tenant)
    owner_uid = names.parse_owner_mark(await _call(target, "GET", owner_key))
    if owner_uid not in (None, uid):
        raise OwnedByAnotherTenant(f"redis backend {target.name}",
                                   [f"ACL user {user} and keys {names.redis_prefix(tenant)}*"], owner_uid)
    removed = await _call(target, "ACL", "DELUSER", user)
    done = [f"ACL user {user}"] if removed else []
    cursor, unlinked = "0", 0
    while True:
        cursor, keys = await _call(target, "SCAN", cursor, "MATCH", names.redis_prefix(tenant) + "*", "COUNT", "500")
        if keys:
            unlinked += await _call(target, "UNLINK", *keys)
        if str(cursor) == "0":
            break
    if unlinked:
        done.append(f"{unlinked} keys under {names.redis_prefix(tenant)}")
    try:
        await _call(target, "CLIENT", "KILL", "USER", user)
    except BackendRefused:
        pass
    await _call(target, "DEL", owner_key)
    return done
