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
