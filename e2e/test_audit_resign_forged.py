"""Review finding: the operator signs whatever head the audit database shows, so signed history can be rewritten.

An attacker who can write the audit database (and nothing else) deletes a *signed* entry, re-chains
the rest and deletes the `audit_heads` rows. The next operator process (every restart, every e2e
run) loads the head and the last signed seq from that database (`Trail._load` -> `Store.state`),
sees unsigned entries and signs the forged head, moving the OpenBao anchor onto it. `audit verify`
then reports the trail intact. docs/audit.md says "They cannot change what is signed".

Real PostgreSQL and OpenBao; a private database and a private anchor path, no operator, no tenant.
Expected to FAIL until the signer refuses to sign a head that does not extend the anchor.
"""

from __future__ import annotations

import asyncio

from tenancy_operator.handlers import audit_trail
from tenancy_operator.observability import audit, audit_store

from .audit_private import private_trail


def test_rewritten_signed_history_is_not_resigned(monkeypatch):
    with private_trail(monkeypatch, "zz_forge") as (params, signer):
        _forge_and_restart(params, signer)


def _forge_and_restart(params: audit_store.PgParams, signer: audit_store.Signer) -> None:

    def change(action: str) -> dict:
        return {"tenant": "victim", "action": action, "target": f"postgres pg-main: database t_victim {action}",
                "details": {"verb": action}}

    async def run() -> tuple[int, int, audit.Finding | None]:
        store = audit_store.Store(params)

        async def connect():
            return store, signer

        operator = audit_trail.Trail()
        operator.connect, operator.actor, operator.sign_every = connect, "system:serviceaccount:t:op", 3
        await operator.record([change("create"), change("grant"), change("delete")])  # signed at 3
        entries, heads = await store.read()
        assert [h.seq for h in heads] == [3] and signer.anchor().seq == 3

        # The attacker: DB write only. Drop the signed entry 2, re-chain, drop the heads.
        forged, prev = [], audit.GENESIS
        for e in [entries[0], entries[2]]:
            f = audit.Entry(len(forged) + 1, e.at, e.tenant, e.action, e.target, e.actor, e.details_digest, prev)
            f = audit.Entry(**{**f.__dict__, "hash": audit.entry_hash(f)})
            forged.append(f)
            prev = f.hash
        conn = await params.connect()
        try:
            await conn.execute("DELETE FROM audit_entries; DELETE FROM audit_heads")
            await conn.executemany("INSERT INTO audit_entries VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                                   [tuple(f.__dict__.values()) for f in forged])
        finally:
            await conn.close()

        restarted = audit_trail.Trail()  # the next operator process
        restarted.connect, restarted.actor = connect, "system:serviceaccount:t:op"
        await restarted.tick()
        entries, heads = await store.read()
        keys = signer.public_keys()
        return audit.verify(entries, heads, signer.anchor(), lambda h: audit.verify_signature(keys, h))

    n, _, bad = asyncio.run(run())
    assert bad is not None, f"a signed entry was deleted, yet verify reports {n} entries intact"
