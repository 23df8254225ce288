"""A private audit trail on the real PostgreSQL and OpenBao: its own database and anchor path, so tests
that forge or break a chain never touch the live trail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest
from tenancy_operator.observability import audit_store


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
