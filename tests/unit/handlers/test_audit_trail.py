"""The trail's seam: no change, no I/O; an unwritable trail holds what was done and lets nothing more happen."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import logging
import types

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tenancy_operator.backends import registry
from tenancy_operator.backends.base import Report, Target, TenantSlice
from tenancy_operator.handlers import audit_trail, services_part
from tenancy_operator.observability import audit, metrics
from tenancy_operator.observability.logs import JsonFormatter


class FakeAdapter:
    def __init__(self, repaired: list[str]):
        self.repaired, self.calls = repaired, 0

    async def ensure(self, target, want):
        self.calls += 1
        return Report(repaired=list(self.repaired), diffs={r: "missing" for r in self.repaired})


@pytest.fixture
def trail(monkeypatch):
    t = audit_trail.Trail()
    monkeypatch.setattr(audit_trail, "trail", t)
    return t


TARGET = Target("pg-x", "postgres", "127.0.0.1", 1)
WANT = TenantSlice("acme", "tenant-acme", uid="u1")


async def test_steady_state_touches_no_store(trail):
    async def connect():
        raise AssertionError("the store was reached for a pass that changed nothing")

    trail.connect = connect
    adapter = audit_trail.Audited("postgres", types.SimpleNamespace(ensure=FakeAdapter([]).ensure))
    await adapter.ensure(TARGET, WANT)
    assert trail.held == []


async def test_unwritable_trail_holds_changes_and_refuses_the_next_write(trail):
    async def connect():
        raise OSError("connection refused")

    trail.connect = connect
    fake = FakeAdapter(["role t_acme_a"])
    adapter = audit_trail.Audited("postgres", types.SimpleNamespace(ensure=fake.ensure))
    await adapter.ensure(TARGET, WANT)  # the change was made: it is held, not lost
    assert [(c["action"], c["target"]) for c in trail.held] == [("create", "postgres pg-x: role t_acme_a")]
    with pytest.raises(audit_trail.AuditUnavailable):
        await adapter.ensure(TARGET, WANT)
    assert fake.calls == 1  # no second change while the first is unrecorded


async def test_refusal_is_a_degraded_part_that_trips_no_backend_breaker(trail, monkeypatch):
    async def connect():
        raise OSError("connection refused")

    trail.connect = connect
    trail.held = [{"tenant": "acme", "action": "create", "target": "t", "details": {}}]
    monkeypatch.setattr(registry, "_wrap", audit_trail.Audited)
    part, _ = await services_part.run("postgres", TARGET, WANT, __import__("logging").getLogger("t"))
    assert not part.ok and "audit trail unavailable" in part.message
    assert services_part.circuit.breaker_for("pg-x").failures == 0


def test_registry_hands_out_audited_adapters_with_the_modules_own_attributes():
    pg, redis = registry.adapter("postgres"), registry.adapter("redis")
    assert isinstance(pg, audit_trail.Audited) and hasattr(pg, "ensure_server") and pg.SERVER_CONDITION
    assert not hasattr(redis, "ensure_server")  # handlers ask before calling it


class FakeStore:
    """The database, in memory: what an attacker with write access to it can rewrite at will."""

    def __init__(self):
        self.entries, self.heads = [], []

    async def state(self):
        last = self.entries[-1] if self.entries else None
        return (last.seq, last.hash) if last else (0, audit.GENESIS)

    async def read(self):
        return list(self.entries), list(self.heads)

    async def append(self, changes, actor, mac):
        last = self.entries[-1] if self.entries else None
        extended = (last.seq, last.hash) if last else (0, audit.GENESIS)
        sealed, (seq, prev) = [], extended
        for c in changes:
            seq += 1
            sealed.append(audit.seal(seq, "t", c["tenant"], c["action"], c["target"], actor, c["details"], prev))
            prev = sealed[-1].hash
        sealed = [dataclasses.replace(e, mac=m) for e, m in zip(sealed, await mac(sealed), strict=True)]
        self.entries += sealed
        return extended, sealed

    async def segment(self, first, last):
        return [e for e in self.entries if first <= e.seq <= last]

    async def add_head(self, head):
        self.heads.append(head)


class FakeSigner:
    """The transit key, in memory: an HMAC only it can make, an ed25519 key only it can sign with."""

    def __init__(self):
        self.head, self.signed, self.kept, self.writes = None, 0, None, 0
        self._key = Ed25519PrivateKey.generate()

    def anchor(self):
        return self.head

    def cut(self):
        return self.kept

    async def record_cut(self, cut):
        self.kept, self.writes = cut, self.writes + 1

    async def set_macs_from(self, first):
        self.macs_from = getattr(self, "macs_from", None) or first
        return self.macs_from

    def _mac(self, e):
        return "vault:v1:" + hmac.new(b"k", audit.mac_message(e), "sha256").hexdigest()

    async def mac(self, entries):
        return [self._mac(e) for e in entries]

    def bad_macs(self, entries):
        return {e.seq for e in entries if not hmac.compare_digest(e.mac, self._mac(e))}

    def public_keys(self):
        return {1: self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}

    async def sign(self, seq, hash_):
        self.signed += 1
        sig = base64.b64encode(self._key.sign(audit.head_message(seq, hash_))).decode()
        self.head, self.kept = audit.Head(seq, hash_, f"vault:v1:{sig}"), None  # the new anchor's record has no cut
        return self.head


def _change(n: int) -> dict:
    return {"tenant": "acme", "action": "create", "target": f"postgres pg-x: role r{n}", "details": {"what": f"r{n}"}}


def _trail(store, signer) -> audit_trail.Trail:
    t = audit_trail.Trail()

    async def connect():
        return store, signer

    t.connect, t.sign_every = connect, 3
    return t


async def test_a_rewritten_signed_history_is_not_signed_and_the_alarm_is_raised(monkeypatch):
    gauge = metrics.AUDIT_CHAIN_VERIFIED
    monkeypatch.setattr(gauge, "value", None)
    store, signer = FakeStore(), FakeSigner()
    await _trail(store, signer).record([_change(1), _change(2), _change(3)])
    assert signer.head.seq == 3 and gauge.value == 1
    # The attacker drops signed entry 2, re-chains the rest and drops the heads.
    kept, prev = [store.entries[0], store.entries[2]], audit.GENESIS
    store.entries, store.heads = [], []
    for i, e in enumerate(kept, 1):
        store.entries.append(audit.seal(i, e.at, e.tenant, e.action, e.target, e.actor, {}, prev))
        prev = store.entries[-1].hash
    restarted, alarms = _trail(store, signer), []

    async def alarm(message):
        alarms.append(message)

    restarted.alarm = alarm
    await restarted.tick()
    await restarted.tick()
    assert signer.head.seq == 3 and signer.signed == 1, "the anchor moved onto the forged head"
    assert gauge.value == 0 and "entry 3 is missing" in restarted.broken
    assert len(alarms) == 1 and "no head is signed" in alarms[0]  # once per cause, not every interval
    # Changes are still recorded, never signed onto the forgery.
    await restarted.record([_change(4), _change(5), _change(6)])
    assert [e.seq for e in store.entries] == [1, 2, 3, 4, 5] and signer.signed == 1 and not restarted.held


async def test_signing_resumes_once_the_database_extends_the_anchor_again(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    await _trail(store, signer).record([_change(1), _change(2), _change(3)])
    backup = list(store.entries)
    store.entries = store.entries[:1]  # cut below the signed head
    restarted = _trail(store, signer)
    await restarted.tick()
    assert restarted.broken and metrics.AUDIT_CHAIN_VERIFIED.value == 0
    store.entries = backup  # restored from a backup
    await restarted.record([_change(4)])
    await restarted.tick()
    assert not restarted.broken and metrics.AUDIT_CHAIN_VERIFIED.value == 1 and signer.head.seq == 4


async def test_a_fully_signed_trail_is_checked_once_at_start_then_left_alone(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    await _trail(store, signer).record([_change(1), _change(2), _change(3)])
    restarted, reads = _trail(store, signer), []
    real = store.segment

    async def segment(first, last):
        reads.append((first, last))
        return await real(first, last)

    store.segment = segment
    await restarted.tick()
    await restarted.tick()
    assert reads == [(3, 3)] and metrics.AUDIT_CHAIN_VERIFIED.value == 1 and signer.signed == 1


async def _signed_six(monkeypatch) -> tuple[FakeStore, FakeSigner, audit_trail.Trail]:
    """A trail verified at every tick that recorded entries 1 to 6 (signed at 3 and 6) and ticked once."""
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    trail = _trail(store, signer)
    trail.verify_every = 0
    await trail.record([_change(n) for n in range(1, 7)])
    await trail.tick()
    return store, signer, trail


async def test_a_change_below_the_anchor_is_found_by_the_full_verification(monkeypatch):
    store, signer, running = await _signed_six(monkeypatch)
    assert signer.head.seq == 6 and metrics.AUDIT_CHAIN_VERIFIED.value == 1
    good = store.entries[1]
    store.entries[1] = dataclasses.replace(good, target="postgres pg-x: role other")  # below the anchor
    await running.tick()
    assert metrics.AUDIT_CHAIN_VERIFIED.value == 0 and "entry 2 was changed" in running.broken
    await running.record([_change(n) for n in range(7, 10)])
    assert signer.head.seq == 6, "signed while a bad entry stands"
    store.entries[1] = good
    await running.tick()
    await running.tick()
    assert metrics.AUDIT_CHAIN_VERIFIED.value == 1 and not running.broken and signer.head.seq == 9


async def test_an_entry_the_operator_did_not_write_is_never_signed(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    running = _trail(store, signer)
    await running.record([_change(n) for n in (1, 2, 3)])
    last = store.entries[-1]
    store.entries.append(dataclasses.replace(audit.seal(4, "t", "acme", "grant", "x", "y", {}, last.hash), mac=last.mac))
    await running.record([_change(5), _change(6)])
    assert signer.head.seq == 3 and metrics.AUDIT_CHAIN_VERIFIED.value == 0
    assert "entry 4 carries no valid MAC" in running.broken


async def test_the_last_signed_seq_is_the_anchors_not_the_heads_table(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    await _trail(store, signer).record([_change(n) for n in (1, 2, 3)])
    store.heads.append(audit.Head(10**6, "0" * 64, "vault:v1:AAAA"))
    restarted = _trail(store, signer)
    await restarted.record([_change(n) for n in (4, 5, 6)])
    assert signer.head.seq == 6 and restarted.signed_seq == 6


def _verify(store, signer):
    """What `kubectl tenant audit verify` finds: the chain, the heads, the anchor, the MACs and the kept cut."""
    keys = signer.public_keys()
    return audit.verify(store.entries, store.heads, signer.anchor(), lambda h: audit.verify_signature(keys, h),
                        signer.bad_macs, 1, signer.cut())[2]


async def _cut_tail(store, signer, alarms=None):
    """Entries 1..3 signed, 4..6 appended, not signed yet; a database writer drops 4..6, then the operator
    appends two more changes (as entries 4 and 5). Returns the running trail and the dropped entries."""
    running = _trail(store, signer)
    running.sign_every = 100

    async def alarm(message):
        alarms.append(message)

    running.alarm = alarm if alarms is not None else None
    await running.record([_change(n) for n in (1, 2, 3)])
    await running.tick()
    await running.record([_change(n) for n in (4, 5, 6)])
    dropped = store.entries[3:]
    del store.entries[3:]
    await running.record([_change(7), _change(8)])
    await running.tick()
    return running, dropped


async def test_an_unsigned_tail_cut_is_never_signed_over(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer, alarms = FakeStore(), FakeSigner(), []
    running, dropped = await _cut_tail(store, signer, alarms)
    assert signer.head.seq == 3 and signer.signed == 1, "a head was signed over the cut tail"
    assert metrics.AUDIT_CHAIN_VERIFIED.value == 0
    # Both heads named: the one the chain had reached, the one the database was found at.
    assert "entry 6 (" in running.broken and "entry 3 (" in running.broken and "entries 4..6 were cut" in running.broken
    assert len(alarms) == 1 and "first bad entry 4" in alarms[0]
    assert [e.seq for e in store.entries] == [1, 2, 3, 4, 5] and not running.held  # the changes are still recorded
    bad = _verify(store, signer)
    assert bad is not None and bad.seq == 4 and "entries 4..6 were cut" in bad.reason
    await running.tick()
    assert len(alarms) == 1 and signer.head.seq == 3  # checked again, said once
    store.entries = store.entries[:3] + dropped  # restored from a backup: the running process resumes by itself
    await running.tick()
    assert not running.broken and metrics.AUDIT_CHAIN_VERIFIED.value == 1 and signer.head.seq == 6


async def test_a_found_cut_survives_a_restart_and_clears_once_the_tail_is_restored(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    _, dropped = await _cut_tail(store, signer)
    assert signer.head.seq == 3 and signer.kept is not None and signer.writes == 1  # kept with the anchor, once
    # The next operator process: the database alone (a whole chain from the anchor on) shows nothing wrong.
    restarted = _trail(store, signer)
    await restarted.tick()
    await restarted.record([_change(n) for n in (9, 10, 11)])
    await restarted.tick()
    assert signer.head.seq == 3 and metrics.AUDIT_CHAIN_VERIFIED.value == 0, "a restart signed over the cut"
    assert "entries 4..6 were cut" in restarted.broken and signer.writes == 1
    # A person restores the database from a backup holding entries 4..6: signing resumes by itself.
    store.entries = store.entries[:3] + dropped
    await restarted.tick()
    assert not restarted.broken and metrics.AUDIT_CHAIN_VERIFIED.value == 1 and signer.head.seq == 6
    assert signer.cut() is None and _verify(store, signer) is None


async def test_a_cut_tail_replaced_by_as_many_entries_is_found_and_every_replica_refuses(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    a = _trail(store, signer)
    a.sign_every = 100
    await a.record([_change(n) for n in (1, 2, 3)])
    await a.tick()
    await a.record([_change(n) for n in (4, 5, 6)])
    del store.entries[3:]
    b = _trail(store, signer)  # another replica, started after the cut: entries 4..6 again, other changes
    b.sign_every = 100
    await b.record([_change(n) for n in (7, 8, 9)])
    await a.record([_change(10)])  # a finds entry 6 with another hash than the one it appended
    await b.tick()
    await a.tick()
    assert signer.head.seq == 3 and metrics.AUDIT_CHAIN_VERIFIED.value == 0
    assert "holds another entry 6" in a.broken and a.broken == b.broken
    bad = _verify(store, signer)
    assert bad is not None and bad.seq == 4  # any entry after the last signed one may be another


async def test_a_trail_that_only_grows_keeps_signing(monkeypatch):
    monkeypatch.setattr(metrics.AUDIT_CHAIN_VERIFIED, "value", None)
    store, signer = FakeStore(), FakeSigner()
    a, b = _trail(store, signer), _trail(store, signer)  # two replicas appending in turn
    for n in range(1, 13, 2):
        await a.record([_change(n)])
        await b.record([_change(n + 1)])
    await a.tick()
    await b.tick()
    assert not a.broken and not b.broken and metrics.AUDIT_CHAIN_VERIFIED.value == 1
    keys = signer.public_keys()
    assert signer.head.seq == 12 and signer.writes == 0  # no cut kept: a growing trail writes nothing more
    assert audit.verify(store.entries, store.heads, signer.anchor(), lambda h: audit.verify_signature(keys, h),
                        signer.bad_macs)[2] is None


async def test_only_another_replicas_entries_are_named_as_its_own_once_while_a_finding_stands(monkeypatch, caplog):
    store, signer, a = await _signed_six(monkeypatch)
    store.entries[1] = dataclasses.replace(store.entries[1], target="postgres pg-x: role other")
    await a.tick()
    assert "entry 2 was changed" in a.broken  # a finding stands: `known` no longer follows a's appends
    b = _trail(store, signer)
    b.sign_every = 100
    with caplog.at_level(logging.INFO, logger="tenancy.audit"):
        await a.record([_change(7)])
        await a.record([_change(8)])  # extends a's own entry 7: nobody else's
        await b.record([_change(9)])
        await a.record([_change(10)])  # extends b's entry 9
        await a.record([_change(11)])
        await a.record([_change(12)])
    said = [r.getMessage() for r in caplog.records if "another replica" in r.getMessage()]
    assert said == ["audit trail: entries 9..9 were appended by another replica"]
    assert [e.seq for e in store.entries] == list(range(1, 13)) and signer.head.seq == 6


async def test_audit_log_lines_name_their_tenant_in_the_json_field(caplog):
    """Filtering the JSON logs by tenant finds the trail's lines: recorded and held alike."""
    store = FakeStore()
    ok, down = _trail(store, FakeSigner()), audit_trail.Trail()

    async def unreachable():
        raise OSError("connection refused")

    down.connect = unreachable
    with caplog.at_level(logging.INFO, logger="tenancy.audit"):
        await ok.record([_change(1), {**_change(2), "tenant": None}])
        await down.record([_change(3)])
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if "r1" in r.getMessage()
             or "r2" in r.getMessage() or "r3" in r.getMessage()]
    assert [(line["level"], line["tenant"]) for line in lines] == [("INFO", "acme"), ("INFO", None), ("ERROR", "acme")]
