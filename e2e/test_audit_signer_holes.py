"""Three holes a review found in the operator's signer, each closed, on the real PostgreSQL, OpenBao and API server.

A private audit database and anchor path (e2e/audit_private.py), no operator process: a `Trail` is
the operator's recorder, driven as the operator drives it (record, tick).

1. Tampering below the anchor: the operator verified only that each new head extends the anchor, so
   an entry changed under the last signed head raised no alarm in the running operator. Now the
   whole chain is verified at start, every TENANCY_AUDIT_VERIFY_INTERVAL and while broken: gauge 0,
   Warning Event `AuditChainBroken`, nothing signed until the entry is restored.
2. An entry appended by a database writer (well chained, right prev_hash) was signed by the next
   head signing, which laundered it. Now each entry carries the operator's transit HMAC; the signer
   refuses a head over an entry whose MAC does not verify, and `audit verify` names it.
3. The last signed seq came from max(audit_heads.seq), which a database writer controls (a fake
   head far ahead stopped all signing, silently). Now it is the OpenBao anchor's.
"""

from __future__ import annotations

import asyncio
import dataclasses

from tenancy_operator.handlers import audit_trail
from tenancy_operator.observability import audit, audit_store

from .audit_private import (
    ACTOR,
    BACKEND,
    chain_broken_events,
    chain_verified_gauge,
    change,
    private_trail,
    trail,
)
from .kube import kubectl

_events, _gauge, _change = chain_broken_events, chain_verified_gauge, change


def _trail(store: audit_store.Store, signer: audit_store.Signer, alarm: bool = False) -> audit_trail.Trail:
    return trail(store, signer, 3, alarm)


def _verify(store: audit_store.Store, signer: audit_store.Signer) -> audit.Finding | None:
    """What `kubectl tenant audit verify` finds (its check, with the MACs)."""
    entries, heads = asyncio.run(store.read())
    keys = signer.public_keys()
    return audit.verify(entries, heads, signer.anchor(), lambda h: audit.verify_signature(keys, h), signer.bad_macs)[2]


def test_tampering_below_the_anchor_alarms_the_running_operator(monkeypatch, backends):
    before = _events()
    try:
        with private_trail(monkeypatch, "zz_below") as (params, signer):
            store = audit_store.Store(params)
            running = _trail(store, signer, alarm=True)
            running.verify_every = 0  # a full verification at every tick (the chart: hourly)

            async def run() -> None:
                await running.record([_change(n) for n in (1, 2, 3)])
                await running.record([_change(n) for n in (4, 5, 6)])
                await running.tick()  # its first full verification: the chain is whole
                assert signer.anchor().seq == 6 and _gauge() == 1 and not running.broken
                conn = await params.connect()
                try:  # a database writer changes entry 2, well below the anchor at 6, and re-hashes it
                    row = await conn.fetchrow("SELECT * FROM audit_entries WHERE seq = 2")
                    forged = audit.Entry(**{**dict(row), "target": "postgres pg-main: role someone_else", "hash": ""})
                    await conn.execute("UPDATE audit_entries SET target = $1, hash = $2 WHERE seq = 2",
                                       forged.target, audit.entry_hash(forged))
                    await running.tick()
                    assert _gauge() == 0, "tampering below the anchor raised no alarm"
                    assert "entry 3 does not follow entry 2" in running.broken, running.broken
                    await running.record([_change(n) for n in (7, 8, 9)])  # recorded, not signed
                    assert signer.anchor().seq == 6
                    await conn.execute("UPDATE audit_entries SET target = $1, hash = $2 WHERE seq = 2",
                                       row["target"], row["hash"])  # restored from a backup
                finally:
                    await conn.close()
                await running.tick()
                await running.tick()
                assert _gauge() == 1 and not running.broken and signer.anchor().seq == 9

            asyncio.run(run())
            assert len(_events() - before) == 1, "one AuditChainBroken Event"
            assert _verify(store, signer) is None
    finally:
        for name in _events() - before:
            kubectl("delete", "event", "-n", "default", name, check=False)


def test_a_forged_appended_entry_is_not_signed_and_verify_names_it(monkeypatch):
    with private_trail(monkeypatch, "zz_append") as (params, signer):
        store = audit_store.Store(params)
        running = _trail(store, signer)

        async def run() -> None:
            await running.record([_change(n) for n in (1, 2, 3)])
            assert signer.anchor().seq == 3
            entries, _ = await store.read()
            # A database writer appends a well-chained entry 4, even with a MAC copied from entry 3.
            e4 = audit.seal(4, audit_store.now(), "victim", "grant", f"postgres {BACKEND}: role intruder", ACTOR,
                            {"n": "forged"}, entries[-1].hash)
            columns = [f.name for f in dataclasses.fields(e4) if f.name != "mac"]
            conn = await params.connect()
            try:
                await conn.execute(f"INSERT INTO audit_entries ({', '.join(columns)}) VALUES "
                                   f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
                                   *(getattr(e4, c) for c in columns))
                if await conn.fetchval("SELECT 1 FROM information_schema.columns WHERE table_name = 'audit_entries' "
                                       "AND column_name = 'mac'"):
                    await conn.execute("UPDATE audit_entries SET mac = (SELECT mac FROM audit_entries WHERE seq = 3) "
                                       "WHERE seq = 4")
            finally:
                await conn.close()
            await running.record([_change(n) for n in (5, 6)])  # the operator's next changes chain after it
            await running.tick()
            assert signer.anchor().seq == 3, "the signer signed a head over an entry the operator never wrote"
            assert _gauge() == 0 and "entry 4 carries no valid MAC" in running.broken, running.broken

        asyncio.run(run())
        bad = _verify(store, signer)
        assert bad is not None and bad.seq == 4 and "no valid MAC" in bad.reason, bad


def test_the_last_signed_seq_comes_from_the_anchor_not_the_database(monkeypatch):
    with private_trail(monkeypatch, "zz_heads") as (params, signer):
        store = audit_store.Store(params)

        async def run() -> None:
            await _trail(store, signer).record([_change(n) for n in (1, 2, 3)])
            assert signer.anchor().seq == 3
            conn = await params.connect()
            try:  # a database writer claims a signed head far ahead: signing would wait for it forever
                await conn.execute("INSERT INTO audit_heads VALUES (1000000, $1, 'vault:v1:AAAA', $2)",
                                   "0" * 64, audit_store.now())
            finally:
                await conn.close()
            restarted = _trail(store, signer)  # the next operator process
            await restarted.record([_change(n) for n in (4, 5, 6)])
            assert restarted.signed_seq == 6 and signer.anchor().seq == 6, \
                "the signer took its last signed seq from audit_heads and stopped signing"
            await restarted.tick()  # its full verification names the fake head
            assert _gauge() == 0 and "covers entry 1000000" in restarted.broken, restarted.broken

        asyncio.run(run())
