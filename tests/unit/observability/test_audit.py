"""The audit chain's verifier names the first bad entry for each kind of tampering (pure; e2e does it on the real servers)."""

from __future__ import annotations

import base64
import dataclasses

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tenancy_operator.observability import audit

KEY = Ed25519PrivateKey.generate()
PUBLIC = {1: KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}


def _sign(entry: audit.Entry) -> audit.Head:
    sig = base64.b64encode(KEY.sign(audit.head_message(entry.seq, entry.hash))).decode()
    return audit.Head(entry.seq, entry.hash, f"vault:v1:{sig}")


def _chain(n: int = 10) -> list[audit.Entry]:
    out, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        e = audit.seal(i, f"2026-12-03T18:00:{i:02d}.000000Z", "acme", "create", f"postgres pg: role r{i}",
                       "system:serviceaccount:tenancy-system:tenancy-operator", {"what": f"role r{i}"}, prev)
        out.append(e)
        prev = e.hash
    return out


def _check(entries, heads, anchor):
    return audit.verify(entries, heads, anchor, lambda h: audit.verify_signature(PUBLIC, h))[2]


def test_untouched_chain_verifies():
    entries = _chain()
    heads = [_sign(entries[4]), _sign(entries[7])]
    assert _check(entries, heads, heads[-1]) is None


def test_each_tampering_names_the_first_bad_entry():
    entries = _chain()
    heads = [_sign(entries[4]), _sign(entries[7])]
    changed = [*entries[:2], dataclasses.replace(entries[2], action="delete"), *entries[3:]]
    assert _check(changed, heads, heads[-1]).seq == 3
    deleted = entries[:3] + entries[4:]
    assert _check(deleted, heads, heads[-1]).seq == 4
    e3, e6 = entries[2], entries[5]
    swapped = [*entries[:2], dataclasses.replace(e6, seq=3), *entries[3:5], dataclasses.replace(e3, seq=6), *entries[6:]]
    assert _check(swapped, heads, heads[-1]).seq == 3
    # The tail cut with its heads: the anchor (in OpenBao) still covers entry 8.
    bad = _check(entries[:6], heads[:1], heads[-1])
    assert bad.seq == 7 and "cut" in bad.reason
    forged = [heads[0], dataclasses.replace(heads[1], signature=heads[0].signature)]
    bad = _check(entries, forged, heads[-1])
    assert bad.seq == 8 and "signature" in bad.reason


def test_classify_uses_the_adapters_words():
    assert audit.classify("ensure", "role t_a_a", "missing") == "create"
    assert audit.classify("ensure", "login of t_a_b and password", "password verifier") == "rotate"
    assert audit.classify("ensure", "login of t_a_a", "rolcanlogin True (want False)", suspended=True) == "suspend"
    assert audit.classify("ensure", "login of t_a_a", "rolcanlogin False (want True)") == "resume"
    assert audit.classify("ensure", "membership t_a_a in t_a_owner", "member of []") == "grant"
    assert audit.classify("ensure", "PUBLIC connect on t_a", "PUBLIC may connect") == "revoke"
    assert audit.classify("ensure", "connection limit of t_a", "datconnlimit 5 (want 20)") == "alter"
    assert audit.classify("delete", "database t_a", "") == "delete"
    assert audit.classify("close", "login t_a_a off", "") == "suspend"
    assert all(a in audit.ACTIONS for a in ("create", "rotate", "suspend", "resume", "grant", "revoke", "alter"))


# The signer's check (audit.extends): a head may be signed only when it and the OpenBao anchor lie on one
# unbroken chain.

def _rechain(entries: list[audit.Entry]) -> list[audit.Entry]:
    """What a database writer does after deleting entries: renumber and re-hash the rest."""
    out, prev = [], audit.GENESIS
    for i, e in enumerate(entries, 1):
        e = dataclasses.replace(e, seq=i, prev_hash=prev, hash="")
        e = dataclasses.replace(e, hash=audit.entry_hash(e))
        out.append(e)
        prev = e.hash
    return out


def test_a_head_past_the_anchor_on_its_chain_extends_it():
    entries = _chain(8)
    anchor = _sign(entries[2])
    assert audit.extends(anchor, entries[2:], 8, entries[7].hash) == ""
    assert audit.extends(anchor, entries[2:3], 3, entries[2].hash) == ""  # the anchor's own head


def test_no_anchor_checks_from_genesis():
    entries = _chain(4)
    assert audit.extends(None, entries, 4, entries[3].hash) == ""
    first = dataclasses.replace(entries[0], prev_hash="f" * 64)
    first = dataclasses.replace(first, hash=audit.entry_hash(first))
    assert audit.extends(None, [first, *entries[1:]], 4, entries[3].hash) == "entry 1 does not follow entry 0 (its prev_hash differs)"


def test_a_head_behind_the_anchor_is_fine_when_the_anchor_extends_it():
    """Another replica signed further: the anchor must extend this process's older head."""
    entries = _chain(8)
    assert audit.extends(_sign(entries[6]), entries[4:7], 5, entries[4].hash) == ""


def test_signed_entry_deleted_and_rechained_is_refused():
    """The review finding: entry 2 of 3 deleted, the rest re-chained, heads dropped; the anchor is at 3."""
    entries = _chain(3)
    anchor = _sign(entries[2])
    forged = _rechain([entries[0], entries[2]])
    why = audit.extends(anchor, forged[1:], 2, forged[1].hash)
    assert "entry 3 is missing" in why and "the anchor in OpenBao covers entry 3" in why
    # Rewritten but as long as before: the anchor's entry holds another hash.
    longer = _rechain([entries[0], entries[2], entries[1], entries[2]])
    why = audit.extends(anchor, longer[2:], 4, longer[3].hash)
    assert why == "entry 3 holds another hash than the anchor in OpenBao covers"


def test_a_changed_gap_or_unlinked_entry_between_anchor_and_head_is_named():
    entries = _chain(8)
    anchor = _sign(entries[2])
    changed = entries[:5] + [dataclasses.replace(entries[5], target="edited")] + entries[6:]
    assert audit.extends(anchor, changed[2:], 8, entries[7].hash) == "entry 6 was changed: its content does not match its hash"
    gap = entries[2:4] + entries[5:]
    assert audit.extends(anchor, gap, 8, entries[7].hash) == "entry 5 is missing from the audit database"
    relinked = entries[2:5] + [audit.seal(6, "t", "acme", "create", "x", "op", {}, "e" * 64)] + entries[6:]
    assert audit.extends(anchor, relinked, 8, entries[7].hash).startswith("entry 6 does not follow entry 5")
    assert audit.extends(anchor, entries[2:], 8, "0" * 64) == "entry 8 holds another hash than the head to sign covers"


def test_macs_are_asked_for_only_after_the_last_good_head_and_from_macs_from():
    entries = _chain(10)
    asked: list[list[int]] = []

    def bad_macs(tail):
        asked.append([e.seq for e in tail])
        return {e.seq for e in tail if e.seq == 9}

    keys = {1: KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}
    head = _sign(entries[5])  # entry 6 signed
    _, _, bad = audit.verify(entries, [head], head, lambda h: audit.verify_signature(keys, h), bad_macs)
    assert asked == [[7, 8, 9, 10]] and bad == audit.Finding(9, audit.unwritten(9))
    _, _, bad = audit.verify(entries, [head], head, lambda h: audit.verify_signature(keys, h), bad_macs, macs_from=10)
    assert asked[-1] == [10] and bad is None
    # The MAC is not part of the hash: the chain is the same with or without it.
    assert audit.entry_hash(dataclasses.replace(entries[0], mac="vault:v1:x")) == entries[0].hash


def test_the_head_moving_back_is_a_cut_and_a_higher_one_is_not():
    assert audit.moved_back((6, "h6"), (3, "h3"))  # entries 4..6 gone
    assert audit.moved_back((6, "h6"), (6, "x6"))  # gone, and as many others appended in their place
    assert not audit.moved_back((6, "h6"), (6, "h6"))
    assert not audit.moved_back((6, "h6"), (9, "h9"))  # another replica appended


def test_a_cut_is_found_in_the_segment_and_named_until_its_head_is_back():
    entries = _chain(6)
    anchor = _sign(entries[2])
    # Entries 4..6 cut, two others appended after entry 3.
    again, prev = list(entries[:3]), entries[2].hash
    for i in (4, 5):
        again.append(audit.seal(i, "t", "acme", "alter", f"postgres pg: role s{i}", "op", {}, prev))
        prev = again[-1].hash
    known = (6, entries[5].hash)
    cut = audit.cut_in(known, again[3:], 4, 3)
    assert (cut.found_seq, cut.found_hash, cut.first) == (5, again[4].hash, 6)
    cut = audit.cut_in(known, again[2:], 3, 3)
    assert cut.first == 6 and audit.cut_in(known, entries[2:], 3, 3) is None
    # What the operator keeps in OpenBao when its append found the head at entry 3:
    kept = audit.Cut(6, entries[5].hash, 3, entries[2].hash, 3)
    bad = audit.verify(again, [anchor], anchor, lambda h: audit.verify_signature(PUBLIC, h), cut=kept)[2]
    assert bad.seq == 4 and "entries 4..6 were cut" in bad.reason and entries[5].hash[:16] in bad.reason
    assert _check(again, [anchor], anchor) is None  # without it, the cut chain verifies: why it is kept
    assert audit.verify(entries, [anchor], anchor, lambda h: audit.verify_signature(PUBLIC, h), cut=kept)[2] is None
    replaced = audit.Cut(6, entries[5].hash, 6, "f" * 64, 3)
    assert replaced.first == 4 and "after the last signed one (3)" in replaced.reason()
