"""Archive, restore and retention (issue 13) against the real PostgreSQL, Redis and OpenBao.

The operator writes archives to conftest.ARCHIVE_DIR (TENANCY_ARCHIVE_DIR); the tests read the store
directly to find, tamper with and decrypt archives, as an administrator with the volume would.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import secrets
import subprocess
import time

import hvac.exceptions
import pytest
from tenancy_operator.backends import archive_crypto

from . import kube
from .admin import pg_admin, pg_databases, redis_admin, vault_admin
from .conftest import ARCHIVE_DIR
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .retained import drop_kept_key
from .tenant_clients import credentials, pg, redis_client

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
TABLES = ("customers", "orders", "events")
# Long enough that random ciphertext cannot contain it by chance (a two-byte "p1" did: about 1 in 650 for a ~100-byte file).
KV_MARKER = "archived-kv-password-7f3c9a1e5b2d"


def plugin(*args: str) -> str:
    """This checkout's `kubectl tenant` (PATH may hold another checkout's)."""
    result = subprocess.run([str(kube.REPO / ".venv" / "bin" / "kubectl-tenant"), *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _policy(name: str, reclaim: str, retention: str) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
                       "spec": {"reclaim": reclaim, "retention": retention}})


def _archives_of(tenant: str) -> list[str]:
    if not ARCHIVE_DIR.is_dir():
        return []
    return sorted(p.name for p in ARCHIVE_DIR.iterdir() if (p / "manifest.json").is_file()
                  and json.loads((p / "manifest.json").read_text())["tenant"] == tenant)


def _manifest(archive_id: str) -> dict:
    return json.loads((ARCHIVE_DIR / archive_id / "manifest.json").read_text())


def _delete_and_wait(name: str, timeout: float = 90) -> None:
    kubectl("delete", "tenant", name, "--wait=false")
    eventually(lambda: get("tenant", name) is None, timeout, 1, f"tenant {name} deleted")


def _fresh(name: str) -> None:
    """A name an earlier run may have left (tenant deleting, data retained): start from nothing."""
    if get("tenant", name) is not None:
        _delete_and_wait(name)
    drop_kept_key(name)  # a key kept for an earlier run's archives would hold the name (NameHeldByArchives)


def _pg_fingerprint(creds: dict[str, str]) -> dict[str, tuple[int, str]]:
    out = {}
    for table in TABLES:
        row = pg(creds, f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) AS h "
                        f"FROM {table} t")[0]
        out[table] = (row["n"], row["h"])
    return out


def _fill_pg(creds: dict[str, str], scale: int) -> None:
    pg(creds, "CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text)")
    pg(creds, "CREATE INDEX customers_email ON customers (email)")
    pg(creds, "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers, amount numeric)")
    pg(creds, "CREATE TABLE events (id bigserial PRIMARY KEY, payload jsonb, at timestamptz)")
    pg(creds, "CREATE SEQUENCE invoice_no START 1000")
    pg(creds, f"INSERT INTO customers (name, email) SELECT 'c' || i, 'c' || i || '@x.test' FROM generate_series(1, {scale * 4}) i")
    pg(creds, f"INSERT INTO orders (customer_id, amount) SELECT 1 + i % {scale * 4}, i * 1.5 FROM generate_series(1, {scale * 4}) i")
    pg(creds, f"INSERT INTO events (payload, at) SELECT jsonb_build_object('n', i), timestamptz '2026-01-01' + i * interval '1 s' "
              f"FROM generate_series(1, {scale * 2}) i")
    for _ in range(3):
        pg(creds, "SELECT nextval('invoice_no')")


def _fill_redis(creds: dict[str, str], per_type: int) -> None:
    prefix = creds["REDIS_KEY_PREFIX"]
    r = redis_client(creds)
    pipe = r.pipeline(transaction=False)
    for i in range(per_type):
        ttl = 3600 + i if i % 2 == 0 else None
        pipe.set(f"{prefix}s:{i}", f"v{i}", ex=ttl)
        pipe.hset(f"{prefix}h:{i}", mapping={"a": str(i), "b": "x" * (i % 7)})
        pipe.rpush(f"{prefix}l:{i}", *[str(j) for j in range(i % 5 + 1)])
        pipe.zadd(f"{prefix}z:{i}", {f"m{j}": j * 1.5 for j in range(i % 4 + 1)})
        if ttl:
            for kind in "hlz":
                pipe.expire(f"{prefix}{kind}:{i}", ttl)
    pipe.execute()


def _redis_snapshot(prefix: str) -> dict[str, tuple[str, object, int]]:
    """key (without prefix) -> (type, value, pttl) read by the admin."""
    r = redis_admin()
    out = {}
    for key in r.scan_iter(match=prefix + "*", count=1000):
        kind = r.type(key)
        value = {"string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
                 "zset": lambda k: r.zrange(k, 0, -1, withscores=True)}[kind](key)
        out[key[len(prefix):]] = (kind, value, r.pttl(key))
    return out


def _kv(tenant: str) -> dict[str, dict]:
    client = vault_admin()

    def walk(path: str) -> list[str]:
        try:
            keys = client.list(f"tenants/metadata/{path}")["data"]["keys"]
        except (hvac.exceptions.InvalidPath, TypeError):
            return []
        return [p for k in keys for p in (walk(f"{path}/{k.rstrip('/')}") if k.endswith("/") else [f"{path}/{k}"])]

    return {p.split("/", 1)[1]: client.secrets.kv.v2.read_secret_version(path=p, mount_point="tenants",
                                                                         raise_on_deleted_version=True)["data"]["data"]
            for p in walk(f"tenant-{tenant}")}


def test_archive_round_trip(backends, operator, cleanup_tenants):
    src, dst = "arc-src", "arc-dst"
    for name in (src, dst):
        _fresh(name)
    cleanup_tenants += [dst, src]
    kube.apply(_policy("arc-keep", "Archive", "24h"))
    kube.apply(tenant_yaml(src, lifecyclePolicyRef="arc-keep", **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=90s", timeout=100)
    creds = credentials(src)
    _fill_pg(creds, 1000)  # 10,000 rows over 3 tables
    _fill_redis(creds, 250)  # 1,000 keys of four types, half with TTLs
    vault_admin().secrets.kv.v2.create_or_update_secret(path=f"tenant-{src}/db",
                                                        secret={"password": KV_MARKER, "n": 1},
                                                        mount_point="tenants")
    vault_admin().secrets.kv.v2.create_or_update_secret(path=f"tenant-{src}/nested/api", secret={"token": "t2"},
                                                        mount_point="tenants")
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "app-settings", "namespace": f"tenant-{src}", "labels": {"app": "api"}},
        "data": {"mode": "eu", "limits.yaml": "rps: 50\n"}, "binaryData": {"logo.bin": "AAEC"}}))
    tables, keys, secrets = _pg_fingerprint(creds), _redis_snapshot(creds["REDIS_KEY_PREFIX"]), _kv(src)
    assert tables["customers"][0] == 4000 and len(keys) == 1000 and len(secrets) == 2

    started = time.monotonic()
    assert "spec.state=Archived" in plugin("archive", src)
    eventually(lambda: (get("tenant", src)["status"].get("archive") or {}).get("state") == "Released", 120, 1,
               "archive exported and live data released")
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=30s", timeout=40)
    archive_seconds = time.monotonic() - started
    status = get("tenant", src)["status"]
    assert status["phase"] == "Archived"
    record = status["archive"]
    archive_id = record["id"]
    assert record["location"].endswith(archive_id) and condition(get("tenant", src), "ArchiveReady")["status"] == "True"
    assert record["bytesDone"] == record["bytesTotal"] > 0  # progress, complete
    assert f"t_{src.replace('-', '_')}" not in pg_databases("t_arc")  # live data released
    assert not list(redis_admin().scan_iter(match=creds["REDIS_KEY_PREFIX"] + "*"))
    assert _kv(src) == {}

    listed = next(line.split() for line in plugin("archives", "--dir", str(ARCHIVE_DIR)).splitlines()
                  if line.startswith(archive_id))
    assert listed[1] == src and listed[-1] == "kubernetes,postgres,redis,vault" and "in 23h" in " ".join(listed), listed
    manifest = _manifest(archive_id)
    assert manifest["tenant"] == src and manifest["spec"]["state"] == "Archived"
    assert set(manifest["files"]) == {"postgres.dump.enc", "redis.jsonl.enc", "kv.json.enc", "configmaps.json.enc"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((ARCHIVE_DIR / archive_id / name).read_bytes()).hexdigest() == entry["sha256"]
    # Not readable without the tenant's transit key: the right key unwraps the data key and it decrypts
    # the KV file; another tenant's key refuses the wrapped data key.
    wrapped = manifest["encryption"]["wrappedKey"]
    own_key = manifest["encryption"]["wrappingKey"]["name"]
    assert own_key == f"tenant-{src}", own_key
    admin = vault_admin()
    key = base64.b64decode(admin.secrets.transit.decrypt_data(name=own_key, ciphertext=wrapped,
                                                              mount_point="transit")["data"]["plaintext"])
    kv_plain = archive_crypto.decrypt_bytes((ARCHIVE_DIR / archive_id / "kv.json.enc").read_bytes(), key,
                                            archive_id, "kv.json.enc")
    assert json.loads(kv_plain) == {"db": {"password": KV_MARKER, "n": 1}, "nested/api": {"token": "t2"}}
    assert KV_MARKER.encode() not in (ARCHIVE_DIR / archive_id / "kv.json.enc").read_bytes()
    admin.write("transit/keys/tenant-arc-other", type="aes256-gcm96")
    try:
        with pytest.raises(hvac.exceptions.InvalidRequest):
            admin.secrets.transit.decrypt_data(name="tenant-arc-other", ciphertext=wrapped, mount_point="transit")
    finally:
        admin.write("transit/keys/tenant-arc-other/config", deletion_allowed=True)
        admin.delete("transit/keys/tenant-arc-other")
    redis_lines = archive_crypto.decrypt_bytes((ARCHIVE_DIR / archive_id / "redis.jsonl.enc").read_bytes(), key,
                                               archive_id, "redis.jsonl.enc")
    archived_ttl = {base64.b64decode(item["k"]).decode(): item["ttl"]
                    for item in map(json.loads, redis_lines.splitlines())}
    configmaps = json.loads(archive_crypto.decrypt_bytes((ARCHIVE_DIR / archive_id / "configmaps.json.enc").read_bytes(),
                                                         key, archive_id, "configmaps.json.enc"))
    assert [c["name"] for c in configmaps] == ["app-settings"]  # not the operator's own, not kube-root-ca.crt

    # reclaim Archive on delete: the archive of the current data exists, so no second one is made.
    _delete_and_wait(src)
    assert _archives_of(src).count(archive_id) == 1 and len([a for a in _archives_of(src) if a >= archive_id]) == 1

    started = time.monotonic()
    # Into tenant A2, which does not exist yet: the plugin creates it with A's spec from the manifest.
    assert "created with the spec of archive" in plugin("restore", dst, "--from", archive_id, "--dir", str(ARCHIVE_DIR))
    created = get("tenant", dst)["spec"]
    assert created["lifecyclePolicyRef"] == "arc-keep" and created["state"] == "Active"
    assert all(created[s]["enabled"] for s in FULL), created
    eventually(lambda: ((get("tenant", dst) or {}).get("status", {}).get("restore") or {}).get("state") == "Done",
               120, 0.5, "restore done")
    restore_seconds = time.monotonic() - started
    restored = get("tenant", dst)["status"]["restore"]
    assert restored["bytesDone"] == restored["bytesTotal"] == 2 * sum(e["plainSize"] for e in manifest["files"].values())
    dst_prefix = f"t:{dst}:"
    restored_keys = _redis_snapshot(dst_prefix)
    since_restore_ms = (time.monotonic() - started) * 1000  # the restored keys' TTLs ran at most this long
    kubectl("wait", "--for=condition=Ready", f"tenant/{dst}", "--timeout=60s", timeout=70)
    creds2 = credentials(dst)
    assert _pg_fingerprint(creds2) == tables
    assert pg(creds2, "SELECT nextval('invoice_no') AS v")[0]["v"] == 1003  # the sequence continues
    assert pg(creds2, "INSERT INTO customers (name) VALUES ('new') RETURNING id")[0]["id"] == 4001
    assert {k: (t, v) for k, (t, v, _) in restored_keys.items()} == {k: (t, v) for k, (t, v, _) in keys.items()}
    for key_name, (_, _, pttl) in restored_keys.items():
        want = archived_ttl[key_name]
        if want == 0:
            assert pttl == -1, key_name
        else:
            # RESTORE sets the TTL left at archive time; it runs down from then on, never up.
            assert want - since_restore_ms - 2_000 <= pttl <= want, (key_name, pttl, want, since_restore_ms)
    assert _kv(dst) == secrets
    settings = get("configmap", "app-settings", namespace=f"tenant-{dst}")
    assert settings["data"] == {"mode": "eu", "limits.yaml": "rps: 50\n"} and settings["binaryData"] == {"logo.bin": "AAEC"}
    assert settings["metadata"]["labels"] == {"app": "api"}
    # The tenant's own clients work on the restored data.
    assert redis_client(creds2).get(f"{dst_prefix}s:1") == "v1"
    size = sum(e["size"] for e in manifest["files"].values())
    parts = ", ".join(f"{n} {e['size']}" for n, e in manifest["files"].items())
    print(f"\narchive {archive_id}: {size} bytes ({parts}); "
          f"archive {archive_seconds:.1f} s, restore {restore_seconds:.1f} s")


def test_archive_then_restore_in_place_leaves_no_stale_condition(backends, operator, cleanup_tenants):
    """Archived, then back to Active with restoreFrom on the same Tenant (`kubectl tenant restore NAME`):
    the data comes back, and ArchiveReady no longer says the live data is released (a trial found it
    did, as it kept ArchiveNeedsVault after a resume)."""
    name = "arc-inplace"
    _fresh(name)
    cleanup_tenants.append(name)
    spec = {"redis": {"enabled": True}, "vault": {"enabled": True}}
    kube.apply(tenant_yaml(name, **spec))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    creds = credentials(name)
    redis_client(creds).set(creds["REDIS_KEY_PREFIX"] + "kept", "v1")
    plugin("archive", name)
    eventually(lambda: (get("tenant", name)["status"].get("archive") or {}).get("state") == "Released", 120, 1,
               "archived and released")
    archive_id = get("tenant", name)["status"]["archive"]["id"]
    # status.archive is written mid-pass, the condition at its end
    part = eventually(lambda: (c := condition(get("tenant", name), "ArchiveReady")).get("reason") == "Archived" and c,
                      30, message="ArchiveReady Archived")
    assert "released" in part["message"], part
    plugin("restore", name, "--from", archive_id)
    eventually(lambda: (get("tenant", name)["status"].get("restore") or {}).get("state") == "Done", 120, 1, "restored")
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    again = credentials(name)
    assert redis_client(again).get(again["REDIS_KEY_PREFIX"] + "kept") == "v1"
    part = eventually(lambda: (c := condition(get("tenant", name), "ArchiveReady")).get("reason") == "NotArchived" and c,
                      30, message="ArchiveReady no longer about the released archive")
    assert part["status"] == "True" and archive_id in part["message"] and "released" not in part["message"], part


def test_tampered_archive_is_refused_naming_the_file(backends, operator, cleanup_tenants):
    src, dst, busy = "arc-tamp", "arc-tamp-to", "arc-busy"
    for name in (src, dst, busy):
        _fresh(name)
    cleanup_tenants += [dst, busy, src]
    kube.apply(_policy("arc-keep", "Archive", "24h"))
    kube.apply(tenant_yaml(src, lifecyclePolicyRef="arc-keep", **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=90s", timeout=100)
    creds = credentials(src)
    pg(creds, "CREATE TABLE kept (id int PRIMARY KEY, v text)")
    pg(creds, "INSERT INTO kept SELECT i, 'v' || i FROM generate_series(1, 10) i")
    redis_client(creds).set(creds["REDIS_KEY_PREFIX"] + "k", "v")
    before = set(_archives_of(src))
    _delete_and_wait(src)  # reclaim Archive: export, verify, then delete
    made = sorted(set(_archives_of(src)) - before)
    assert len(made) == 1, made
    archive_id = made[0]
    assert "t_arc_tamp" not in pg_databases("t_arc_tamp")

    target = ARCHIVE_DIR / archive_id / "redis.jsonl.enc"
    original = target.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x01
    target.write_bytes(bytes(changed))
    kube.apply(tenant_yaml(dst, restoreFrom={"archive": archive_id}, **FULL))
    eventually(lambda: condition(get("tenant", dst), "RestoreReady").get("reason") == "ArchiveTampered", 90, 1,
               "restore refused as tampered")
    obj = get("tenant", dst)
    assert "redis.jsonl.enc" in condition(obj, "RestoreReady")["message"]
    assert condition(obj, "Stalled")["status"] == "True"
    assert pg_admin("SELECT 1 FROM pg_database WHERE datname = 't_arc_tamp_to'")  # provisioned...
    creds2 = credentials(dst)
    assert pg(creds2, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")[0]["n"] == 0  # ...nothing written
    assert not list(redis_admin().scan_iter(match=f"t:{dst}:*"))
    assert _kv(dst) == {}

    target.write_bytes(original)  # the same archive, intact: the restore goes through
    eventually(lambda: (get("tenant", dst)["status"].get("restore") or {}).get("state") == "Done", 90, 1, "restored")
    assert pg(creds2, "SELECT count(*) AS n FROM kept")[0]["n"] == 10

    # A tenant that already holds data: refused, then replaced only with overwrite: true.
    kube.apply(tenant_yaml(busy, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{busy}", "--timeout=90s", timeout=100)
    creds3 = credentials(busy)
    pg(creds3, "CREATE TABLE mine (v text)")
    plugin("restore", busy, "--from", archive_id)
    eventually(lambda: condition(get("tenant", busy), "RestoreReady").get("reason") == "RestoreRefused", 60, 1,
               "restore into a tenant holding data refused")
    assert "overwrite" in condition(get("tenant", busy), "RestoreReady")["message"]
    assert pg(creds3, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'kept'")[0]["n"] == 0
    plugin("restore", busy, "--from", archive_id, "--overwrite")
    eventually(lambda: (get("tenant", busy)["status"].get("restore") or {}).get("state") == "Done", 60, 1, "restored")
    assert pg(creds3, "SELECT count(*) AS n FROM kept")[0]["n"] == 10
    _refused_for_data_outside_tables(archive_id, cleanup_tenants)


def _refused_for_data_outside_tables(archive_id: str, cleanup_tenants: list[str]) -> None:
    """Data the target holds outside tables counts too: a large object alone, an extra schema alone."""
    name = "arc-lob"
    _fresh(name)
    cleanup_tenants.insert(0, name)
    kube.apply(tenant_yaml(name, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    creds = credentials(name)
    oid = pg(creds, "SELECT lo_from_bytea(0, 'scan-0001') AS oid")[0]["oid"]

    def refused() -> bool:
        obj = get("tenant", name)
        part = condition(obj, "RestoreReady")
        return part.get("reason") == "RestoreRefused" and part.get("observedGeneration") == obj["metadata"]["generation"]

    plugin("restore", name, "--from", archive_id)
    eventually(refused, 60, 1, "restore into a tenant holding only a large object refused")
    assert pg(creds, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'kept'")[0]["n"] == 0
    assert bytes(pg(creds, f"SELECT lo_get({int(oid)}) AS b")[0]["b"]) == b"scan-0001"  # untouched
    pg(creds, f"SELECT lo_unlink({int(oid)})")
    pg(creds, "CREATE SCHEMA billing")  # a schema holding only a type: no table, view or function
    pg(creds, "CREATE TYPE billing.state AS ENUM ('open', 'paid')")
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"restoreFrom":null}}')
    plugin("restore", name, "--from", archive_id)
    eventually(refused, 60, 1, "restore into a tenant holding only a schema with a type refused")
    assert pg(creds, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'kept'")[0]["n"] == 0


def test_retention_purges_on_time(backends, operator, cleanup_tenants):
    name = "arc-short"
    _fresh(name)
    cleanup_tenants.append(name)
    kube.apply(_policy("arc-one-minute", "Retain", "1m"))
    kube.apply(tenant_yaml(name, lifecyclePolicyRef="arc-one-minute", state="Archived",
                           postgres={"enabled": True}, vault={"enabled": True}))
    eventually(lambda: ((get("tenant", name) or {}).get("status", {}).get("archive") or {}).get("state") == "Released",
               120, 1, "archived")
    archive_id = get("tenant", name)["status"]["archive"]["id"]
    assert (ARCHIVE_DIR / archive_id / "manifest.json").is_file()
    manifest = json.loads((ARCHIVE_DIR / archive_id / "manifest.json").read_text())
    created = calendar.timegm(time.strptime(manifest["createdAt"], "%Y-%m-%dT%H:%M:%SZ"))  # whole seconds
    seen = [time.time()]

    def gone() -> bool:
        if (ARCHIVE_DIR / archive_id).exists():
            seen.append(time.time())
            return False
        return True

    eventually(gone, 150, 0.5, "archive purged after its 1-minute retention")
    purged_after = time.time() - created
    # Not early either: the folder was still there a minute after createdAt (less 1 s of its rounding).
    assert seen[-1] - created >= 59, f"purged {seen[-1] - created:.1f} s after createdAt, retention 1m"

    def purged_event() -> bool:
        events = kube.object_events("Tenant", name, reason="ArchivePurged")
        return any(archive_id in e["message"] and "retention 1m" in e["message"] for e in events)

    eventually(purged_event, 15, 1, "an ArchivePurged Event on the Tenant naming the archive and its retention")
    print(f"\narchive {archive_id} purged {purged_after:.0f} s after it was made (retention 1m, pass every 5 s)")


def test_purge_never_deletes_a_transit_key_another_tenant_needs(backends, operator, cleanup_tenants):
    """The purge reads manifests it cannot authenticate (it holds no data key): one naming a live
    tenant's transit key as its wrapping key, for a tenant that no longer exists, must not get that
    key deleted (every secret the live tenant sealed with it would be lost)."""
    victim = f"arc-victim-{secrets.token_hex(3)}"
    cleanup_tenants.append(victim)
    kube.apply(tenant_yaml(victim, vault={"enabled": True}))
    eventually(lambda: condition(get("tenant", victim), "Ready").get("status") == "True", 90, 1, "victim Ready")
    admin = vault_admin()
    assert admin.read(f"transit/keys/tenant-{victim}") is not None
    forged = f"ghost-{secrets.token_hex(3)}-20000101-000000-abcdef"
    folder = ARCHIVE_DIR / forged
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "formatVersion": 1, "id": forged, "tenant": forged.rsplit("-", 3)[0], "createdAt": "2000-01-01T00:00:00Z",
        "retention": "1m", "lifecyclePolicy": None, "files": {},
        "encryption": {"wrappedKey": "vault:v1:AAAA", "wrappingKey": {"backend": backends["vault"], "mount": "transit",
                                                                      "name": f"tenant-{victim}"}}}))
    eventually(lambda: not folder.exists(), 60, 1, "the forged, expired archive purged")
    assert admin.read(f"transit/keys/tenant-{victim}") is not None, "the live tenant's transit key was deleted"
