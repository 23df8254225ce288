"""The audit trail on the real PostgreSQL and OpenBao: what a tenant's changes write, and that tampering shows.

A tenant with PostgreSQL, Redis and OpenBao is created; its changes are in `kubectl tenant audit log`,
signed within seconds (e2e signs 3 s after changes), and `kubectl tenant audit verify` passes. Then
each kind of tampering runs on a fresh copy of the live trail (database `audit_tamper_<hex>` on the
same server; the live trail stays whole for later runs), checked by the plugin against the real
signing key and anchor in OpenBao: it must fail naming the first bad entry.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenancy_operator.observability import audit, audit_store

from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg

LIVE = "tenancy_audit"
SERVICES = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}


def _pg(database: str, sql: str, *args, many: bool = False, script: bool = False):
    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), user=os.environ["PGUSER"],
                                     password=os.environ["PGPASSWORD"], database=database, timeout=10)
        try:
            if script:
                return await conn.execute(sql)
            return await (conn.executemany(sql, *args) if many else conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _dsn(database: str) -> str:
    e = os.environ
    return f"postgresql://{quote(e['PGUSER'])}:{quote(e['PGPASSWORD'], safe='')}@{e['PGHOST']}:{e['PGPORT']}/{database}"


def plugin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tenancy_operator.cli.main", "audit", *args], capture_output=True,
                          text=True, timeout=60)


def _anchor() -> audit.Head | None:
    return audit_store.Signer(os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"]).anchor()


def _last_seq() -> int:
    return _pg(LIVE, "SELECT coalesce(max(seq), 0) AS n FROM audit_entries")[0]["n"]


@pytest.fixture(scope="module")
def tenant(backends, operator):
    name = f"audit-{secrets.token_hex(3)}"
    kubectl("apply", "-f", "-", input=tenant_yaml(name, **SERVICES))
    try:
        kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=120s", timeout=140)
        # Every change so far signed: the anchor reaches the last entry (the e2e operator signs after 3 s).
        eventually(lambda: (_anchor() or audit.Head(0, "", "")).seq >= _last_seq() > 0, 30, 1, "the trail's head signed")
        yield name
    finally:
        kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)


def _copy(tenant: str) -> tuple[str, audit.Head, list[int]]:
    """A copy of the live trail, taken while the anchor stood still: (database, anchor, the tenant's seqs)."""
    db = f"audit_tamper_{secrets.token_hex(3)}"
    _pg("postgres", f'CREATE DATABASE "{db}"')
    _pg(db, audit_store.SCHEMA, script=True)
    for _ in range(10):
        before = _anchor()
        entries = _pg(LIVE, "SELECT * FROM audit_entries ORDER BY seq")
        heads = _pg(LIVE, "SELECT * FROM audit_heads ORDER BY seq")
        if before == _anchor() and entries and entries[-1]["seq"] >= before.seq:
            break
        time.sleep(1)
    _pg(db, "INSERT INTO audit_entries VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)", [tuple(r.values()) for r in entries], many=True)
    _pg(db, "INSERT INTO audit_heads VALUES ($1,$2,$3,$4)", [tuple(r.values()) for r in heads], many=True)
    return db, before, [r["seq"] for r in entries if r["tenant"] == tenant]


@pytest.fixture
def copy(tenant):
    db, anchor, seqs = _copy(tenant)
    assert seqs, f"no entries for {tenant}"
    yield db, anchor, seqs
    _pg("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _fails_at(db: str, seq: int, words: str) -> None:
    out = plugin("verify", "--dsn", _dsn(db))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"first bad entry {seq}:" in out.stdout and words in out.stdout, out.stdout


def test_changes_are_logged_signed_and_verify(tenant, operator):
    log = plugin("log", tenant)
    assert log.returncode == 0, log.stderr
    rows = [line.split() for line in log.stdout.splitlines()[1:-1]]
    assert {r[2] for r in rows} >= {"create"}, log.stdout
    for backend in ("pg-main", "redis-main", "vault-main"):
        assert any(f"{backend}:" in line for line in log.stdout.splitlines()), f"nothing on {backend}:\n{log.stdout}"
    assert all(r[-3] == "system:serviceaccount:tenancy-system:tenancy-operator" for r in rows), log.stdout
    # `log` checks the whole trail: every row is chained and, once the fixture saw the head signed, signed.
    assert {r[-1] for r in rows} == {"signed"} and "audit trail verified" in log.stdout.splitlines()[-1], log.stdout
    # No secret in the trail: the tenant's passwords are nowhere in its rows.
    dump = json.dumps([dict(r) for r in _pg(LIVE, "SELECT * FROM audit_entries WHERE tenant = $1", tenant)])
    for key, value in credentials(tenant).items():
        if "PASSWORD" in key and value:
            assert value not in dump and base64.b64encode(value.encode()).decode() not in dump, key
    # No change, no entry: e2e/test_tenant_steady_state.py counts zero writes with the trail on.
    assert condition(get("Tenant", tenant), "Ready")["status"] == "True"
    out = plugin("verify")
    assert out.returncode == 0 and "audit trail intact" in out.stdout, out.stdout + out.stderr
    # The signer checked the live chain against the anchor before signing it: the alert's gauge says so.
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).read().decode()
    assert "\ntenancy_audit_chain_verified 1.0\n" in metrics, [m for m in metrics.splitlines() if "audit" in m]


def test_tenants_cannot_enter_the_audit_database(tenant):
    """The trail's database is closed to PUBLIC (made so, or revoked at the operator's start): a tenant's
    own login is refused at the door."""
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        pg(credentials(tenant), "SELECT 1", LIVE)
    row = _pg("postgres", audit_store.DATABASE_STATE, LIVE)[0]
    assert row["public_may_enter"] is False, dict(row)


def test_untouched_copy_verifies(copy):
    db, _, _ = copy
    out = plugin("verify", "--dsn", _dsn(db))
    assert out.returncode == 0, out.stdout + out.stderr


def test_changed_entry_is_named(copy):
    db, _, seqs = copy
    _pg(db, "UPDATE audit_entries SET target = target || ' (edited)' WHERE seq = $1", seqs[0])
    _fails_at(db, seqs[0], "was changed")


def test_deleted_entry_is_named(copy):
    db, _, seqs = copy
    _pg(db, "DELETE FROM audit_entries WHERE seq = $1", seqs[1])
    _fails_at(db, seqs[1], "is missing")


def test_swapped_entries_are_named(copy):
    db, _, seqs = copy
    a, b = seqs[0], seqs[0] + 1
    for frm, to in ((a, -1), (b, a), (-1, b)):  # seq is the primary key: through a free number
        _pg(db, "UPDATE audit_entries SET seq = $2 WHERE seq = $1", frm, to)
    _fails_at(db, a, f"entry {a}")


def test_tail_cut_below_the_signed_head_is_named(copy):
    db, anchor, seqs = copy
    keep = seqs[0]
    assert keep < anchor.seq
    # The attacker removes the signed heads past the cut too: OpenBao's anchor still names the head.
    _pg(db, "DELETE FROM audit_entries WHERE seq > $1", keep)
    _pg(db, "DELETE FROM audit_heads WHERE seq > $1", keep)
    _fails_at(db, keep + 1, "were cut")


def test_replaced_head_signature_is_named(copy):
    db, anchor, _ = copy
    head = _pg(db, "SELECT seq, hash FROM audit_heads ORDER BY seq DESC LIMIT 1")[0]
    # The same head, signed by a key that is not the operator's.
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(audit.head_message(head["seq"], head["hash"]))).decode()
    _pg(db, "UPDATE audit_heads SET signature = $1 WHERE seq = $2", f"vault:v1:{forged}", head["seq"])
    _fails_at(db, head["seq"], "signature does not verify")


def _messages(name: str) -> str:
    return " ".join(c.get("message", "") for c in (get("Tenant", name) or {}).get("status", {}).get("conditions", []))


def _rename(frm: str, to: str) -> None:
    """ALTER DATABASE RENAME wants no sessions in it; the operator's come and go, so end them and retry."""
    for attempt in range(5):
        _pg("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", frm)
        try:
            _pg("postgres", f'ALTER DATABASE "{frm}" RENAME TO "{to}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 4:
                raise
            time.sleep(0.5)


def test_unwritable_trail_stops_changes_until_it_records_them(tenant):
    """The trail's database goes away mid-run: the change made is held, the next ones wait, then all land."""
    before = {r["seq"] for r in _pg(LIVE, "SELECT seq FROM audit_entries WHERE tenant = $1", tenant)}
    away = f"{LIVE}_away_{secrets.token_hex(2)}"
    _rename(LIVE, away)
    try:
        kubectl("annotate", "tenant", tenant, f"tenancy.dev/rotate={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
                "--overwrite")
        eventually(lambda: "audit trail unavailable" in _messages(tenant), 60, 1, "a part waiting for the audit trail")
        assert condition(get("Tenant", tenant), "Ready")["status"] == "False"
    finally:
        _rename(away, LIVE)
    eventually(lambda: condition(get("Tenant", tenant), "Ready").get("status") == "True", 90, 1, "Ready again")
    rows = _pg(LIVE, "SELECT seq, action FROM audit_entries WHERE tenant = $1 ORDER BY seq", tenant)
    assert "rotate" in {r["action"] for r in rows if r["seq"] not in before}, rows
    eventually(lambda: (_anchor() or audit.Head(0, "", "")).seq >= _last_seq(), 30, 1, "the new head signed")
    out = plugin("verify")
    assert out.returncode == 0, out.stdout + out.stderr
