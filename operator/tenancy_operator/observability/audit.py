"""The audit trail's chain, pure: entries, their hashes, signed heads, and the verifier.

An entry says one change the operator made to a backend object or a credential:

    Entry(seq=7, at="2026-12-03T18:40:01.123456Z", tenant="acme", action="create",
          target="postgres pg-main: role t_acme_a", actor="system:serviceaccount:tenancy-system:tenancy-operator",
          details_digest="sha256:<hex>", prev_hash="<hex of entry 6>", hash="<hex>")

`hash` is SHA-256 over the canonical JSON of every other field (`entry_hash`), so an entry's content,
its place (`seq`) and its predecessor (`prev_hash`) are all bound; entry 1 follows `GENESIS`. The
details (what differed, in the adapters' words: field names and non-secret values) are kept only as
a digest: the log never holds a secret, and whoever has the details (the operator log prints them
with the digest) can show they match. A head is `(seq, hash)` of one entry, signed with an OpenBao
transit key (ed25519) over `head_message`; the newest signed head is also kept in OpenBao (the
anchor), out of reach of whoever can write the database. `verify` names the first bad entry;
`extends` is the signer's check that the head it is about to sign still extends the anchor.

`mac` (not part of the hash) is the operator's OpenBao transit HMAC of `mac_message(e)`, made when the
operator appends the entry: an entry someone else inserted, however well chained, has none that
verifies, so the signer refuses to sign a head over it and `verify` names it. Entries at or below a
signed head that verifies need no MAC check: the signer checked them before signing.

A `Cut` says the database's head moved back below a head the operator knew on the chain (entries
not yet signed were removed, perhaps with others appended in their place): the operator keeps it
with the anchor in OpenBao, refuses to sign until the database holds that head again, and `verify`
names it (`moved_back`, `cut_in`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

__all__ = ["GENESIS", "ACTIONS", "Entry", "Head", "Finding", "Cut", "moved_back", "cut_in", "entry_hash", "details_digest", "head_message", "mac_message",
           "classify", "seal", "verify", "verify_signature", "extends", "unwritten"]

GENESIS = "0" * 64
ACTIONS = ("create", "alter", "grant", "revoke", "rotate", "suspend", "resume", "delete", "archive", "purge")


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    """UTC, RFC 3339 with microseconds and a Z."""
    tenant: str
    """The tenant the change was for; empty for a change to a Backend as a whole (server hardening)."""
    action: str
    """One of ACTIONS."""
    target: str
    """`<service> <backend>: <object>`, e.g. `redis redis-main: ACL user tenant:acme`."""
    actor: str
    details_digest: str
    prev_hash: str
    hash: str = ""
    mac: str = ""
    """OpenBao's HMAC of `mac_message(self)` with the operator's transit key, `vault:v<n>:<base64>`."""


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    signature: str
    """OpenBao's form, `vault:v<key version>:<base64>`."""


@dataclass(frozen=True)
class Finding:
    seq: int
    """The first bad entry."""
    reason: str


@dataclass(frozen=True)
class Cut:
    """The database's head was found below `(seq, hash)`, a head the operator knew on the chain (it
    appended it, read it as the head, or signed it): `(found_seq, found_hash)` is what it found there
    instead (the database's head, or its last entry before `seq`; `found_hash` '' when none was read);
    `signed`, the anchor's seq when it was found."""
    seq: int
    hash: str
    found_seq: int
    found_hash: str
    signed: int = 0

    @property
    def first(self) -> int:
        """The first entry known to be gone, or, when others took their place, the first that may be."""
        return self.found_seq + 1 if self.found_seq < self.seq else self.signed + 1

    def held(self, entries: Iterable[Entry]) -> bool:
        """Does the database hold the known head again (restored from a backup)?"""
        return any(e.seq == self.seq and e.hash == self.hash for e in entries)

    def reason(self) -> str:
        """Both heads, in seq and hash words only."""
        known = f"the chain had reached entry {self.seq} ({self.hash[:16]})"
        if self.found_seq == self.seq:
            return (f"the audit database's head moved back: {known}, the database holds another entry {self.seq} "
                    f"({self.found_hash[:16]}): entries after the last signed one ({self.signed}) were cut and "
                    "others appended in their place")
        found = (f"entry {self.found_seq} ({self.found_hash[:16]}) below it" if self.found_hash else
                 f"no entry from {self.first} to it")
        return (f"the audit database's head moved back: {known}, the database holds {found}: "
                f"entries {self.first}..{self.seq} were cut")

    def record(self) -> dict[str, int | str]:
        return {"seq": self.seq, "hash": self.hash, "found_seq": self.found_seq, "found_hash": self.found_hash,
                "signed": self.signed}


def moved_back(known: tuple[int, str], found: tuple[int, str]) -> bool:
    """The head an append extended, `found`, lies below the head known on the chain (a lower seq, or the
    same seq with another hash): entries were removed. A higher seq is another replica's appends."""
    return found[0] < known[0] or (found[0] == known[0] and found[1] != known[1])


def cut_in(known: tuple[int, str], segment: Iterable[Entry], since: int, signed: int = 0) -> Cut | None:
    """None when `segment` (the database's entries from `since`, which is at most `known`'s seq) holds
    the known head; else the Cut, with the entry found at its seq or the last one before it (`signed`:
    the anchor's seq)."""
    rows = {e.seq: e for e in segment if since <= e.seq <= known[0]}
    at = rows.get(known[0])
    if at is not None:
        return None if at.hash == known[1] else Cut(*known, known[0], at.hash, signed)
    below = max(rows, default=None)
    return Cut(*known, below, rows[below].hash, signed) if below is not None else Cut(*known, since - 1, "", signed)


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(e: Entry) -> str:
    fields = asdict(e)
    fields.pop("hash")
    fields.pop("mac")
    return hashlib.sha256(_canonical(fields)).hexdigest()


def details_digest(details: dict[str, str]) -> str:
    return "sha256:" + hashlib.sha256(_canonical(details)).hexdigest()


def head_message(seq: int, hash_: str) -> bytes:
    """What a head's signature covers."""
    return f"tenancy-audit/v1 seq={seq} hash={hash_}".encode()


def mac_message(e: Entry) -> bytes:
    """What an entry's MAC covers: its place and its hash (which binds everything else)."""
    return f"tenancy-audit/v1 entry seq={e.seq} hash={e.hash}".encode()


def seal(seq: int, at: str, tenant: str, action: str, target: str, actor: str, details: dict[str, str],
         prev_hash: str) -> Entry:
    """The next entry, with its digest and hash."""
    e = Entry(seq, at, tenant, action, target, actor, details_digest(details), prev_hash)
    return Entry(**{**asdict(e), "hash": entry_hash(e)})


def classify(verb: str, what: str, why: str, suspended: bool = False) -> str:
    """The action of one change an adapter reported, from the verb it ran and its own words.

    `verb` is the adapter call (`ensure`, `close`, `delete`, `ensure_server`); `what` the object and
    `why` what differed (base.Report.diffs). A caller that knows better (archive, purge) says so instead.
    """
    text = f"{what} {why}".lower()
    if verb == "delete":
        return "delete"
    if verb == "close":
        return "revoke" if ("revoked" in text or "killed" in text or "ended" in text) else "suspend"
    if "password" in text:
        return "rotate"
    if suspended:
        return "suspend"
    if "revoked" in text or "public connect" in text or "killed" in text or "ended" in text:
        return "revoke"
    if "(want true)" in text or "(want on)" in text:
        return "resume"
    if "membership" in text or "connect on" in text:
        return "grant"
    # Adapters give no `why` for what they made (a transit key, a mark on a new object), "missing" for the rest.
    return "create" if why in ("missing", "") else "alter"


def verify_signature(public_keys: dict[int, bytes], head: Head) -> str:
    """'' when `head.signature` is a valid ed25519 signature of the head by a key version in `public_keys`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        prefix, version, sig = head.signature.split(":", 2)
        key = public_keys.get(int(version.removeprefix("v"))) if prefix == "vault" else None
        if key is None:
            return f"signature names key version {version!r}, which the signing key does not have"
        Ed25519PublicKey.from_public_bytes(key).verify(base64.b64decode(sig), head_message(head.seq, head.hash))
    except (ValueError, InvalidSignature):
        return "signature does not verify with the audit signing key"
    return ""


def verify(entries: Iterable[Entry], heads: Iterable[Head], anchor: Head | None,
           check: Callable[[Head], str],
           bad_macs: Callable[[list[Entry]], set[int]] | None = None,
           macs_from: int = 1, cut: Cut | None = None) -> tuple[int, int, Finding | None]:
    """Check the chain, every signed head and the anchor. Returns (entries, heads checked, first bad).

    `entries` in any order; `check(head)` is `verify_signature` with the key's versions bound ('' is
    good). The first bad entry is the lowest seq any check points at: a changed entry (its hash), a
    missing one (a gap, or a signed head or the anchor past the end), one out of place (seq bound in
    the hash), a head whose hash or signature is wrong (the entry it covers), and, when `bad_macs` is
    given, an entry after the last good signed head (or anchor) whose MAC does not verify:
    `bad_macs(those entries)` returns their seqs (it asks OpenBao; not called when there are none).
    Entries before `macs_from` (written before the operator made MACs) are not asked about. `cut`
    (kept with the anchor in OpenBao) names its first entry while the log does not hold its head.
    """
    found: list[Finding] = []
    rows = sorted(entries, key=lambda e: e.seq)
    hashes: dict[int, str] = {}
    want_seq, want_prev = 1, GENESIS
    for e in rows:
        if e.seq != want_seq:
            found.append(Finding(want_seq, f"entry {want_seq} is missing (the next entry present is {e.seq})"))
        elif e.prev_hash != want_prev:
            found.append(Finding(e.seq, f"entry {e.seq} does not follow entry {e.seq - 1} (its prev_hash differs)"))
        if entry_hash(e) != e.hash:
            found.append(Finding(e.seq, f"entry {e.seq} was changed: its content does not match its hash"))
        hashes[e.seq] = e.hash
        want_seq, want_prev = e.seq + 1, e.hash
    last = rows[-1].seq if rows else 0
    checked, covered = 0, 0
    for head, source in [(h, "signed head") for h in heads] + ([(anchor, "anchor in OpenBao")] if anchor else []):
        checked += 1
        if head.seq not in hashes:
            at = last + 1 if head.seq > last else head.seq
            found.append(Finding(at, f"the {source} covers entry {head.seq}, but the log ends at entry {last}: "
                                     f"entries {at}..{head.seq} were cut" if head.seq > last else
                                     f"the {source} covers entry {head.seq}, which is missing"))
            continue
        if hashes[head.seq] != head.hash:
            found.append(Finding(head.seq, f"the {source} at entry {head.seq} holds another hash than the entry"))
        why = check(head)
        if why:
            found.append(Finding(head.seq, f"the {source} at entry {head.seq}: {why}"))
        elif hashes[head.seq] == head.hash:
            covered = max(covered, head.seq)
    if cut is not None and hashes.get(cut.seq) != cut.hash:
        found.append(Finding(cut.first, cut.reason()))
    tail = [e for e in rows if e.seq > covered and e.seq >= macs_from]
    if bad_macs is not None and tail:
        found += [Finding(n, unwritten(n)) for n in bad_macs(tail)]
    first = min(found, key=lambda f: f.seq) if found else None
    return len(rows), checked, first


def unwritten(seq: int) -> str:
    return (f"entry {seq} carries no valid MAC of the operator's key: the operator did not write it "
            "(inserted by someone who can write the audit database)")


def extends(anchor: Head | None, segment: Iterable[Entry], seq: int, hash_: str) -> str:
    """'' when the head `(seq, hash_)` and the anchor lie on one unbroken chain in `segment`; else why not.

    `segment`: the database's entries from min(anchor seq, seq) to max(anchor seq, seq), any order
    (with no anchor: from entry 1, which must follow GENESIS). The entry at the anchor's seq must
    carry the anchor's hash, the one at `seq` must carry `hash_`, and every entry between must be
    present, unchanged (its hash) and follow its predecessor (`prev_hash`). The head may lie before
    the anchor (another replica signed further): then the anchor must extend the head. The reason
    names the first bad entry, in seq and hash words only (no detail, no secret).
    """
    ends = sorted([(anchor.seq, anchor.hash, "the anchor in OpenBao") if anchor else (0, GENESIS, "genesis"),
                   (seq, hash_, "the head to sign")], key=lambda end: end[0])  # stable: the anchor first
    (lo, lo_hash, lo_name), (hi, hi_hash, hi_name) = ends
    rows = {e.seq: e for e in segment if lo <= e.seq <= hi}
    prev = lo_hash
    if lo > 0:
        first = rows.get(lo)
        if first is None:
            return f"entry {lo}, which {lo_name} covers, is missing from the audit database"
        if first.hash != lo_hash:
            return f"entry {lo} holds another hash than {lo_name} covers"
        if entry_hash(first) != first.hash:
            return f"entry {lo} was changed: its content does not match its hash"
    for n in range(lo + 1, hi + 1):
        e = rows.get(n)
        if e is None:
            last = max(rows, default=lo)
            return (f"entry {n} is missing from the audit database (its entries end at {last}), yet {hi_name} "
                    f"covers entry {hi}" if n > last else f"entry {n} is missing from the audit database")
        if e.prev_hash != prev:
            return f"entry {n} does not follow entry {n - 1} (its prev_hash differs)"
        if entry_hash(e) != e.hash:
            return f"entry {n} was changed: its content does not match its hash"
        prev = e.hash
    if prev != hi_hash:
        return f"entry {hi} holds another hash than {hi_name} covers"
    return ""
