"""A private audit trail on the real PostgreSQL and OpenBao: its own database and anchor path, so tests
that forge or break a chain never touch the live trail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from tenancy_operator.handlers import audit_trail
from tenancy_operator.observability import audit_store

from .kube import object_events

BACKEND = "pg-main"
"""The Backend the private trails' alarms post their Events on."""
ACTOR = "system:serviceaccount:t:op"


def chain_broken_events() -> set[str]:
    """Names of the `AuditChainBroken` Events on BACKEND."""
    return {e["metadata"]["name"] for e in object_events("Backend", BACKEND, namespace="default",
                                                         reason="AuditChainBroken")}


def chain_verified_gauge() -> float | None:
    return REGISTRY.get_sample_value("tenancy_audit_chain_verified")


def change(n: int) -> dict:
    """The n-th change a test records: an alter of a made-up tenant's role."""
    return {"tenant": "victim", "action": "alter", "target": f"postgres {BACKEND}: role t_victim_{n}",
            "details": {"n": str(n)}}


def trail(store: audit_store.Store, signer: audit_store.Signer, sign_every: int, alarm: bool = False) -> audit_trail.Trail:
    """A Trail of this process on a private store and signer; `alarm` posts its Events on BACKEND."""
    async def connect():
        return store, signer

    t = audit_trail.Trail()
    t.connect, t.actor, t.sign_every = connect, ACTOR, sign_every
    if alarm:
        t.alarm = lambda message: audit_trail._event_on_backend(BACKEND, message)  # noqa: SLF001
    return t


@contextlib.contextmanager
def private_trail(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Iterator[tuple[audit_store.PgParams, audit_store.Signer]]:
    """(database parameters, signer) of a fresh trail `<prefix>_<hex>` with anchor `head-<that>`;
    the database and the anchor are removed afterwards."""
    env = os.environ
    db = f"{prefix}_{secrets.token_hex(4)}"
    monkeypatch.setattr(audit_store, "ANCHOR", f"head-{db}")  # the live anchor stays untouched
    params = audit_store.PgParams(env["PGHOST"], int(env["PGPORT"]), env["PGUSER"], env["PGPASSWORD"], db)
    signer = audit_store.Signer(env["VAULT_ADDR"], env["VAULT_TOKEN"])
    try:
        yield params, signer
    finally:
        async def drop() -> None:
            conn = await params.connect("postgres")
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            finally:
                await conn.close()
        asyncio.run(drop())
        signer._client().secrets.kv.v2.delete_metadata_and_all_versions(  # noqa: SLF001
            f"head-{db}", mount_point=audit_store.KV_MOUNT)
