"""Where the audit chain lives: a PostgreSQL database, and an OpenBao transit key that signs its heads.

PostgreSQL (`Store`): the database (`tenancy_audit` by default) on the configured Backend, made by
the operator with its admin login (PUBLIC's CONNECT and TEMPORARY revoked: `database_setup`), holds two tables:

    audit_entries(seq bigint primary key, at, tenant, action, target, actor, details_digest, prev_hash, hash, mac)
    audit_heads(seq bigint primary key, hash, signature, signed_at)

OpenBao (`Signer`): transit mount `tenancy-audit`, key `chain` (ed25519, not exportable), which
only the operator's token may use to sign heads and to HMAC entries (`mac`, one `hmac` call per
appended batch; `bad_macs` checks them with `verify`); a KV v2 mount `tenancy-audit-kv` whose `head` holds
the newest signed head (the anchor): someone who can write the database cannot move it back. The
public key versions are readable for verification (`transit/keys/chain`), the private key never.
The anchor's record also keeps a `cut` (audit.Cut) once the operator finds the database's head moved
back below a head it knew: a restart forgets nothing.

Appends take `LOCK TABLE audit_entries IN EXCLUSIVE MODE` in their transaction, so two replicas
never extend the same head. Errors: asyncpg / OSError / hvac / requests exceptions pass through;
the recorder (handlers/audit_recorder.py) decides what they mean.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import hvac
from hvac import exceptions as hvac_errors

from ..backends import postgres_sql
from . import audit

__all__ = ["SCHEMA", "Store", "Signer", "PgParams", "TRANSIT_MOUNT", "KEY", "KV_MOUNT", "ANCHOR", "database_setup"]

TRANSIT_MOUNT, KEY, KV_MOUNT, ANCHOR = "tenancy-audit", "chain", "tenancy-audit-kv", "head"
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
  seq bigint PRIMARY KEY, at text NOT NULL, tenant text NOT NULL, action text NOT NULL, target text NOT NULL,
  actor text NOT NULL, details_digest text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,
  mac text NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS audit_entries_tenant ON audit_entries (tenant, seq);
CREATE TABLE IF NOT EXISTS audit_heads (
  seq bigint PRIMARY KEY, hash text NOT NULL, signature text NOT NULL, signed_at text NOT NULL);
"""
DATABASE_STATE = ("SELECT has_database_privilege('public', oid, 'CONNECT') OR "
                  "has_database_privilege('public', oid, 'TEMPORARY') AS public_may_enter FROM pg_database WHERE datname = $1")
"""Does the trail's database exist, and may PUBLIC (every login, tenants' too) still enter it?"""
BATCH = 100
"""Entries per OpenBao batch call (its JSON limits refuse a few hundred)."""
_COLUMNS = "seq, at, tenant, action, target, actor, details_digest, prev_hash, hash, mac"
_PLACES = ",".join(f"${i}" for i in range(1, len(_COLUMNS.split(", ")) + 1))


@dataclass(frozen=True)
class PgParams:
    host: str
    port: int
    user: str
    password: str
    database: str
    tls: bool = False

    def connect(self, database: str | None = None):
        return asyncpg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database or self.database, timeout=5, command_timeout=30,
                               ssl="require" if self.tls else None)


def database_setup(name: str, exists: bool, public_may_enter: bool) -> list[str]:
    """The statements that make the trail's database and keep every other login out of it.

    PostgreSQL grants CONNECT and TEMPORARY on a new database to PUBLIC, so every tenant login could
    enter it: both are revoked right after CREATE DATABASE, and on an existing database (made before
    this, or granted back) only while PUBLIC still holds one. Once so, none: no write in steady state.
    The admin login that makes it owns it, so it keeps its own access; an auditor's login needs
    `GRANT CONNECT` (docs/audit.md)."""
    revoke = postgres_sql.revoke_public_connect(name)
    if not exists:
        return [f"CREATE DATABASE {postgres_sql.ident(name)}", revoke]
    return [revoke] if public_may_enter else []


def _entry(row: Any) -> audit.Entry:
    return audit.Entry(**{k: row[k] for k in _COLUMNS.split(", ")})


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    def __init__(self, params: PgParams):
        self.params = params
        self._ready = False

    async def _prepare(self) -> None:
        """Make the database (a read first: once made, no write) and the tables."""
        if self._ready:
            return
        admin = await self.params.connect("postgres")
        try:
            row = await admin.fetchrow(DATABASE_STATE, self.params.database)
            for statement in database_setup(self.params.database, row is not None, bool(row and row["public_may_enter"])):
                await admin.execute(statement)
        finally:
            await admin.close()
        conn = await self.params.connect()
        try:
            if await conn.fetchval("SELECT to_regclass('audit_heads') IS NULL"):
                await conn.execute(SCHEMA)
            elif not await conn.fetchval("SELECT 1 FROM information_schema.columns WHERE table_name = "
                                         "'audit_entries' AND column_name = 'mac'"):  # a trail made before MACs
                await conn.execute("ALTER TABLE audit_entries ADD COLUMN IF NOT EXISTS mac text NOT NULL DEFAULT ''")
        finally:
            await conn.close()
        self._ready = True

    async def append(self, changes: list[dict[str, Any]], actor: str,
                     mac: Callable[[list[audit.Entry]], Awaitable[list[str]]]) -> tuple[tuple[int, str], list[audit.Entry]]:
        """Seal and insert `changes` (tenant, action, target, details) after the current head, atomically,
        each with its MAC (`mac(sealed entries)`: `Signer.mac`, inside the transaction: no MAC, no entry).

        Returns ((seq, hash) of the head they extend, the sealed entries)."""
        await self._prepare()
        conn = await self.params.connect()
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE audit_entries IN EXCLUSIVE MODE")
                last = await conn.fetchrow("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
                seq, prev = (last["seq"], last["hash"]) if last else (0, audit.GENESIS)
                extended = (seq, prev)
                sealed = []
                for c in changes:
                    seq += 1
                    e = audit.seal(seq, c.get("at") or now(), c["tenant"], c["action"], c["target"], actor,
                                   c["details"], prev)
                    sealed.append(e)
                    prev = e.hash
                sealed = [replace(e, mac=m) for e, m in zip(sealed, await mac(sealed), strict=True)]
                await conn.executemany(f"INSERT INTO audit_entries ({_COLUMNS}) VALUES ({_PLACES})",
                                       [tuple(getattr(e, k) for k in _COLUMNS.split(", ")) for e in sealed])
            return extended, sealed
        finally:
            await conn.close()

    async def state(self) -> tuple[int, str]:
        """(last seq, its hash). The last signed seq is the anchor's (`Signer.anchor`), never `audit_heads`,
        which whoever can write the database controls."""
        await self._prepare()
        conn = await self.params.connect()
        try:
            last = await conn.fetchrow("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
        finally:
            await conn.close()
        return (last["seq"], last["hash"]) if last else (0, audit.GENESIS)

    async def add_head(self, head: audit.Head) -> None:
        conn = await self.params.connect()
        try:
            await conn.execute("INSERT INTO audit_heads (seq, hash, signature, signed_at) VALUES ($1,$2,$3,$4) "
                               "ON CONFLICT (seq) DO NOTHING", head.seq, head.hash, head.signature, now())
        finally:
            await conn.close()

    async def segment(self, first: int, last: int) -> list[audit.Entry]:
        """The entries with first <= seq <= last (the signer's check, audit.extends), in seq order."""
        conn = await self.params.connect()
        try:
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM audit_entries WHERE seq BETWEEN $1 AND $2 ORDER BY seq",
                                    first, last)
        finally:
            await conn.close()
        return [_entry(r) for r in rows]

    async def read(self, tenant: str | None = None) -> tuple[list[audit.Entry], list[audit.Head]]:
        """Every entry (or one tenant's) and every signed head."""
        conn = await self.params.connect()
        try:
            if tenant is None:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM audit_entries ORDER BY seq")
            else:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM audit_entries WHERE tenant = $1 ORDER BY seq", tenant)
            heads = await conn.fetch("SELECT seq, hash, signature FROM audit_heads ORDER BY seq")
        finally:
            await conn.close()
        return [_entry(r) for r in rows], [audit.Head(h["seq"], h["hash"], h["signature"]) for h in heads]


class Signer:
    """The transit key and the anchor. Blocking hvac calls run in a thread."""

    def __init__(self, url: str, token: str):
        self.url, self._token = url, token
        self._prepared = False
        self._macs_from: int | None = None

    def _client(self) -> hvac.Client:
        client = hvac.Client(url=self.url, token=self._token, timeout=10)
        client.session.trust_env = False
        return client

    def _prepare(self, client: hvac.Client) -> None:
        if self._prepared:
            return
        mounts = client.sys.list_mounted_secrets_engines()
        mounts = mounts.get("data", mounts)
        if f"{TRANSIT_MOUNT}/" not in mounts:
            client.sys.enable_secrets_engine("transit", path=TRANSIT_MOUNT)
        if f"{KV_MOUNT}/" not in mounts:
            client.sys.enable_secrets_engine("kv", path=KV_MOUNT, options={"version": "2"})
        try:
            client.read(f"{TRANSIT_MOUNT}/keys/{KEY}")["data"]
        except (hvac_errors.InvalidPath, TypeError):
            client.write_data(f"{TRANSIT_MOUNT}/keys/{KEY}", data={"type": "ed25519", "exportable": False})
        self._prepared = True

    def _sign(self, seq: int, hash_: str) -> audit.Head:
        client = self._client()
        self._prepare(client)
        message = base64.b64encode(audit.head_message(seq, hash_)).decode()
        signature = client.write_data(f"{TRANSIT_MOUNT}/sign/{KEY}", data={"input": message})["data"]["signature"]
        head = audit.Head(seq, hash_, signature)
        record = {"seq": seq, "hash": hash_, "signature": signature}
        first = self._macs_from if self._macs_from is not None else self._record().get("macs_from")
        if first is not None:  # carried forward: once recorded, it never moves
            record["macs_from"] = int(first)
        client.write_data(f"{KV_MOUNT}/data/{ANCHOR}", data={"data": record})
        return head

    async def sign(self, seq: int, hash_: str) -> audit.Head:
        """Sign the head and make it the anchor."""
        return await asyncio.to_thread(self._sign, seq, hash_)

    @staticmethod
    def _inputs(entries: list[audit.Entry]) -> list[dict[str, str]]:
        return [{"input": base64.b64encode(audit.mac_message(e)).decode()} for e in entries]

    def _mac(self, entries: list[audit.Entry]) -> list[str]:
        client = self._client()
        self._prepare(client)
        results = []
        for i in range(0, len(entries), BATCH):  # OpenBao refuses a request body with too many strings
            reply = client.write_data(f"{TRANSIT_MOUNT}/hmac/{KEY}",
                                      data={"batch_input": self._inputs(entries[i:i + BATCH])})
            results += reply["data"]["batch_results"]
        if len(results) != len(entries) or any("error" in r or not r.get("hmac") for r in results):
            raise RuntimeError(f"OpenBao made no HMAC for some of {len(entries)} audit entries")
        return [r["hmac"] for r in results]

    async def mac(self, entries: list[audit.Entry]) -> list[str]:
        """The entries' MACs, one OpenBao call (`transit/hmac`, batched)."""
        return await asyncio.to_thread(self._mac, entries)

    def bad_macs(self, entries: list[audit.Entry]) -> set[int]:
        """The seqs of `entries` whose MAC does not verify with the key (one `transit/verify` call)."""
        if not entries:
            return set()
        batch = [{**i, "hmac": e.mac or "vault:v1:"} for i, e in zip(self._inputs(entries), entries, strict=True)]
        client, results = self._client(), []
        for i in range(0, len(batch), BATCH):  # OpenBao refuses a request body with too many strings
            reply = client.write_data(f"{TRANSIT_MOUNT}/verify/{KEY}", data={"batch_input": batch[i:i + BATCH]})
            results += reply["data"]["batch_results"]
        return {e.seq for e, r in zip(entries, results, strict=True) if r.get("valid") is not True}

    def public_keys(self) -> dict[int, bytes]:
        data = (self._client().read(f"{TRANSIT_MOUNT}/keys/{KEY}") or {}).get("data") or {}  # None: no key made yet
        return {int(v): base64.b64decode(k["public_key"]) for v, k in (data.get("keys") or {}).items()}

    def _record(self) -> dict[str, Any]:
        try:
            reply = self._client().read(f"{KV_MOUNT}/data/{ANCHOR}")
        except hvac_errors.InvalidPath:
            return {}
        return ((reply or {}).get("data") or {}).get("data") or {}

    def anchor(self) -> audit.Head | None:
        data = self._record()
        return audit.Head(int(data["seq"]), data["hash"], data["signature"]) if "seq" in data else None

    def cut(self) -> audit.Cut | None:
        """The cut kept with the anchor (`record_cut`); None when there is none."""
        value = self._record().get("cut")
        if not isinstance(value, dict) or "seq" not in value:
            return None
        return audit.Cut(int(value["seq"]), str(value["hash"]), int(value["found_seq"]), str(value.get("found_hash", "")),
                         int(value.get("signed", 0)))

    def _record_cut(self, cut: audit.Cut) -> None:
        client = self._client()
        try:
            reply = client.read(f"{KV_MOUNT}/data/{ANCHOR}") or {}
        except hvac_errors.InvalidPath:
            reply = {}
        data = reply.get("data") or {}
        record, version = data.get("data") or {}, int((data.get("metadata") or {}).get("version") or 0)
        # Check-and-set: a replica signing meanwhile must not have its newer anchor overwritten with this older one.
        client.write_data(f"{KV_MOUNT}/data/{ANCHOR}", data={"options": {"cas": version},
                                                             "data": {**record, "cut": cut.record()}})

    async def record_cut(self, cut: audit.Cut) -> None:
        """Keep `cut` with the anchor, so that a restart or another replica refuses to sign over it too.
        Written once, when the operator finds it; the next signature (once the database holds the cut's
        head again) writes the anchor without it, and a person deleting the anchor removes it."""
        await asyncio.to_thread(self._record_cut, cut)

    def macs_from(self) -> int | None:
        """The first entry that must carry a MAC (kept with the anchor); None: not recorded yet."""
        value = self._record().get("macs_from")
        return int(value) if value is not None else None

    def _set_macs_from(self, first: int) -> int:
        record = self._record()
        if record.get("macs_from") is None:
            self._macs_from = first
            self._client().write_data(f"{KV_MOUNT}/data/{ANCHOR}", data={"data": {**record, "macs_from": first}})
            return first
        self._macs_from = int(record["macs_from"])
        return self._macs_from

    async def set_macs_from(self, first: int) -> int:
        """Record, once per trail, the first entry that must carry a MAC: `first` (entries before it were
        written before this operator version, or before a person deleted the anchor, and are trusted
        as the old signer trusted them). Returns the recorded value (an earlier one wins)."""
        return await asyncio.to_thread(self._set_macs_from, first)
