"""The audit trail's recorder: holds entries until the store has them, signs heads, and signs nothing over a broken chain.

handlers/audit_trail.py hands every change an adapter reports to `trail.record`; this is `Trail`.

When the audit database cannot be written, no further change is made: the entries of changes
already made are held in memory (bounded by the passes in flight), logged at ERROR with their
digests, and every later adapter write call first tries to flush them and, failing, raises
`AuditUnavailable` (a `CircuitOpen`, so the part is Degraded naming the trail, retried with backoff,
and no Backend's breaker counts it). Reads (probe, activity) carry on.

The signer signs only a head that extends the anchor (`audit.extends`, checked at start and before
every signature against the anchor in OpenBao): someone who can write the database could otherwise
rewrite signed history and have it signed. It signs only entries the operator wrote: each carries
an OpenBao transit HMAC made when it was appended (`Signer.mac`), and the entries after the anchor
must all verify (`Signer.bad_macs`) before a head over them is signed. The whole chain, below the
anchor too, is verified like `kubectl tenant audit verify` does (`audit.verify`: hashes, every
signed head, the anchor, the MACs after the last good head) at start, every
TENANCY_AUDIT_VERIFY_INTERVAL seconds (reads only: the anchor and the public keys are the ones this
process last read or signed, so no OpenBao call while nothing is unsigned) and at every tick while
broken. The last signed seq is the anchor's, never the database's `audit_heads`.

Nor does it sign over a cut tail: `known` is the newest head this process knows on the chain (the
anchor or the database's head when it started, then every head it appended, signed or checked).
When an append finds the database's head below it (`audit.moved_back`), or a check before a
signature finds the database no longer holds it (`audit.cut_in`), entries after the anchor were
removed, perhaps with others appended in their place: that is an `audit.Cut`. Above the anchor it
is kept with the anchor in OpenBao (one write, when found), so a restart or another replica refuses
too and `kubectl tenant audit verify` names it; below, the anchor already says what is missing.

When any of these checks fails, nothing is signed and the anchor stays (`verify` keeps naming the
bad entry), `tenancy_audit_chain_verified` is 0, an ERROR line and a Warning Event
`AuditChainBroken` on the audit Backend say why, and changes are still appended; signing resumes by
itself once the database passes again (docs/audit.md, recovery).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..backends import circuit
from ..observability import audit, audit_store, metrics

__all__ = ["AuditUnavailable", "Trail", "MAX_HELD"]

log = logging.getLogger("tenancy.audit")
MAX_HELD = 10_000


class AuditUnavailable(circuit.CircuitOpen):
    """Changes wait: the audit trail cannot record them."""


def _higher(*heads: tuple[int, str]) -> tuple[int, str]:
    """The head with the highest seq; on a tie the first given."""
    return max(heads, key=lambda h: h[0])


class Trail:
    """The recorder: holds entries until the store has them, signs heads, gates writes while it cannot."""

    def __init__(self) -> None:
        self.connect: Callable[[], Awaitable[tuple[audit_store.Store, audit_store.Signer]]] | None = None
        self.actor = ""
        self.sign_every = 100
        self.verify_every = 3600.0
        """Seconds between full verifications of the chain (reads only)."""
        self._next_full = 0.0
        self._below = ""
        """Why the last full verification failed ('' when it passed): nothing is signed meanwhile."""
        self._anchor: audit.Head | None = None
        """The anchor this process last read from OpenBao or signed."""
        self._keys: dict[int, bytes] = {}
        self.macs_from = 1
        """The first entry that must carry the operator's MAC (recorded with the anchor in OpenBao)."""
        self.held: list[dict[str, Any]] = []
        self.last_seq, self.last_hash, self.signed_seq = 0, audit.GENESIS, 0
        self.known: tuple[int, str] = (0, audit.GENESIS)
        """The newest head this process knows on the chain (not moved by appends while a finding stands);
        the database's head below it is a cut."""
        self._own: tuple[int, str] = (0, audit.GENESIS)
        """The head this process's last append made. `known` stays put while a finding stands, so entries
        above it are not all another replica's: only those above this one (named once, by the append after them)."""
        self._cut: audit.Cut | None = None
        """A cut that stands (found here, or kept with the anchor in OpenBao): nothing is signed over it."""
        self._kept: audit.Cut | None = None
        """The cut this process wrote to OpenBao (once: a person deleting the anchor is not overruled)."""
        self._lock = asyncio.Lock()
        self._loaded = False
        self._last_error = ""
        self.broken = ""
        """Why the database's chain does not extend the anchor ('' while it does): nothing is signed."""
        self._checked = False
        self.alarm: Callable[[str], Awaitable[None]] | None = None
        """Says `broken` where people look (the operator's Warning Event on the audit Backend)."""

    @property
    def enabled(self) -> bool:
        return self.connect is not None

    async def gate(self) -> None:
        """Before an adapter may write: entries still held must reach the store first."""
        if self.held:
            await self.flush()
            if self.held:
                raise AuditUnavailable(f"audit trail unavailable: {len(self.held)} change(s) not yet recorded; "
                                       "no further change is made until it can record them (see the operator log)")

    async def record(self, changes: list[dict[str, Any]]) -> None:
        if not self.enabled or not changes:
            return
        if len(self.held) + len(changes) > MAX_HELD:
            log.error("audit trail: more than %d changes held; dropping %d oldest", MAX_HELD, len(changes))
            del self.held[:len(changes)]
        self.held += changes
        await self.flush()

    async def _load(self, store: audit_store.Store, signer: audit_store.Signer) -> None:
        if not self._loaded:
            self.last_seq, self.last_hash = await store.state()
            self._anchor = await asyncio.to_thread(signer.anchor)  # not audit_heads: the database is not trusted
            self.signed_seq = self._anchor.seq if self._anchor else 0
            # What survives a restart is OpenBao's: the anchor, and a cut found before (it still stands).
            self._cut = await asyncio.to_thread(signer.cut)
            anchored = (self._anchor.seq, self._anchor.hash) if self._anchor else (0, audit.GENESIS)
            self.known = ((self._cut.seq, self._cut.hash) if self._cut else
                          _higher(anchored, (self.last_seq, self.last_hash)))
            # Entries from here on carry MACs; the ones before (an older operator's) are trusted as it did.
            self.macs_from = await signer.set_macs_from(self.last_seq + 1)
            self._loaded = True

    async def flush(self) -> None:
        async with self._lock:
            if not self.held or self.connect is None:
                return
            batch = list(self.held)
            try:
                store, signer = await self.connect()
                await self._load(store, signer)
                prev, sealed = await store.append(batch, self.actor, signer.mac)
            except Exception as exc:  # noqa: BLE001 - any failure: hold them, refuse further changes
                for c in batch:
                    log.error("audit trail unavailable (%s: %s); holding %s %s %s (%s)", type(exc).__name__, exc,
                              c["tenant"] or "-", c["action"], c["target"], audit.details_digest(c["details"]),
                              extra={"tenant": c["tenant"]})
                return
            del self.held[:len(batch)]
            moved = audit.moved_back(self.known, prev)
            own, self._own = self._own, (sealed[-1].seq, sealed[-1].hash)
            if not moved and prev != own and prev[0] > self.known[0]:  # checked (MACs) before the next signature
                first = own[0] + 1 if self.known[0] <= own[0] < prev[0] else self.known[0] + 1
                log.info("audit trail: entries %s..%s were appended by another replica", first, prev[0])
            for e, c in zip(sealed, batch, strict=True):
                log.info("audit %s: %s %s %s details=%s (%s)", e.seq, e.tenant or "-", e.action, e.target,
                         e.details_digest, "; ".join(f"{k}={v}" for k, v in c["details"].items() if v),
                         extra={"tenant": e.tenant})  # so the JSON line's `tenant` field names it
            self.last_seq, self.last_hash = sealed[-1].seq, sealed[-1].hash
            if moved:  # `known` stays: the database must hold it again before anything is signed
                self._found_below(prev)
                if not self.broken:  # else the next tick checks again (one alarm per cause)
                    await self._extends(store, signer)
                return
            if not self.broken:  # while a finding stands, a restore drops what is appended (the log names it)
                self.known = (self.last_seq, self.last_hash)  # this process wrote it
            if self.last_seq - self.signed_seq >= self.sign_every:
                await self._sign(store, signer)

    def _found_below(self, found: tuple[int, str]) -> None:
        """An append extended `found`, a head below `known`: entries were cut. `_extends` refuses and keeps it."""
        top = self._anchor.seq if self._anchor else 0
        if self._cut is None and self.known[0] > top:  # at or below the anchor, the anchor says what is missing
            self._cut = audit.Cut(*self.known, *found, top)

    async def _keep(self, signer: audit_store.Signer, cut: audit.Cut) -> None:
        """Write `cut` with the anchor in OpenBao (once; a failure is retried at the next check)."""
        try:
            await signer.record_cut(cut)
        except Exception as exc:  # noqa: BLE001 - this process still refuses; the next check tries again
            log.error("audit trail: cannot keep the cut with the anchor in OpenBao (a restart would forget it): %s: %s",
                      type(exc).__name__, exc)
            return
        self._kept = cut

    async def _extends(self, store: audit_store.Store, signer: audit_store.Signer) -> audit.Head | None | bool:
        """The anchor when the database's chain runs unbroken from it to this process's head and still holds
        the head known on it; False when not."""
        try:
            if self.broken:  # a finding stands: the database's own head is what may be signed once it passes
                self.last_seq, self.last_hash = await store.state()
            anchor = await asyncio.to_thread(signer.anchor)
            kept = await asyncio.to_thread(signer.cut)
            top = anchor.seq if anchor else 0
            # At or below the anchor, `extends` and the full verification check what was known.
            cuts = [c for c in dict.fromkeys((self._cut, kept)) if c is not None and c.seq > top]
            known = self.known if self.known[0] > top else None
            lo = min(top, self.last_seq) if anchor else 1
            segment = await store.segment(lo, max([top, self.last_seq, *(c.seq for c in cuts), known[0] if known else 0]))
        except Exception as exc:  # noqa: BLE001 - unknown yet: the next interval tries again
            log.error("audit trail: cannot check the chain against the anchor: %s: %s", type(exc).__name__, exc)
            return False
        self._anchor = anchor
        why, first = "", None
        standing = [c for c in cuts if not c.held(segment)]  # held again: restored from a backup
        self._cut = standing[0] if standing else audit.cut_in(known, segment, lo, top) if known else None
        if self._cut is not None:
            why, first = self._cut.reason(), self._cut.first
            if kept is None and self._kept != self._cut:  # once: a person deleting the anchor is not overruled
                await self._keep(signer, self._cut)
        if not why:
            why = audit.extends(anchor, segment, self.last_seq, self.last_hash)
        if not why:  # signs only what the operator wrote: every entry after the anchor carries its MAC
            unsigned = [e for e in segment if e.seq > top and e.seq >= self.macs_from]
            try:
                bad = await asyncio.to_thread(signer.bad_macs, unsigned) if unsigned else set()
            except Exception as exc:  # noqa: BLE001 - unknown yet: the next interval tries again
                log.error("audit trail: cannot check the entries' MACs: %s: %s", type(exc).__name__, exc)
                return False
            why = audit.unwritten(min(bad)) if bad else ""
        self._checked = True
        if why:
            await self._refuse(why, anchor, first)
            return False
        self.known = _higher(self.known, (self.last_seq, self.last_hash))  # on the chain, checked just now
        if self._below:  # the full verification still fails: it alone clears that
            return False
        if self.broken:
            log.warning("audit trail: the chain extends the anchor again; signing resumes")
        self.broken = ""
        metrics.AUDIT_CHAIN_VERIFIED.set(1)
        return anchor

    async def _full(self, store: audit_store.Store, signer: audit_store.Signer) -> None:
        """Verify the whole chain like `kubectl tenant audit verify`: below the anchor too (reads only,
        unless entries after the last good signed head need their MACs checked)."""
        try:
            if self._below or self._anchor is None:  # a person may have restored or re-anchored meanwhile
                self._anchor = await asyncio.to_thread(signer.anchor)
            entries, heads = await store.read()
            versions = {int(h.signature.split(":", 2)[1].removeprefix("v")) for h in heads
                        if h.signature.count(":") >= 2 and h.signature.split(":", 2)[1].removeprefix("v").isdigit()}
            if not self._keys or not versions <= set(self._keys):
                self._keys = await asyncio.to_thread(signer.public_keys)
            keys = self._keys
            _, _, bad = await asyncio.to_thread(audit.verify, entries, heads, self._anchor,
                                                lambda h: audit.verify_signature(keys, h), signer.bad_macs,
                                                self.macs_from, self._cut)
        except Exception as exc:  # noqa: BLE001 - unknown yet: the next tick tries again
            log.error("audit trail: cannot verify the chain: %s: %s", type(exc).__name__, exc)
            return
        self._next_full = time.monotonic() + self.verify_every
        self._checked = True
        if bad is not None:
            self._below = f"entry {bad.seq}: {bad.reason}"
            await self._refuse(bad.reason, self._anchor, first=bad.seq)
            return
        if self._below:
            log.warning("audit trail: the whole chain verifies again; signing resumes")
            self._below = ""
            self.broken = ""
        if not self.broken:
            metrics.AUDIT_CHAIN_VERIFIED.set(1)

    async def _refuse(self, why: str, anchor: audit.Head | None, first: int | None = None) -> None:
        metrics.AUDIT_CHAIN_VERIFIED.set(0)
        if why == self.broken:  # said once per cause, not at every interval
            return
        self.broken = why
        where = (f"audit chain verification failed, first bad entry {first}" if first is not None else
                 f"audit chain does not extend the signed anchor (entry {anchor.seq if anchor else 0})")
        message = (f"{where}: {why}; "
                   "no head is signed and the anchor stays until the database is restored or a person "
                   "re-anchors (docs/audit.md); changes are still recorded")
        log.error("audit trail: %s", message)
        if self.alarm is not None:
            try:
                await self.alarm(message)
            except Exception as exc:  # noqa: BLE001 - the log line and the metric still say it
                log.warning("audit trail: cannot post the AuditChainBroken event: %s: %s", type(exc).__name__, exc)

    async def _sign(self, store: audit_store.Store, signer: audit_store.Signer) -> None:
        if self._below:  # a bad entry below the head: nothing is signed until the full verification passes
            return
        anchor = await self._extends(store, signer)
        if anchor is False:
            return
        if isinstance(anchor, audit.Head) and anchor.seq >= self.last_seq:
            self.signed_seq = anchor.seq  # signed already (by another replica, or before the heads were lost)
            return
        try:
            head = await signer.sign(self.last_seq, self.last_hash)
            await store.add_head(head)
        except Exception as exc:  # noqa: BLE001 - the next interval tries again; the entries are stored
            log.error("audit trail: signing the head at entry %s failed: %s: %s", self.last_seq, type(exc).__name__, exc)
            return
        self.signed_seq, self._anchor = head.seq, head
        self.known = _higher(self.known, (head.seq, head.hash))
        log.info("audit trail: head at entry %s signed (%s)", head.seq, head.signature.split(":", 2)[1])

    async def tick(self) -> None:
        """The timer: sign the head if entries came since the last signature (none: no I/O); while a
        finding stands, check again (reads only)."""
        if self.connect is None:
            return
        async with self._lock:
            due = bool(self._below) or time.monotonic() >= self._next_full
            if self._loaded and self._checked and self.last_seq <= self.signed_seq and not due and not self.broken:
                return
            try:
                store, signer = await self.connect()
                await self._load(store, signer)
            except Exception as exc:  # noqa: BLE001
                message = f"{type(exc).__name__}: {exc}"
                if message != self._last_error:  # once per cause, not every tick
                    log.error("audit trail: cannot reach its store: %s", message)
                self._last_error = message
                return
            self._last_error = ""
            if self.last_seq > self.signed_seq or (self.broken and not self._below):
                await self._sign(store, signer)
            elif not self._checked:  # at start: does the database still extend the anchor? (reads only)
                await self._extends(store, signer)
            if due and (self._below or not self.broken):  # then below the anchor too (reads only)
                await self._full(store, signer)
        if self.held:
            await self.flush()
