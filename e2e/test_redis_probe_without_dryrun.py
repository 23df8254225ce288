"""Review finding (issue 19): a Redis admin user that may not run `ACL DRYRUN` hid every other missing command.

`redis_acl.probe` asked the server with `ACL DRYRUN` only and reported nothing ("cannot ask") when
that was refused, so a Backend whose admin may not `CLIENT KILL` looked fine (suspend, rotation and
delete then failed later). Now the probe reads the user's own rules (`ACL GETUSER`) and judges them:
"A Backend whose admin lacks a needed privilege goes Ready=False with a message naming the missing
privilege" (the handler maps AdminPrivilegeMissing to Ready=False InsufficientPrivilege, proven in
test_least_privilege). Real Redis (the shared server, throwaway ACL users).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlparse

import pytest
import redis
from tenancy_operator.backends import redis_acl
from tenancy_operator.backends.base import AdminPrivilegeMissing, Target

from . import kube


def _rules() -> list[str]:
    return [line.split()[0] for line in (kube.REPO / "platform/admins/redis-operator.rules").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _probe_as(*extra: str) -> str:
    """Run the Backend probe as a throwaway user with the operator's rules plus `extra`; its result."""
    url = urlparse(os.environ["REDIS_URL"])
    root = redis.Redis(host=url.hostname, port=url.port, username=url.username, password=url.password)
    user, password = f"zz-nodryrun-{secrets.token_hex(3)}", secrets.token_hex(16)
    root.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *_rules(), *extra)
    try:
        target = Target(name=user, type="redis", host=url.hostname, port=url.port, username=user, password=password)
        try:
            return asyncio.run(redis_acl.probe(target))
        finally:
            redis_acl._clients.pop((target.name, target.host, target.port), None)
    finally:
        root.execute_command("ACL", "DELUSER", user)
        root.close()


def test_admin_without_acl_dryrun_and_client_kill_is_reported():
    with pytest.raises(AdminPrivilegeMissing, match="CLIENT KILL") as refused:
        _probe_as("-acl|dryrun", "-client|kill")
    assert "ACL SETUSER" not in str(refused.value)  # only what is missing is named


def test_admin_without_acl_dryrun_and_owner_mark_keys_is_reported():
    # The keys matter too: without the ownership marks' pattern the owner checks fail.
    with pytest.raises(AdminPrivilegeMissing, match="GET .*tenancy:owner:probe"):
        _probe_as("-acl|dryrun", "resetkeys", "~t:*")


def test_admin_without_acl_dryrun_but_every_needed_command_is_fine():
    assert _probe_as("-acl|dryrun")  # the version: judged from its own rules, nothing missing


def test_admin_that_may_neither_dryrun_nor_read_its_rules_is_reported():
    with pytest.raises(AdminPrivilegeMissing, match="ACL DRYRUN.*ACL GETUSER"):
        _probe_as("-acl|dryrun", "-acl|getuser")


def test_more_calls_at_once_than_connections_queue_instead_of_failing():
    """Found at N=500 (bench/scale/RESULTS.md): redis-py's default pool refused the 101st call in flight
    with "Too many connections", and the adapter reported the Backend unreachable. Now calls wait for
    one of the adapter's connections; the server never sees more than that many from it."""
    url = urlparse(os.environ["REDIS_URL"])
    target = Target(name="zz-load", type="redis", host=url.hostname, port=url.port, username=url.username,
                    password=url.password)

    async def many() -> tuple[list, int]:
        async def one(i: int):
            return await redis_acl._call(target, "ECHO", f"call-{i}")

        try:
            results = await asyncio.gather(*[one(i) for i in range(400)], return_exceptions=True)
            clients = await redis_acl._call(target, "CLIENT", "LIST")
            return results, sum(f" user={url.username} " in f" {line} " for line in clients.splitlines())
        finally:
            client = redis_acl._clients.pop((target.name, target.host, target.port), None)
            if client is not None:
                await client.aclose()

    results, connections = asyncio.run(many())
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of 400 calls failed, first: {failed[0]!r}"
    assert results == [f"call-{i}" for i in range(400)]
    # The admin user's connections: the adapter's (at most MAX_CONNECTIONS) and the platform's own few.
    assert connections <= redis_acl.MAX_CONNECTIONS + 4, connections
