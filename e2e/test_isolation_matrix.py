"""Tenant A provably cannot touch tenant B's data: every refusal comes from the server itself.

Acts only with A's credentials, read from A's Secret, exactly as A's application would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time

import asyncpg
import hvac.exceptions
import pymongo.errors
import pytest
import redis
from opensearchpy.exceptions import AuthorizationException
from tenancy_operator.backends import postgres_sql as sql

from . import kube
from .admin import pg_admin
from .kube import kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client, search_client, vault_login
from .tenant_mongo import ferret_pg, mongo
from .test_workflows import _create, _events, _probes, _wait

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True},
        "search": {"enabled": True}, "mongodb": {"enabled": True}}
MATRIX: list[tuple[str, str, str]] = []


def allowed(backend: str, what: str, fn) -> None:
    fn()
    MATRIX.append((backend, what, "allowed"))


def refused(backend: str, what: str, fn, *errors: type[BaseException]) -> None:
    with pytest.raises(errors) as info:
        fn()
    MATRIX.append((backend, what, f"refused: {type(info.value).__name__}: {str(info.value).splitlines()[0][:70]}"))


@pytest.fixture(scope="module")
def two_tenants(backends, search_backend, mongo_backend):
    kube.apply("\n---\n".join([tenant_yaml("iso-a", **FULL), tenant_yaml("iso-b", **FULL)]))
    kubectl("wait", "--for=condition=Ready", "tenant/iso-a", "tenant/iso-b", "--timeout=90s", timeout=100)
    b = credentials("iso-b")
    pg(b, "CREATE TABLE IF NOT EXISTS secrets_of_b (v text)")
    pg(b, "INSERT INTO secrets_of_b VALUES ('b-only')")
    redis_client(b).set("t:iso-b:secret", "b-only")
    vault_login(b, "tenant-iso-b").secrets.kv.v2.create_or_update_secret(
        mount_point="tenants", path="tenant-iso-b/db", secret={"v": "b-only"})
    search_client(b).index(index=b["SEARCH_INDEX_PREFIX"] + "docs", body={"v": "b-only"}, id="1", refresh=True)
    with mongo(b) as client:
        client[b["MONGODB_DATABASE"]].secrets.delete_many({})
        client[b["MONGODB_DATABASE"]].secrets.insert_one({"v": "b-only"})
    yield credentials("iso-a"), b
    kubectl("delete", "tenant", "iso-a", "iso-b", "--wait=false", check=False)


@contextlib.contextmanager
def _held(breach):
    """Run `breach` now and every 0.1 s until the block ends (the operator undoes it on its next pass)."""
    breach()
    stop = threading.Event()

    def again() -> None:
        while not stop.wait(0.1):
            try:
                breach()
            except Exception as e:  # the operator's repair racing ours ("tuple concurrently updated"): next tick
                print(f"breach not re-made this tick: {type(e).__name__}")

    worker = threading.Thread(target=again, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)


def _each_item_refused(items: list[dict], key: str | None) -> None:
    """Multi-item requests answer 200 with one result per item: every item must carry the server's 403."""
    results = [item[key] if key else item for item in items]
    statuses = [r.get("status") or (r.get("error") or {}).get("type") for r in results]
    if statuses and all(st in (403, "security_exception") for st in statuses):
        raise AuthorizationException(403, "security_exception", results[0].get("error"))
    raise AssertionError(f"an item was not refused: {results}")


def test_isolation_matrix(two_tenants):
    a, b = two_tenants
    # PostgreSQL
    allowed("postgres", "create and use a table in A's database",
            lambda: (pg(a, "CREATE TABLE IF NOT EXISTS mine (v text)"), pg(a, "INSERT INTO mine VALUES ('a')")))
    allowed("postgres", "read A's table", lambda: pg(a, "SELECT v FROM mine"))
    refused("postgres", "connect to B's database", lambda: pg(a, "SELECT 1", b["PGDATABASE"]),
            asyncpg.exceptions.InsufficientPrivilegeError)
    refused("postgres", "read B's table from A's database", lambda: pg(a, "SELECT * FROM secrets_of_b"),
            asyncpg.exceptions.UndefinedTableError)
    refused("postgres", "CREATE ROLE", lambda: pg(a, "CREATE ROLE intruder LOGIN"),
            asyncpg.exceptions.InsufficientPrivilegeError)
    refused("postgres", "CREATE DATABASE", lambda: pg(a, "CREATE DATABASE intruder"),
            asyncpg.exceptions.InsufficientPrivilegeError)
    refused("postgres", "log in as B's role with A's password",
            lambda: pg({**a, "PGUSER": b["PGUSER"]}, "SELECT 1"), asyncpg.exceptions.InvalidPasswordError)
    # The databases every server has (Backend spec.postgres.restrictSharedDatabases, on by default).
    for db in ("postgres", "template1"):
        refused("postgres", f"connect to {db}", lambda db=db: pg(a, "SELECT 1", db),
                asyncpg.exceptions.InsufficientPrivilegeError)
        refused("postgres", f"CREATE TEMP TABLE in {db}", lambda db=db: pg(a, "CREATE TEMP TABLE t (v int)", db),
                asyncpg.exceptions.InsufficientPrivilegeError)
        refused("postgres", f"lo_create (large object) in {db}", lambda db=db: pg(a, "SELECT lo_create(0)", db),
                asyncpg.exceptions.InsufficientPrivilegeError)
    # Not preventable without superuser changes to the catalogs (docs/how-it-works.md says so).
    allowed("postgres", "list database names (pg_database)", lambda: pg(a, "SELECT datname FROM pg_database"))

    # Redis
    r = redis_client(a)
    allowed("redis", "SET/GET under A's prefix", lambda: (r.set("t:iso-a:k", "1"), r.get("t:iso-a:k")))
    allowed("redis", "PUBLISH on A's channel", lambda: r.publish("t:iso-a:events", "hi"))
    for what, call in [
        ("GET B's key", lambda: r.get("t:iso-b:secret")),
        ("SET B's key", lambda: r.set("t:iso-b:secret", "x")),
        ("KEYS *", lambda: r.keys("*")),
        ("SCAN", lambda: r.scan(0)),
        ("RANDOMKEY", lambda: r.randomkey()),
        ("SELECT 1", lambda: r.execute_command("SELECT", "1")),
        ("FLUSHALL", lambda: r.flushall()),
        ("CONFIG GET", lambda: r.config_get("*")),
        ("ACL LIST", lambda: r.acl_list()),
        ("PUBLISH on B's channel", lambda: r.publish("t:iso-b:events", "x")),
    ]:
        refused("redis", what, call, redis.exceptions.NoPermissionError)

    def subscribe_b():
        p = r.pubsub()
        p.subscribe("t:iso-b:events")
        message = p.get_message(timeout=2)
        p.close()
        return message

    refused("redis", "SUBSCRIBE to B's channel", subscribe_b, redis.exceptions.NoPermissionError,
            redis.exceptions.ConnectionError)

    # OpenBao
    v = vault_login(a, "tenant-iso-a")
    allowed("vault", "write and read A's KV path", lambda: (
        v.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path="tenant-iso-a/db", secret={"v": "a"}),
        v.secrets.kv.v2.read_secret_version(mount_point="tenants", path="tenant-iso-a/db", raise_on_deleted_version=True)))
    allowed("vault", "encrypt/decrypt with A's transit key", lambda: v.secrets.transit.decrypt_data(
        a["VAULT_TRANSIT_KEY"], v.secrets.transit.encrypt_data(a["VAULT_TRANSIT_KEY"], "aGk=")["data"]["ciphertext"]))
    refused("vault", "read B's KV path", lambda: v.secrets.kv.v2.read_secret_version(
        mount_point="tenants", path="tenant-iso-b/db", raise_on_deleted_version=True), hvac.exceptions.Forbidden)
    refused("vault", "encrypt with B's transit key",
            lambda: v.secrets.transit.encrypt_data(b["VAULT_TRANSIT_KEY"], "aGk="), hvac.exceptions.Forbidden)
    refused("vault", "log in with B's role", lambda: vault_login(a, "tenant-iso-a", role=b["VAULT_ROLE"]),
            hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)

    # OpenSearch (security plugin): every refusal is the server's HTTP 403.
    s = search_client(a)
    mine, theirs = a["SEARCH_INDEX_PREFIX"] + "docs", b["SEARCH_INDEX_PREFIX"] + "docs"
    allowed("search", "create an index under A's prefix", lambda: s.indices.create(index=mine) if not s.indices.exists(index=mine) else None)
    allowed("search", "index, get, search, delete a document in A's index", lambda: (
        s.index(index=mine, body={"v": "a"}, id="1", refresh=True), s.get(index=mine, id="1"),
        s.search(index=a["SEARCH_INDEX_PREFIX"] + "*", body={"query": {"match_all": {}}}), s.delete(index=mine, id="2",
                                                                                                   ignore=404)))
    for what, call in [
        ("get B's document", lambda: s.get(index=theirs, id="1")),
        ("index into B's index", lambda: s.index(index=theirs, body={"v": "x"}, id="2")),
        ("delete B's index", lambda: s.indices.delete(index=theirs)),
        ("search B's index", lambda: s.search(index=theirs)),
        ("search all indices (*)", lambda: s.search(index="*")),
        ("search with no index (_search)", lambda: s.search()),
        ("create an index outside A's prefix", lambda: s.indices.create(index="intruder-" + a["SEARCH_USERNAME"][-1])),
        ("create an index under B's prefix", lambda: s.indices.create(index=b["SEARCH_INDEX_PREFIX"] + "new")),
        ("create t-iso-a-x_1 (tenant iso-a-x's prefix)", lambda: s.indices.create(index="t-iso-a-x_1")),
        # The plugin's default `own_index` mapping gave every user indices_all (aliases too) on an index
        # named like the user: A's index `tenant-iso-a_a`, aliased `t-iso-b_x`, showed up in B's searches.
        ("create an index named like A's user (own_index)", lambda: s.indices.create(index=a["SEARCH_USERNAME"])),
        ("list indices (_cat/indices)", lambda: s.cat.indices(format="json")),
        ("read the security plugin's users", lambda: s.transport.perform_request(
            "GET", "/_plugins/_security/api/internalusers")),
        ("alias A's index into B's space (t-iso-b_x)", lambda: s.indices.put_alias(index=mine, name=theirs + "_x")),
        ("put an index template", lambda: s.indices.put_index_template(
            name="intruder", body={"index_patterns": [b["SEARCH_INDEX_PREFIX"] + "*"]})),
        ("bulk into B's index (each item)", lambda: _each_item_refused(s.bulk(body=[
            {"index": {"_index": theirs}}, {"v": "x"}])["items"], "index")),
        ("mget B's document (each doc)", lambda: _each_item_refused(s.mget(body={"docs": [
            {"_index": theirs, "_id": "1"}]})["docs"], None)),
    ]:
        refused("search", what, call, AuthorizationException)
    # MongoDB (FerretDB v1: each user is a PostgreSQL role; PostgreSQL refuses, FerretDB passes it on)
    m = mongo(a)
    mine, theirs = m[a["MONGODB_DATABASE"]], m[b["MONGODB_DATABASE"]]
    allowed("mongodb", "insert and find in A's database",
            lambda: (mine.docs.insert_one({"v": "a"}), mine.docs.find_one({"v": "a"})))
    for what, call in [
        ("find in B's collection", lambda: theirs.secrets.find_one()),
        ("insert into B's collection", lambda: theirs.secrets.insert_one({"x": 1})),
        ("delete in B's collection", lambda: theirs.secrets.delete_many({})),
        ("create a collection in B's database", lambda: theirs.intruder.insert_one({"x": 1})),
        ("dropDatabase B", lambda: m.drop_database(b["MONGODB_DATABASE"])),
    ]:
        refused("mongodb", what, call, pymongo.errors.OperationFailure)
    refused("mongodb", "log in as B's user with A's password", lambda: mongo(
        {"MONGODB_URI": a["MONGODB_URI"].replace(a["MONGODB_USERNAME"], b["MONGODB_USERNAME"], 1)})[
        b["MONGODB_DATABASE"]].secrets.find_one(), pymongo.errors.OperationFailure)
    allowed("mongodb", "create a collection and an index, drop the collection (A's database)", lambda: (
        mine.made.create_index("v"), mine.drop_collection("made")))
    # A's MongoDB user is a PostgreSQL role, so A can also log in to PostgreSQL directly. Other tenants'
    # roles read A's FerretDB catalogue table whenever FerretDB loads its catalogue: code A put there (a
    # row-security policy calling A's function, or a view in the table's place) would run as them.
    as_pg = {**a, "PGHOST": os.environ["PGHOST"], "PGPORT": os.environ["PGPORT"],
             "PGUSER": a["MONGODB_USERNAME"], "PGPASSWORD": a["MONGODB_PASSWORD"]}
    catalogue = f'"{a["MONGODB_DATABASE"]}"._ferretdb_database_metadata'
    for what, statement in [
        ("row security on A's catalogue table (PostgreSQL)", f"ALTER TABLE {catalogue} ENABLE ROW LEVEL SECURITY"),
        ("drop A's catalogue table to put a view there", f"DROP TABLE {catalogue}"),
    ]:
        refused("mongodb", what, lambda statement=statement: pg(as_pg, statement, "ferretdb"),
                asyncpg.exceptions.InsufficientPrivilegeError)
    # Not fenced by FerretDB v1 (one catalogue for every client; docs/mongodb.md says so).
    allowed("mongodb", "list B's collection names", lambda: theirs.list_collection_names())

    print("\nisolation matrix (tenant iso-a acting on iso-b):")
    for backend, what, verdict in MATRIX:
        print(f"  {backend:9} {what:45} {verdict}")
    assert sum(1 for m in MATRIX if m[2].startswith("refused")) >= 35


def _b_connects_to_a(a: dict, b: dict) -> bool:
    try:
        pg(b, "SELECT 1", a["PGDATABASE"])
        return True
    except asyncpg.exceptions.InsufficientPrivilegeError:
        return False


def test_a_grant_to_another_tenants_role_or_public_is_revoked(two_tenants):
    """A owns its database and may GRANT on it, but a door to another tenant (or to PUBLIC) is put back
    shut, whoever of A's roles made it (PostgreSQL revokes a grant only as its grantor), and so is a
    membership of B's role in A's; each said as drift once; A's own use is untouched."""
    a, b = two_tenants
    database, login, other = a["PGDATABASE"], a["PGUSER"], b["PGUSER"]
    as_login = "DO $$ BEGIN EXECUTE 'SET ROLE \"{login}\"'; EXECUTE '{grant}'; END $$"
    pg(a, "CREATE TABLE IF NOT EXISTS shared_by_a (v text)")
    pg(a, f'GRANT CONNECT ON DATABASE "{database}" TO "{login}" WITH GRANT OPTION')  # harmless alone: A's own role
    held: list = []

    async def open_as_b():
        return await asyncpg.connect(host=b["PGHOST"], port=int(b["PGPORT"]), user=b["PGUSER"],
                                     password=b["PGPASSWORD"], database=database, timeout=5)

    loop = asyncio.new_event_loop()
    for how, grant in [
        ("by the owner", f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{other}" WITH GRANT OPTION'),
        ("by A's login role", as_login.format(login=login, grant=f'GRANT CONNECT ON DATABASE \"{database}\" TO \"{other}\"')),
        ("to PUBLIC by A's login role", as_login.format(login=login, grant=f'GRANT CONNECT ON DATABASE \"{database}\" TO PUBLIC')),
        # B's login a member of A's: it would have A's owner's privileges. PostgreSQL 15.18 refuses a login
        # role granting membership in itself (older servers let it); made here as the platform's superuser.
        ("as a member of A's login role", f'GRANT "{login}" TO "{other}"'),
    ]:
        if how.startswith("as a member"):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                pg(a, as_login.format(login=login, grant=f'GRANT \"{login}\" TO \"{other}\"'))
            pg_admin(grant)
        else:
            pg(a, grant)
        opened = _b_connects_to_a(a, b)  # usually True for a moment: the operator's next pass is seconds away
        if opened and not held:  # a session opened through the door must not outlive it
            held.append(loop.run_until_complete(open_as_b()))
        kube.eventually(lambda: not _b_connects_to_a(a, b), 30, message=f"B's CONNECT on A's database revoked ({how})")
        print(f"\nB connected to A's database before the repair ({how}): {opened}")
    events = lambda reason: [  # noqa: E731 - this run's iso-a only (kube.object_events)
        e["message"] for e in kube.object_events("Tenant", "iso-a", reason=reason)]

    def repaired() -> str:  # kopf posts Events after the pass, in the background: wait for the last one
        text = " ".join(events("DriftRepaired"))
        for said in (f"grant on {database} to {other} by", f"grant on {database} to {other} by {login}",
                     f"grant on {database} to PUBLIC by {login}", f"membership of {other} in {login}"):
            assert said in text, (said, text)
        return text

    kube.eventually(repaired, 30, message="DriftRepaired Events naming each door")
    if held:
        with pytest.raises((asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.ConnectionDoesNotExistError,
                            asyncpg.exceptions.InterfaceError, ConnectionError)):
            loop.run_until_complete(held[0].fetchval("SELECT 1"))
    print(f"B's session opened through a door: {'ended' if held else 'none opened in time'}")
    loop.close()
    time.sleep(8)  # a few verify passes: repaired once, not on every pass
    assert not _b_connects_to_a(a, b)
    assert not events("RepeatedRepair"), events("RepeatedRepair")
    assert pg(a, "SELECT count(*) FROM shared_by_a")[0][0] == 0  # A's own use is untouched


def _verify_from_a(run: str, peers: str, label: str) -> tuple[dict, dict[str, str]]:
    """A verify-isolation WorkflowRun `run` in tenant-iso-a against `peers`, waited to its end: (status, probes)."""
    ns = "tenant-iso-a"
    done = _wait(_create(ns, "iso-a", "verify-isolation", run, parameters={"peers": peers}), ns,
                 lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    probes = _probes(done)
    print(f"\nverify-isolation, {label}:\n" + "\n".join(f"  {k}: {v[:90]}" for k, v in sorted(probes.items())))
    return done, probes


def test_verify_isolation_probes_every_backend_and_fails_on_a_shared_password(two_tenants):
    """The verify-isolation workflow, from A's namespace with A's credentials only, on the same two tenants:
    every probe (PostgreSQL, Redis, OpenBao, MongoDB, search) refused by the server; then B's MongoDB user
    is given A's password by hand, and the next run fails naming that probe, with the Warning Event."""
    a, b = two_tenants
    ns = "tenant-iso-a"
    done, probes = _verify_from_a("iso-every-backend", "iso-b", "every backend")
    assert done["phase"] == "Succeeded", done
    login_as = f"m_iso_b_{a['MONGODB_USERNAME'][-1]}"
    wanted = {"probe mongodb find in a collection of database t_iso_b",
              "probe mongodb create a collection in database t_iso_b",
              f"probe mongodb log in as {login_as} with the tenant's password",
              "probe search search indices t-iso-b_*", "probe search create index t-iso-b_tenancy-isolation-probe"}
    assert wanted <= set(probes), sorted(probes)
    assert all(v.startswith("refused") for v in probes.values()), probes

    # Sent as a SCRAM verifier, as the adapter does: a statement that fails (the operator's repair racing
    # this one) is logged by PostgreSQL with its text, and a clear password there fails test_zx_logs.
    verifier = sql.scram_verifier(a["MONGODB_PASSWORD"])
    probe = f"log in as {login_as} with the tenant's password"
    # The operator's verify pass (every 3 s here) gives B's role its own password back, so the breach is
    # re-made every 0.1 s while the run probes; a run that still misses it is retried twice, and three
    # misses fail the test (CI once saw the repair land between the ALTER ROLE and the probe).
    for attempt in range(3):
        with _held(lambda: ferret_pg(f"ALTER ROLE {sql.ident(login_as)} PASSWORD {sql.literal(verifier)}")):
            again = _create(ns, "iso-a", "verify-isolation", f"iso-shared-password-{attempt}",
                            parameters={"peers": "iso-b"})
            failed = _wait(again, ns, lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
        print(f"\nafter B's MongoDB user got A's password (try {attempt + 1}): {failed['phase']}: "
              f"{failed.get('message')}")
        if failed["phase"] == "Failed":
            break
    assert failed["phase"] == "Failed", failed
    assert failed["outputs"][f"probe mongodb {probe}"] == "ALLOWED", _probes(failed)
    assert probe in failed["message"], failed["message"]
    assert _events(again, ns, "IsolationBreached"), "Warning Event IsolationBreached"


def test_verify_isolation_against_a_peer_with_no_index_yet_is_not_a_breach(two_tenants):
    """A peer with search enabled and no index yet: A's search of its prefix has nothing to read. The
    probe asks with allow_no_indices=false, so OpenSearch answers 404 (absent), where an empty 200 read
    as ALLOWED and failed the run (a fresh user's review found it against the example tenant globex)."""
    kube.apply(tenant_yaml("iso-empty", search={"enabled": True}))
    try:
        kubectl("wait", "--for=condition=Ready", "tenant/iso-empty", "--timeout=90s", timeout=100)
        done, probes = _verify_from_a("iso-no-index", "iso-empty", "a peer with no index")
        assert done["phase"] == "Succeeded", done
        assert probes["probe search search indices t-iso-empty_*"].startswith("absent: NotFoundError"), probes
        assert probes["probe search create index t-iso-empty_tenancy-isolation-probe"].startswith("refused"), probes
    finally:
        kubectl("delete", "tenant", "iso-empty", "--wait=false", check=False)
