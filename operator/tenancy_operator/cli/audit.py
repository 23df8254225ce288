"""`kubectl tenant audit verify` and `kubectl tenant audit log TENANT`: read the operator's audit trail.

Unlike the other commands this one talks to the trail's servers itself, not through kubectl:
PostgreSQL from `--dsn` (else TENANCY_AUDIT_DSN, else libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD with
the database `tenancy_audit`), and OpenBao from `--vault-addr` (else VAULT_ADDR) with VAULT_TOKEN,
which needs only `read` on `tenancy-audit/keys/chain` (the public keys) and `tenancy-audit-kv/data/head`
(the anchor). See docs/audit.md.
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
    log = verbs.add_parser("log", help="one tenant's history")
    log.add_argument("tenant", help="Tenant name")
    for p in (verify, log):
        p.add_argument("--dsn", help="PostgreSQL URL of the audit database (default: TENANCY_AUDIT_DSN or PG* variables)")
    verify.add_argument("--vault-addr", help="OpenBao address (default: VAULT_ADDR); the token is VAULT_TOKEN")


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
                public_keys: dict[int, bytes]) -> tuple[int, str]:
    """(exit code, what to print)."""
    n, checked, bad = audit.verify(entries, heads, anchor, lambda h: audit.verify_signature(public_keys, h))
    if bad is not None:
        return 1, f"audit trail BROKEN: first bad entry {bad.seq}: {bad.reason}\n"
    last = max((e.seq for e in entries), default=0)
    signed = max([h.seq for h in heads] + [anchor.seq if anchor else 0], default=0)
    tail = f"; {last - signed} entries after the last signed head (entry {signed}) are not signed yet" \
        if last > signed else ""
    return 0, (f"audit trail intact: {n} entries chained, {checked} signed heads verified "
               f"(anchor: entry {anchor.seq if anchor else 'none'}){tail}\n")


def log_text(tenant: str, entries: list[audit.Entry]) -> str:
    rows = [["SEQ", "TIME", "ACTION", "TARGET", "ACTOR", "DETAILS"]]
    rows += [[str(e.seq), e.at[:19] + "Z", e.action, e.target, e.actor, e.details_digest[:19]] for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return text + f"\n{len(entries)} entries for tenant {tenant}\n"


def run(args: Any) -> int:
    """Exit 0: intact (or the log printed); 1: a bad entry; 2: the trail could not be read."""
    try:
        return _run(args)
    except (OSError, asyncpg.PostgresError, hvac_errors.VaultError, requests.RequestException) as exc:
        print(f"error: cannot read the audit trail: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(args: Any) -> int:
    store = _store(args.dsn)
    if args.audit_command == "log":
        entries, _ = asyncio.run(store.read(args.tenant))
        print(log_text(args.tenant, entries), end="")
        return 0
    addr = args.vault_addr or os.environ.get("VAULT_ADDR")
    if not addr or not os.environ.get("VAULT_TOKEN"):
        raise ValueError("no OpenBao to check signatures with: pass --vault-addr or set VAULT_ADDR, and VAULT_TOKEN")
    signer = audit_store.Signer(addr, os.environ["VAULT_TOKEN"])
    entries, heads = asyncio.run(store.read())
    code, text = verify_text(entries, heads, signer.anchor(), signer.public_keys())
    print(text, end="")
    return code
