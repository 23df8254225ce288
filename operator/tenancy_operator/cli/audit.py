"""`kubectl tenant audit verify` and `kubectl tenant audit log TENANT`: read the operator's audit trail.

Unlike the other commands this one talks to the trail's servers itself, not through kubectl:
PostgreSQL from `--dsn` (else TENANCY_AUDIT_DSN, else libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD with
the database `tenancy_audit`), and OpenBao from `--vault-addr` (else VAULT_ADDR) with VAULT_TOKEN,
which needs `read` on `tenancy-audit/keys/chain` (the public keys) and `tenancy-audit-kv/data/head`
(the anchor), and `update` on `tenancy-audit/verify/chain` (to check the MACs of entries after the
last signed head: verifying cannot make one). `log` reads the whole trail and checks it like `verify` before printing the tenant's
rows, each marked with what the check found (without OpenBao: the chain only, rows `unverified`).
See docs/audit.md.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import asyncpg
import requests
from hvac import exceptions as hvac_errors

from ..observability import audit, audit_store

__all__ = ["add_parser", "run", "verify_text", "log_text"]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify or read the operator's audit trail")
    verbs = parser.add_subparsers(dest="audit_command", required=True)
    verify = verbs.add_parser("verify", help="check the hash chain and the signed heads; name the first bad entry")
    log = verbs.add_parser("log", help="one tenant's history, each entry checked against the whole trail")
    log.add_argument("tenant", help="Tenant name")
    for p in (verify, log):
        p.add_argument("--dsn", help="PostgreSQL URL of the audit database (default: TENANCY_AUDIT_DSN or PG* variables)")
        p.add_argument("--vault-addr", help="OpenBao address (default: VAULT_ADDR); the token is VAULT_TOKEN")


def _store(dsn: str | None) -> Any:
    dsn = dsn or os.environ.get("TENANCY_AUDIT_DSN")
    if dsn:
        return audit_store.Store(_DsnParams(dsn))  # type: ignore[arg-type]
    env = os.environ
    if not env.get("PGHOST"):
        raise ValueError("no audit database: pass --dsn, or set TENANCY_AUDIT_DSN or PGHOST/PGPORT/PGUSER/PGPASSWORD")
    return audit_store.Store(audit_store.PgParams(env["PGHOST"], int(env.get("PGPORT") or 5432), env.get("PGUSER", ""),
                                                  env.get("PGPASSWORD", ""), env.get("TENANCY_AUDIT_DATABASE")
                                                  or "tenancy_audit"))


class _DsnParams:
    """PgParams' one method, for a URL."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def connect(self, database: str | None = None):
        return asyncpg.connect(self.dsn, timeout=10)


def verify_text(entries: list[audit.Entry], heads: list[audit.Head], anchor: audit.Head | None,
                public_keys: dict[int, bytes], bad_macs: Any = None, macs_from: int = 1,
                cut: audit.Cut | None = None) -> tuple[int, str]:
    """(exit code, what to print). `bad_macs`: `Signer.bad_macs`, for the entries after the last signed head;
    `cut`: the one kept with the anchor (`Signer.cut`). Exit 3 when there are entries but nothing signed
    or anchored: a chain alone proves nothing (whoever can write the database can rewrite it whole)."""
    n, checked, bad = audit.verify(entries, heads, anchor, lambda h: audit.verify_signature(public_keys, h), bad_macs,
                                   macs_from, cut)
    if bad is not None:
        return 1, f"audit trail BROKEN: first bad entry {bad.seq}: {bad.reason}\n"
    if entries and not heads and anchor is None:
        return 3, (f"audit trail NOT VERIFIED: {n} entries chained, but no signed head and no anchor in OpenBao: "
                   "nothing shows they were not rewritten, cut or replaced (the operator signs a head within "
                   "audit.signInterval of a change; if it has signed before, its anchor was deleted: docs/audit.md)\n")
    last = max((e.seq for e in entries), default=0)
    signed = max([h.seq for h in heads] + [anchor.seq if anchor else 0], default=0)
    macs = ", each with a valid operator MAC" if bad_macs is not None else ""
    tail = f"; {last - signed} entries after the last signed head (entry {signed}) are not signed yet{macs}" \
        if last > signed else ""
    return 0, (f"audit trail intact: {n} entries chained, {checked} signed heads verified "
               f"(anchor: entry {anchor.seq if anchor else 'none'}){tail}\n")


def log_text(tenant: str, entries: list[audit.Entry], heads: list[audit.Head], anchor: audit.Head | None,
             public_keys: dict[int, bytes] | None, bad_macs: Any = None, macs_from: int = 1,
             cut: audit.Cut | None = None) -> tuple[int, str]:
    """(exit code, the tenant's rows), each row checked against the whole trail (`entries`: every entry).

    CHECK says what verify found for the row: `signed` (chained up to a signed head that verifies),
    `unsigned` (chained, after the last signed head), `BAD` (at or after the first bad entry: not to
    be trusted), `unverified` (no OpenBao given: the chain is checked, the signatures are not).
    Exit 1 when the trail is broken.
    """
    if public_keys is None:  # the chain alone; no head or anchor can be checked without the keys
        _, _, bad = audit.verify(entries, [], None, lambda h: "")
    else:
        _, _, bad = audit.verify(entries, heads, anchor, lambda h: audit.verify_signature(public_keys, h), bad_macs,
                                 macs_from, cut)
    limit = bad.seq if bad else max((e.seq for e in entries), default=0) + 1
    signed = max([h.seq for h in [*heads, *([anchor] if anchor else [])] if h.seq < limit], default=0)

    def check(seq: int) -> str:
        if seq >= limit:
            return "BAD"
        if public_keys is None:
            return "unverified"
        return "signed" if seq <= signed else "unsigned"

    mine = [e for e in entries if e.tenant == tenant]
    rows = [["SEQ", "TIME", "ACTION", "TARGET", "ACTOR", "DETAILS", "CHECK"]]
    rows += [[str(e.seq), e.at[:19] + "Z", e.action, e.target, e.actor, e.details_digest[:19], check(e.seq)]
             for e in mine]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    if bad is not None:
        verdict = (f"audit trail BROKEN: first bad entry {bad.seq}: {bad.reason}; "
                   f"entries from {bad.seq} on cannot be trusted")
    elif public_keys is None:
        verdict = ("chain intact, signatures NOT verified (no OpenBao: pass --vault-addr or set VAULT_ADDR, "
                   "and VAULT_TOKEN)")
    else:
        verdict = f"audit trail verified: {len(entries)} entries chained, signed up to entry {signed}"
    return (1 if bad else 0), text + f"\n{len(mine)} entries for tenant {tenant}; {verdict}\n"


def run(args: Any) -> int:
    """Exit 0: intact; 1: a bad entry (`log` prints the rows, marked); 2: the trail could not be read;
    3 (`verify`): entries, but nothing signed or anchored to verify them against."""
    try:
        return _run(args)
    except asyncpg.InvalidCatalogNameError as exc:  # the database the operator keeps the trail in is not there
        print(f"error: cannot read the audit trail: {exc}: the operator keeps no audit trail on this server "
              "(is the trail on? chart value audit.backend, docs/audit.md; --dsn or TENANCY_AUDIT_DATABASE name another)",
              file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, hvac_errors.VaultError, requests.RequestException) as exc:
        print(f"error: cannot read the audit trail: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _signer(args: Any, required: bool) -> audit_store.Signer | None:
    addr = args.vault_addr or os.environ.get("VAULT_ADDR")
    if not addr or not os.environ.get("VAULT_TOKEN"):
        if not required:
            return None
        raise ValueError("no OpenBao to check signatures with: pass --vault-addr or set VAULT_ADDR, and VAULT_TOKEN")
    return audit_store.Signer(addr, os.environ["VAULT_TOKEN"])


def _run(args: Any) -> int:
    store = _store(args.dsn)
    signer = _signer(args, required=args.audit_command == "verify")
    entries, heads = asyncio.run(store.read())
    anchor, keys = (signer.anchor(), signer.public_keys()) if signer else (None, None)
    # The first entry that must carry a MAC, kept with the anchor; none recorded: no operator that makes
    # MACs has run on this trail yet, so there is nothing to check.
    first = signer.macs_from() if signer else None
    macs = signer.bad_macs if signer and first is not None else None
    first = first or 1
    cut = signer.cut() if signer else None  # the operator found the database's head moved back below one it knew
    if args.audit_command == "log":
        code, text = log_text(args.tenant, entries, heads, anchor, keys, macs, first, cut)
    else:
        code, text = verify_text(entries, heads, anchor, keys or {}, macs, first, cut)
    print(text, end="")
    return code
