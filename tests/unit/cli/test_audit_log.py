"""`kubectl tenant audit log` checks the whole trail before it shows a tenant's rows (pure; e2e runs it for real)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tenancy_operator.cli.audit import log_text
from tenancy_operator.observability import audit

KEY = Ed25519PrivateKey.generate()
PUBLIC = {1: KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}


def _chain(n: int) -> list[audit.Entry]:
    out, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        out.append(audit.seal(i, f"2026-12-03T18:00:{i:02d}.000000Z", "acme" if i % 2 else "beta", "create",
                              f"postgres pg: role r{i}", "system:serviceaccount:t:op", {"what": f"r{i}"}, prev))
        prev = out[-1].hash
    return out


def _head(e: audit.Entry) -> audit.Head:
    return audit.Head(e.seq, e.hash, "vault:v1:" + base64.b64encode(KEY.sign(audit.head_message(e.seq, e.hash))).decode())


def _checks(text: str) -> dict[int, str]:
    return {int(line.split()[0]): line.split()[-1] for line in text.splitlines()[1:-1]}


def test_intact_rows_say_signed_or_unsigned():
    entries = _chain(6)
    code, text = log_text("acme", entries, [_head(entries[2])], _head(entries[2]), PUBLIC)
    assert code == 0 and _checks(text) == {1: "signed", 3: "signed", 5: "unsigned"}, text
    assert text.splitlines()[-1] == "3 entries for tenant acme; audit trail verified: 6 entries chained, signed up to entry 3"


def test_a_broken_trail_marks_rows_from_the_first_bad_entry_and_fails():
    entries = _chain(6)
    anchor = _head(entries[4])
    changed = entries[:2] + [audit.Entry(**{**entries[2].__dict__, "target": "edited"})] + entries[3:]
    code, text = log_text("acme", changed, [anchor], anchor, PUBLIC)
    assert code == 1 and _checks(text) == {1: "unsigned", 3: "BAD", 5: "BAD"}, text
    assert "audit trail BROKEN: first bad entry 3: entry 3 was changed" in text.splitlines()[-1]
    # A head signed by another key: the trail is broken at the head, whatever the rows say.
    forged = audit.Head(5, entries[4].hash, "vault:v1:" + base64.b64encode(b"x" * 64).decode())
    code, text = log_text("acme", entries, [forged], forged, PUBLIC)
    assert code == 1 and _checks(text)[5] == "BAD" and "signature does not verify" in text


def test_without_openbao_the_chain_is_checked_and_the_rows_say_unverified():
    entries = _chain(4)
    code, text = log_text("acme", entries, [], None, None)
    assert code == 0 and set(_checks(text).values()) == {"unverified"} and "signatures NOT verified" in text
    code, text = log_text("acme", entries[:1] + entries[2:], [], None, None)  # entry 2 deleted
    assert code == 1 and _checks(text) == {1: "unverified", 3: "BAD"}, text
