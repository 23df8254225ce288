"""Review finding (issue 18): the operator signed over a cut unsigned tail. On the real PostgreSQL, OpenBao and API server.

A private audit database and anchor path (e2e/audit_private.py), no operator process: a `Trail` is
the operator's recorder, driven as the operator drives it (record, tick). Entries 1..3 are signed,
4..6 appended and not signed yet; a database writer deletes 4..6; the operator appends two more
changes (entries 4 and 5 again). It used to sign entry 5: the cut vanished under a chain that
verifies. Now it signs nothing, sets `tenancy_audit_chain_verified` to 0, posts one Warning Event
`AuditChainBroken` naming both heads, and keeps the cut with the anchor in OpenBao, so the next
process refuses too and the verifier names entry 4; restoring 4..6 from a backup lets signing resume
and the next signature writes the anchor without the cut. The database it made is closed to PUBLIC.
"""

from __future__ import annotations

import asyncio

from tenancy_operator.handlers import audit_trail
from tenancy_operator.observability import audit, audit_store

from .audit_private import chain_broken_events, chain_verified_gauge, change, private_trail, trail
from .kube import kubectl

_events, _gauge, _change = chain_broken_events, chain_verified_gauge, change


def _trail(store: audit_store.Store, signer: audit_store.Signer, alarm: bool = False) -> audit_trail.Trail:
    return trail(store, signer, 100, alarm)  # signed by the timer (tick)


async def _found(store: audit_store.Store, signer: audit_store.Signer) -> audit.Finding | None:
    """What `kubectl tenant audit verify` finds (its check: the MACs, and the cut kept with the anchor)."""
    entries, heads = await store.read()
    keys = signer.public_keys()
    return audit.verify(entries, heads, signer.anchor(), lambda h: audit.verify_signature(keys, h), signer.bad_macs,
                        signer.macs_from() or 1, signer.cut())[2]


def test_a_cut_unsigned_tail_is_not_signed_over_and_a_restart_still_refuses(monkeypatch, backends):
    before = _events()
    try:
        with private_trail(monkeypatch, "zz_tailcut") as (params, signer):
            asyncio.run(_cut_and_restore(params, signer))
            assert len(_events() - before) == 1, "one AuditChainBroken Event"
    finally:
        for name in _events() - before:
            kubectl("delete", "event", "-n", "default", name, check=False)


async def _cut_and_restore(params: audit_store.PgParams, signer: audit_store.Signer) -> None:
    store = audit_store.Store(params)
    running = _trail(store, signer, alarm=True)
    await running.record([_change(n) for n in (1, 2, 3)])
    await running.tick()
    assert signer.anchor().seq == 3 and _gauge() == 1
    conn = await params.connect("postgres")
    try:  # the database the trail made: no other login may enter it
        row = await conn.fetchrow(audit_store.DATABASE_STATE, params.database)
        assert row is not None and row["public_may_enter"] is False, row
    finally:
        await conn.close()
    await running.record([_change(n) for n in (4, 5, 6)])
    backup, _ = await store.read()
    conn = await params.connect()
    try:  # a database writer drops the unsigned tail
        await conn.execute("DELETE FROM audit_entries WHERE seq > 3")
    finally:
        await conn.close()
    await running.record([_change(7), _change(8)])  # appended as entries 4 and 5
    await running.tick()
    assert signer.anchor().seq == 3, "a head was signed over the cut tail"
    assert _gauge() == 0 and "entry 6 (" in running.broken and "entries 4..6 were cut" in running.broken, running.broken
    kept = signer.cut()
    assert kept is not None and (kept.seq, kept.hash) == (6, backup[5].hash), kept
    bad = await _found(store, signer)
    assert bad is not None and bad.seq == 4 and "were cut" in bad.reason, bad

    restarted = _trail(store, signer)  # the next operator process: the database alone shows nothing wrong
    await restarted.record([_change(9)])
    await restarted.tick()
    assert signer.anchor().seq == 3 and restarted.broken == running.broken and _gauge() == 0

    conn = await params.connect()
    try:  # a person restores the database from a backup holding entries 4..6
        await conn.execute("DELETE FROM audit_entries")
        await conn.executemany("INSERT INTO audit_entries VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                               [tuple(e.__dict__.values()) for e in backup])
    finally:
        await conn.close()
    await restarted.tick()
    assert _gauge() == 1 and not restarted.broken and signer.anchor().seq == 6 and signer.cut() is None
    assert await _found(store, signer) is None
