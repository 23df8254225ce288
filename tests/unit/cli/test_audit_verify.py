"""`kubectl tenant audit verify`: what it prints and its exit code (pure; e2e runs it for real)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tenancy_operator.cli.audit import verify_text
from tenancy_operator.observability import audit

KEY = Ed25519PrivateKey.generate()
PUBLIC = {1: KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)}


def _chain(n: int) -> list[audit.Entry]:
    out, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        out.append(audit.seal(i, "2026-12-03T18:00:00.000000Z", "acme", "create", f"postgres pg: role r{i}",
                              "system:serviceaccount:t:op", {"what": f"r{i}"}, prev))
        prev = out[-1].hash
    return out


def _head(e: audit.Entry) -> audit.Head:
    return audit.Head(e.seq, e.hash, "vault:v1:" + base64.b64encode(KEY.sign(audit.head_message(e.seq, e.hash))).decode())


def test_entries_with_nothing_signed_or_anchored_do_not_pass():
    code, text = verify_text(_chain(4), [], None, PUBLIC)
    assert code != 0 and text.startswith("audit trail NOT VERIFIED: 4 entries chained, but no signed head and no anchor")


def test_a_signed_or_empty_trail_passes():
    entries = _chain(4)
    assert verify_text(entries, [_head(entries[1])], _head(entries[1]), PUBLIC)[0] == 0
    assert verify_text(entries, [], _head(entries[3]), PUBLIC)[0] == 0  # the anchor alone (heads table emptied)
    assert verify_text([], [], None, PUBLIC)[0] == 0  # nothing recorded yet: nothing to vouch for


def test_a_cut_kept_with_the_anchor_is_named():
    entries = _chain(6)
    anchor = _head(entries[2])
    cut = audit.Cut(6, entries[5].hash, 3, entries[2].hash, 3)
    code, text = verify_text(entries[:3], [anchor], anchor, PUBLIC, cut=cut)
    assert code == 1 and text.startswith("audit trail BROKEN: first bad entry 4: the audit database's head moved back")
    assert verify_text(entries, [anchor], anchor, PUBLIC, cut=cut)[0] == 0  # restored: the head is back
