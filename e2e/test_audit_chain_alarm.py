"""The signer's refusal on the real servers: alarm where people look, keep the anchor, resume after a restore.

A private audit database and a private anchor path (the live trail stays untouched), real PostgreSQL,
OpenBao and API server, no operator process: one `Trail` signs three entries, the tail below the
signed head is cut and the heads dropped (a database writer's rewrite); the next `Trail` must sign
nothing, leave the anchor, set `tenancy_audit_chain_verified` to 0 and post a Warning Event
`AuditChainBroken` on the audit Backend. Restoring the entries from a backup lets signing resume.
"""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from tenancy_operator.handlers import audit_trail
from tenancy_operator.observability import audit_store

from .audit_private import private_trail
from .kube import kubectl, object_events

BACKEND = "pg-main"


def _events() -> set[str]:
    return {e["metadata"]["name"] for e in object_events("Backend", BACKEND, namespace="default",
                                                         reason="AuditChainBroken")}


def test_broken_chain_alarms_keeps_the_anchor_and_resumes_after_restore(monkeypatch, backends):
    with private_trail(monkeypatch, "zz_alarm") as (params, signer):
        _alarm_and_resume(params, signer)


def _alarm_and_resume(params: audit_store.PgParams, signer: audit_store.Signer) -> None:
    before = _events()

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("tenancy_audit_chain_verified")

    async def run() -> None:
        store = audit_store.Store(params)

        async def connect():
            return store, signer

        def trail() -> audit_trail.Trail:
            t = audit_trail.Trail()
            t.connect, t.actor, t.sign_every = connect, "system:serviceaccount:t:op", 3
            t.alarm = lambda message: audit_trail._event_on_backend(BACKEND, message)  # noqa: SLF001
            return t

        changes = [{"tenant": "victim", "action": a, "target": f"postgres {BACKEND}: role t_victim", "details": {"v": a}}
                   for a in ("create", "grant", "rotate")]
        await trail().record(changes)
        anchor = signer.anchor()
        assert anchor.seq == 3 and gauge() == 1
        backup, _ = await store.read()
        conn = await params.connect()
        try:
            await conn.execute("DELETE FROM audit_entries WHERE seq > 1; DELETE FROM audit_heads")
            restarted = trail()
            await restarted.tick()
            assert signer.anchor() == anchor, "the anchor moved"
            assert gauge() == 0 and "entry 2 is missing" in restarted.broken, restarted.broken
            new = _events() - before
            assert len(new) == 1, new
            await restarted.record([{**changes[0], "action": "alter"}])  # still recorded, never signed
            assert signer.anchor() == anchor
            # A person restores the database from a backup that holds the anchor's entries.
            await conn.execute("DELETE FROM audit_entries")
            await conn.executemany("INSERT INTO audit_entries VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                                   [tuple(e.__dict__.values()) for e in backup])
        finally:
            await conn.close()
        again = trail()
        await again.record([{**changes[0], "action": "alter"}])
        await again.tick()
        assert gauge() == 1 and not again.broken and signer.anchor().seq == 4

    try:
        asyncio.run(run())
    finally:
        for name in _events() - before:
            kubectl("delete", "event", "-n", "default", name, check=False)
