"""A Backend's endpoint settings reach the clients the adapters build (no connection is made here)."""

from __future__ import annotations

from redis.asyncio.connection import SSLConnection
from tenancy_operator.backends import redis_acl, vault
from tenancy_operator.backends.base import Target


def _target(name: str, tls: bool, type_: str = "redis") -> Target:
    return Target(name=name, type=type_, host="10.0.0.5", port=6380, tls=tls)


def test_tls_asks_each_client_for_tls():
    assert vault._client(_target("v-tls", True, "vault")).url == "https://10.0.0.5:6380"
    assert vault._client(_target("v-plain", False, "vault")).url == "http://10.0.0.5:6380"
    assert redis_acl._client(_target("r-tls", True)).connection_pool.connection_class is SSLConnection
    assert redis_acl._client(_target("r-plain", False)).connection_pool.connection_class is not SSLConnection
