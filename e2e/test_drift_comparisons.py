"""Comparisons against the real servers: a stale cache never causes a write; real drift still does.

The Redis adapter compares ACL users in the form the server normalized them, through a reference
user whose command rules it caches. A process whose cache went stale (Redis restarted or upgraded
under a client that reconnected, an ACL LOAD, a hand edit) used to rewrite every tenant's user on
every pass. Here the adapter runs in this process against the platform's Redis with its cache set to
what a stale one holds.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlparse

from tenancy_operator.backends import redis_acl
from tenancy_operator.backends.base import Target, TenantSlice

from .admin import redis_admin


def _target() -> Target:
    url = urlparse(os.environ["REDIS_URL"])
    return Target(name="redis-drift-test", type="redis", host=url.hostname or "127.0.0.1", port=url.port or 6379,
                  username=url.username or "default", password=url.password or "")


def _setuser_calls() -> int:
    client = redis_admin()
    try:
        return int(client.info("commandstats").get("cmdstat_acl|setuser", {}).get("calls", 0))
    finally:
        client.close()


def test_a_stale_redis_reference_never_rewrites_a_matching_user(platform):
    target = _target()
    want = TenantSlice(tenant="drift-cmp-redis", namespace="tenant-drift-cmp-redis", uid="drift-cmp-redis-uid",
                       password=secrets.token_hex(16))
    user = "tenant:drift-cmp-redis"
    key = (target.name, target.host, target.port)

    async def scenario() -> None:
        try:
            created = await redis_acl.ensure(target, want)
            assert f"ACL user {user}" in created.repaired and created.diffs[f"ACL user {user}"] == "missing"
            assert (await redis_acl.ensure(target, want)).repaired == []

            # What a stale cache holds: another server's (or another version's) normalized form.
            redis_acl._reference[key] = "-@all +get"  # noqa: SLF001
            calls = _setuser_calls()
            stale = await redis_acl.ensure(target, want)
            assert stale.repaired == [], f"a stale reference rewrote a matching user: {stale.diffs}"
            assert _setuser_calls() - calls <= 1, "only the reference user may be set again"
            assert redis_acl._reference[key] != "-@all +get"  # noqa: SLF001  (derived afresh)
            calls = _setuser_calls()
            assert (await redis_acl.ensure(target, want)).repaired == []
            assert _setuser_calls() == calls, "the next pass reads only"

            # Real drift is still put back, and the log says what differed (no password hash).
            admin = redis_admin()
            admin.execute_command("ACL", "SETUSER", user, "+keys")
            admin.close()
            fixed = await redis_acl.ensure(target, want)
            assert fixed.repaired == [f"ACL user {user}"]
            assert "commands" in fixed.diffs[f"ACL user {user}"]
            assert (await redis_acl.ensure(target, want)).repaired == []
        finally:
            await redis_acl.delete(target, want.tenant, want.uid)
            for client in redis_acl._clients.values():  # noqa: SLF001  (bound to this event loop)
                await client.aclose()
            redis_acl._clients.clear()  # noqa: SLF001
            redis_acl.forget_cache(target)

    asyncio.run(scenario())
