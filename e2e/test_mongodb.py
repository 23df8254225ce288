"""MongoDB per tenant on the platform's FerretDB (v1, PostgreSQL handler), with real pymongo clients.

The server fences: every refusal below comes from PostgreSQL through FerretDB, because each MongoDB
user is a PostgreSQL role with no grant on another tenant's schema. What is not fenced (database and
collection names) is asserted as such, so the day it changes this test says so.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import time

import asyncpg
import pymongo
import pytest
from pymongo.errors import OperationFailure, PyMongoError

from . import kube
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials
from .tenant_mongo import ferret_pg, ferretdb_writes, mongo, private_ferretdb, purge_retained

OVERLAP_SECONDS = 4
NAMES = ("mgo-a", "mgo-b", "mgo-rot", "mgo-sleep", "mgo-delete", "mgo-retain")


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(mongo_backend):
    """Data an earlier run's tenants retained (default reclaim Retain) would make these Stalled, as promised."""
    for name in NAMES:  # an earlier run's tenant still being deleted finishes first
        eventually(lambda name=name: get("tenant", name) is None, 60, message=f"tenant {name} gone")
    removed = purge_retained(*NAMES)
    if removed:
        print(f"\nremoved mongodb data retained by earlier runs: {removed}")


def _ready(*names: str) -> None:
    kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], "--timeout=90s", timeout=100)


def _events(name: str, reason: str) -> list[dict]:
    return kube.object_events("Tenant", name, reason=reason)


@pytest.fixture(scope="module")
def pair(mongo_backend):
    kube.apply("\n---\n".join([tenant_yaml("mgo-a", mongodb={"enabled": True}),
                               tenant_yaml("mgo-b", mongodb={"enabled": True})]))
    _ready("mgo-a", "mgo-b")
    b = credentials("mgo-b")
    with mongo(b) as client:
        client[b["MONGODB_DATABASE"]].secrets.delete_many({})
        client[b["MONGODB_DATABASE"]].secrets.insert_one({"v": "b-only"})
    yield credentials("mgo-a"), b
    kubectl("delete", "tenant", "mgo-a", "mgo-b", "--wait=false", check=False)


def test_crud_in_own_database_and_the_server_refuses_the_other(pair):
    a, b = pair
    tenant = get("tenant", "mgo-a")
    assert condition(tenant, "DocumentStoreReady").get("status") == "True", tenant["status"]
    assert a["MONGODB_DATABASE"] == "t_mgo_a" and a["MONGODB_USERNAME"] in ("m_mgo_a_a", "m_mgo_a_b")
    assert tenant["status"]["endpoints"]["MONGODB_DATABASE"] == "t_mgo_a"
    assert "MONGODB_URI" not in tenant["status"]["endpoints"]  # it holds the password
    client = mongo(a)
    own = client[a["MONGODB_DATABASE"]].docs
    own.delete_many({})
    own.insert_one({"k": 1})
    own.update_one({"k": 1}, {"$set": {"v": "a"}})
    assert own.find_one({"k": 1}, {"_id": 0}) == {"k": 1, "v": "a"}
    own.create_index("v")
    assert own.delete_many({}).deleted_count == 1
    theirs = client[b["MONGODB_DATABASE"]]
    for what, call in [
        ("find", lambda: list(theirs.secrets.find())),
        ("count", lambda: theirs.secrets.count_documents({})),
        ("insert into an existing collection", lambda: theirs.secrets.insert_one({"x": 1})),
        ("insert into a new collection", lambda: theirs.intruder.insert_one({"x": 1})),
        ("update", lambda: theirs.secrets.update_many({}, {"$set": {"v": "x"}})),
        ("delete", lambda: theirs.secrets.delete_many({})),
        ("drop a collection", lambda: theirs.drop_collection("secrets")),
        ("create an index", lambda: theirs.secrets.create_index("v")),
        ("aggregate", lambda: list(theirs.secrets.aggregate([{"$match": {}}]))),
        ("dropDatabase", lambda: client.drop_database(b["MONGODB_DATABASE"])),
        ("create another database", lambda: client["t_mgo_intruder"].x.insert_one({"x": 1})),
    ]:
        with pytest.raises(OperationFailure, match="SQLSTATE 42501") as info:  # insufficient_privilege
            call()
        print(f"mongodb A on B: {what}: refused ({str(info.value).split('ERROR: ')[-1][:60]})")
    # Not fenced (FerretDB v1 lists names from one catalogue shared by every client): the names leak.
    assert "secrets" in theirs.list_collection_names()
    assert b["MONGODB_DATABASE"] in client.list_database_names()
    # B's data is untouched; A's password does not open B's user.
    with mongo(b) as bc:
        assert [d["v"] for d in bc[b["MONGODB_DATABASE"]].secrets.find()] == ["b-only"]
    wrong = {**a, "MONGODB_URI": a["MONGODB_URI"].replace(a["MONGODB_USERNAME"], b["MONGODB_USERNAME"], 1)}
    with pytest.raises(OperationFailure, match="password authentication failed"):
        mongo(wrong)[b["MONGODB_DATABASE"]].secrets.find_one()
    # No credentials at all: FerretDB's own role cannot log in.
    anonymous = pymongo.MongoClient(a["MONGODB_URI"].split("@", 1)[0].split("//")[0] + "//" +
                                    a["MONGODB_URI"].split("@", 1)[1].split("/")[0], serverSelectionTimeoutMS=4000)
    with pytest.raises(OperationFailure):
        anonymous[a["MONGODB_DATABASE"]].docs.find_one()


def test_dropped_user_is_repaired_within_a_verify_interval(pair):
    a, _ = pair
    before = len(_events("mgo-a", "DriftRepaired"))
    role = a["MONGODB_USERNAME"]
    ferret_pg(f'DROP ROLE "{role}"')
    started = time.monotonic()
    eventually(lambda: len(_events("mgo-a", "DriftRepaired")) > before, 30, message="DriftRepaired after DROP ROLE")
    print(f"\nmongodb drift: dropped {role}, repaired in {time.monotonic() - started:.1f}s")
    events = _events("mgo-a", "DriftRepaired")
    assert any(role in e["message"] for e in events), [e["message"] for e in events]
    with mongo(credentials("mgo-a")) as client:
        client[a["MONGODB_DATABASE"]].docs.insert_one({"after": "repair"})


def test_public_privileges_on_ferretdbs_database_are_revoked(pair):
    """FerretDB's database is every MongoDB tenant's: PUBLIC connecting, making temporary objects or
    creating in schema public there (PostgreSQL 14 and older grant the last by default) is put back,
    by the server's refusal afterwards, not by our client."""
    a, _ = pair
    as_pg = {"host": os.environ["PGHOST"], "port": int(os.environ["PGPORT"]), "user": a["MONGODB_USERNAME"],
             "password": a["MONGODB_PASSWORD"], "database": "ferretdb", "timeout": 5}

    async def create_in_public() -> None:
        conn = await asyncpg.connect(**as_pg)
        try:
            await conn.execute("CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE sql AS 'SELECT $1'")
        finally:
            await conn.close()

    ferret_pg("GRANT CONNECT, TEMPORARY ON DATABASE ferretdb TO PUBLIC")
    ferret_pg("GRANT CREATE ON SCHEMA public TO PUBLIC")
    eventually(lambda: not ferret_pg("SELECT has_schema_privilege('public', 'public', 'CREATE') AS open")[0]["open"]
               and not ferret_pg("SELECT has_database_privilege('public', 'ferretdb', 'TEMPORARY') AS open")[0]["open"],
               30, message="PUBLIC's privileges on FerretDB's database revoked")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        asyncio.run(create_in_public())
    messages = " ".join(e["message"] for e in _events("mgo-a", "DriftRepaired") + _events("mgo-b", "DriftRepaired"))
    assert "FerretDB's schema public" in messages, messages


def test_a_tenant_at_its_connection_limit_keeps_its_password_and_sessions(pair):
    """A busy tenant holding every connection its limit allows: the verify pass's password check (a login
    to template0) must not read "too many connections" as a changed password, which rewrote the password
    and ended every session of the tenant on each pass."""
    a, _ = pair
    role, password = a["MONGODB_USERNAME"], a["MONGODB_PASSWORD"]
    limit = ferret_pg("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", role)[0][0]

    def password_repairs() -> int:
        return sum("password" in e["message"] for e in _events("mgo-a", "DriftRepaired"))

    before = password_repairs()

    async def hold() -> tuple[int, int]:
        conns: list[asyncpg.Connection] = []
        try:
            # FerretDB's own pool may hold some of the role's slots already: take every one left.
            with pytest.raises(asyncpg.exceptions.TooManyConnectionsError):
                for _ in range(limit + 1):
                    conns.append(await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                                                       user=role, password=password, database="ferretdb", timeout=5))
            assert conns, f"no slot of {role} was free"
            await asyncio.sleep(12)  # four verify passes at the suite's 3 s interval
            alive = 0
            for conn in conns:
                try:
                    alive += await conn.fetchval("SELECT 1")
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    pass
            return alive, len(conns)
        finally:
            for conn in conns:
                await conn.close()

    alive, held = asyncio.run(hold())
    print(f"\nmongodb role {role} at its limit {limit}: {alive} of {held} sessions alive after 12 s")
    assert alive == held
    assert password_repairs() == before, [e["message"] for e in _events("mgo-a", "DriftRepaired")]
    with mongo(credentials("mgo-a")) as client:
        client[a["MONGODB_DATABASE"]].docs.insert_one({"after": "limit"})


def test_steady_state_writes_nothing_to_ferretdb(pair):
    # FerretDB's pooled PostgreSQL sessions publish the earlier tests' inserts up to 10 s late; the
    # operator's own sessions end after each pass, which publishes theirs at once.
    time.sleep(11)
    # The counter covers FerretDB's whole database: a tenant of an earlier test still being created or
    # torn down writes too. A verify pass that writes would write in every window, so the first quiet
    # window of four verify intervals proves it; none within 2 minutes fails.
    deadline, counts = time.monotonic() + 120, []
    while True:
        before = ferretdb_writes()
        time.sleep(12)  # four verify intervals of the e2e operator (3 s)
        counts.append(ferretdb_writes() - before)
        if counts[-1] == 0 or time.monotonic() > deadline:
            break
    print(f"\nmongodb steady state: rows written in FerretDB's database per 12 s window: {counts}")
    assert counts[-1] == 0, counts


class App:
    """Writes with the tenant's MONGODB_URI, a fresh client each time; on an auth failure re-reads the Secret."""

    # An old password refused, an old login closed, or a pooled session of it ended by the operator
    # (FerretDB hands that on once): re-read the Secret and try again, as an application would.
    RETRIED = ("password authentication failed", "not permitted to log in", "terminating connection", "conn closed",
               "failed to connect")

    def __init__(self, tenant: str):
        self.tenant, self.creds = tenant, credentials(tenant)
        self.ops = self.failures = self.reconnects = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def _once(self) -> None:
        with mongo(self.creds) as client:
            client[self.creds["MONGODB_DATABASE"]].load.insert_one({"at": time.time()})

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._once()
            except OperationFailure as exc:
                if not any(m in str(exc) for m in self.RETRIED):
                    self.failures += 1
                    self.errors.append(repr(exc))
                else:
                    self.reconnects += 1
                    self.creds = credentials(self.tenant)
                    try:
                        self._once()
                    except PyMongoError as again:
                        self.failures += 1
                        self.errors.append(repr(again))
            except PyMongoError as exc:
                self.failures += 1
                self.errors.append(repr(exc))
            self.ops += 1
            time.sleep(0.05)


def _version(tenant: str) -> int:
    return int(((get("tenant", tenant) or {}).get("status", {}).get("credentials") or {}).get("version") or 0)


# FerretDB's catalogue rows, which a tenant may write, cannot break FerretDB for the other tenants. A
# tenant's login role writes its database's catalogue table (FerretDB does so as the client) and can log
# in to PostgreSQL directly; a row FerretDB cannot decode made its next catalogue load fail, and with it
# `listDatabases` of every client (reproduced on a second FerretDB, as after a restart). The operator's
# CHECK constraint (backends/mongodb_catalogue.py) refuses such rows at PostgreSQL.
MARK = "tenancy-e2e-bad-row"


def _as_tenant(creds: dict[str, str], statement: str, *args) -> str:
    """One statement on FerretDB's PostgreSQL as the tenant's own login role (what a tenant can do)."""
    async def go() -> str:
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), database="ferretdb",
                                     user=creds["MONGODB_USERNAME"], password=creds["MONGODB_PASSWORD"], timeout=5)
        try:
            return await conn.execute(statement, *args)
        finally:
            await conn.close()
    return asyncio.run(go())


def test_ferretdb_still_writes_its_own_catalogue_rows_for_the_tenant(pair):
    a, _b = pair
    with mongo(a) as client:
        db = client[a["MONGODB_DATABASE"]]
        db.drop_collection("shapes")
        db.create_collection("shapes")
        db.shapes.insert_many([{"a": i, "b": str(i)} for i in range(5)])
        db.shapes.create_index([("a", pymongo.ASCENDING), ("b", pymongo.DESCENDING)], name="a_b")
        db.shapes.create_index("b", unique=True)
        db.shapes.drop_index("a_b")
        db.shapes.rename("shapes2")
        assert set(db.shapes2.index_information()) == {"_id_", "b_1"}
        db.create_collection("capped", capped=True, size=4096)
        db.drop_collection("capped")


def _unloadable(good: dict) -> list[dict]:
    """Rows FerretDB's JSON decoder reads but its catalogue load then refuses or panics on (FerretDB
    v1.24 Collection.unmarshal / Indexes.unmarshal), each a variant of a row FerretDB wrote."""
    def variant(tag: str, change) -> dict:
        row = copy.deepcopy(good) | {"_id": f"{MARK}-{tag}", "table": f"{MARK}-{tag}"}
        change(row)
        return row

    def no_indexes(row: dict) -> None:
        del row["indexes"], row["$s"]["p"]["indexes"]
        row["$s"]["$k"].remove("indexes")

    def capped_as_string(row: dict) -> None:
        row["cappedSize"], row["$s"]["p"]["cappedSize"] = "big", {"t": "string"}
        if "cappedSize" not in row["$s"]["$k"]:
            row["$s"]["$k"].append("cappedSize")

    def order_as_long(row: dict) -> None:
        for field in row["$s"]["p"]["indexes"]["i"][0]["$s"]["p"]["key"]["$s"]["p"].values():
            field["t"] = "long"

    def unknown_schema_key(row: dict) -> None:
        row["$s"]["x"] = 1

    def empty_name(row: dict) -> None:
        row["_id"] = ""

    return [variant(tag, change) for tag, change in (
        ("noidx", no_indexes), ("capped", capped_as_string), ("order", order_as_long),
        ("schemakey", unknown_schema_key), ("empty", empty_name))]


def test_a_malformed_catalogue_row_is_refused_and_a_fresh_ferretdb_lists_every_database(pair):
    a, b = pair
    table = f'{a["MONGODB_DATABASE"]}._ferretdb_database_metadata'
    with mongo(a) as client:
        client[a["MONGODB_DATABASE"]].notes.delete_many({})
        client[a["MONGODB_DATABASE"]].notes.insert_one({"v": "a"})
    good = json.loads(ferret_pg(f"SELECT _jsonb::text AS j FROM {table} WHERE _jsonb->>'_id' = 'notes'")[0]["j"])
    wrong_type = copy.deepcopy(good) | {"_id": MARK + "-t", "table": MARK + "-t", "cappedDocs": "many"}
    extra_key = copy.deepcopy(good) | {"_id": MARK + "-k", "table": MARK + "-k", "surprise": 1}
    bad_rows = [{"_id": MARK, "table": MARK}, wrong_type, extra_key, [MARK], None, *_unloadable(good)]
    refused = []
    try:
        for row in bad_rows:
            try:
                _as_tenant(a, f"INSERT INTO {table} (_jsonb) VALUES ($1::jsonb)", None if row is None else json.dumps(row))
            except asyncpg.CheckViolationError as exc:
                assert "tenancy_catalogue_row" in str(exc)
                refused.append(row)
        try:
            _as_tenant(a, f"UPDATE {table} SET _jsonb = _jsonb - '$s' WHERE _jsonb->>'_id' = 'notes'")
        except asyncpg.CheckViolationError:
            refused.append("update")
        # A fresh FerretDB (as after a restart) loads the whole catalogue: B's client lists and reads.
        with private_ferretdb() as port:
            uri = b["MONGODB_URI"].replace(f":{b['MONGODB_PORT']}/", f":{port}/")
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=4000) as fresh:
                names = fresh.list_database_names()
                found = fresh[b["MONGODB_DATABASE"]].secrets.find_one({}, {"_id": 0})
        print(f"\ncatalogue rows refused: {len(refused)} of {len(bad_rows) + 1}; fresh FerretDB lists {len(names)} "
              "databases")
        assert len(refused) == len(bad_rows) + 1, f"accepted: {[r for r in bad_rows + ['update'] if r not in refused]}"
        assert b["MONGODB_DATABASE"] in names and found == {"v": "b-only"}
    finally:  # never leave a row that would break the platform's FerretDB at its next start
        ferret_pg(f"DELETE FROM {table} WHERE _jsonb IS NULL OR jsonb_typeof(_jsonb) <> 'object' "
                  "OR NOT _jsonb ? '$s' OR _jsonb->>'_id' LIKE $1 OR _jsonb->>'table' LIKE $1", MARK + "%")


def test_three_rotations_under_load(mongo_backend, cleanup_tenants):
    name = "mgo-rot"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, mongodb={"enabled": True},
                           credentials={"rotateEvery": "720h", "overlap": f"{OVERLAP_SECONDS}s"}))
    _ready(name)
    app = App(name)
    worker = threading.Thread(target=app.run, daemon=True)
    worker.start()
    first = credentials(name)
    versions = [_version(name)]
    try:
        for n in range(3):
            time.sleep(OVERLAP_SECONDS + 1)
            kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=mgo-{n}-{time.time()}")
            eventually(lambda: _version(name) > versions[-1], 30, message=f"rotation {n + 1} done")
            versions.append(_version(name))
        time.sleep(OVERLAP_SECONDS + 4)
    finally:
        app.stop.set()
        worker.join(10)
    print(f"\nmongodb rotation under load: versions {versions}, {app.ops} ops, {app.reconnects} reconnects, "
          f"{app.failures} failures")
    assert app.failures == 0, app.errors[:5]
    assert app.ops > 30
    with pytest.raises(OperationFailure):
        mongo(first)[first["MONGODB_DATABASE"]].load.find_one()
    current = credentials(name)
    with mongo(current) as client:
        assert client[current["MONGODB_DATABASE"]].load.count_documents({}) > 0


def test_suspend_closes_the_door_and_resume_reopens_it(mongo_backend, cleanup_tenants):
    name = "mgo-sleep"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}))
    _ready(name)
    creds = credentials(name)
    with mongo(creds) as client:
        client[creds["MONGODB_DATABASE"]].kept.delete_many({})
        client[creds["MONGODB_DATABASE"]].kept.insert_one({"v": "still here"})
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}, state="Suspended"))
    eventually(lambda: (get("tenant", name) or {}).get("status", {}).get("phase") == "Suspended", 30,
               message="phase Suspended")
    with pytest.raises(OperationFailure):  # the pooled session ended, then: not permitted to log in
        mongo(creds)[creds["MONGODB_DATABASE"]].kept.find_one()
    with pytest.raises(OperationFailure, match="failed to connect"):
        mongo(creds)[creds["MONGODB_DATABASE"]].kept.find_one()
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}))
    _ready(name)
    eventually(lambda: (get("tenant", name) or {}).get("status", {}).get("phase") == "Ready", 30, message="Ready")
    creds = credentials(name)
    with mongo(creds) as client:
        assert client[creds["MONGODB_DATABASE"]].kept.find_one({}, {"_id": 0}) == {"v": "still here"}


def test_a_lock_another_tenant_holds_on_the_catalogue_does_not_hold_up_a_delete(mongo_backend, pair):
    """Every tenant's roles may read each catalogue table (FerretDB loads them all): tenant A locking B's
    used to stall B's Delete, and with it FerretDB's global lock, every tenant's requests."""
    a, _ = pair
    name = "mgo-locked"
    kube.apply(_policy(name, "Delete"))
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}, lifecyclePolicyRef=name))
    _ready(name)
    table = f'"t_{name.replace("-", "_")}"._ferretdb_database_metadata'
    held, done = threading.Event(), threading.Event()
    outcome: list[str] = []

    async def lock() -> None:
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), database="ferretdb",
                                     user=a["MONGODB_USERNAME"], password=a["MONGODB_PASSWORD"], timeout=5)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
                held.set()
                for _ in range(240):  # a terminated session fails its next statement
                    await conn.fetchval("SELECT 1")
                    await asyncio.sleep(0.5)
            outcome.append("kept its lock")
        except (asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError, OSError) as exc:
            outcome.append(f"ended: {type(exc).__name__}")
        finally:
            done.set()
            await conn.close()

    worker = threading.Thread(target=lambda: asyncio.run(lock()), daemon=True)
    worker.start()
    assert held.wait(20), "A could not lock the catalogue table (nothing to test)"
    started = time.monotonic()
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    took = time.monotonic() - started
    assert done.wait(10) and outcome and outcome[0].startswith("ended"), outcome
    assert _objects(name) == {"database": False, "roles": False, "login": False}
    with mongo(a) as client:  # FerretDB serves the others again
        client[a["MONGODB_DATABASE"]].docs.insert_one({"after": "delete"})
    print(f"\ndelete with another tenant's lock on the catalogue: {took:.1f}s; the locker {outcome[0]}")
    kubectl("delete", "lifecyclepolicy", name, "--ignore-not-found", check=False)


def _policy(name: str, reclaim: str) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
                       "spec": {"reclaim": reclaim}})


def _objects(tenant: str) -> dict[str, bool]:
    base = tenant.replace("-", "_")
    schema = ferret_pg("SELECT 1 FROM pg_namespace WHERE nspname = $1", f"t_{base}")
    roles = ferret_pg("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE $1", f"m\\_{base}\\_%")
    return {"database": bool(schema), "roles": len(roles) == 3, "login": any(r["rolcanlogin"] for r in roles)}


def _owner_mark(tenant: str) -> str:
    row = ferret_pg("SELECT shobj_description(oid, 'pg_authid') AS m FROM pg_roles WHERE rolname = $1",
                    f"m_{tenant.replace('-', '_')}_owner")
    return row[0]["m"] if row else ""


@pytest.mark.parametrize("reclaim", ["Delete", "Retain"])
def test_reclaim(mongo_backend, reclaim):
    name = f"mgo-{reclaim.lower()}"
    kube.apply(_policy(f"mgo-{reclaim.lower()}", reclaim))
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}, lifecyclePolicyRef=f"mgo-{reclaim.lower()}"))
    _ready(name)
    first = get("tenant", name)["metadata"]["uid"]
    creds = credentials(name)
    with mongo(creds) as client:
        client[creds["MONGODB_DATABASE"]].kept.insert_one({"v": 1})
    assert _objects(name) == {"database": True, "roles": True, "login": True}
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    if reclaim == "Delete":
        assert _objects(name) == {"database": False, "roles": False, "login": False}
        kubectl("delete", "lifecyclepolicy", f"mgo-{reclaim.lower()}", "--ignore-not-found", check=False)
        return
    # Data and roles kept, marked as the deleted Tenant's; every door closed.
    assert _objects(name) == {"database": True, "roles": True, "login": False}
    assert first in _owner_mark(name)
    with pytest.raises(OperationFailure):
        mongo(creds)[creds["MONGODB_DATABASE"]].kept.find_one()

    # Kept usable: a Tenant of the same name is refused the marked data until it asks for it
    # (spec.adoptRetainedData), then re-attached: its new credentials read the old document.
    kube.apply(tenant_yaml(name, mongodb={"enabled": True}, lifecyclePolicyRef=f"mgo-{reclaim.lower()}"))

    def stalled() -> str | None:
        c = condition(get("tenant", name), "DocumentStoreReady")
        return c.get("status") == "False" and c.get("reason") == "OwnedByAnotherTenant" and c.get("message")

    message = eventually(stalled, 60, message=f"{name} Stalled on the retained data")
    assert f"retained from a deleted tenant (uid {first})" in message and "spec.adoptRetainedData" in message, message
    assert _objects(name)["login"] is False and first in _owner_mark(name), "nothing opened or re-marked"
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"adoptRetainedData":true}}')
    _ready(name)
    second = get("tenant", name)["metadata"]["uid"]
    new = credentials(name)
    assert new["MONGODB_PASSWORD"] != creds["MONGODB_PASSWORD"]
    with mongo(new) as client:
        assert client[new["MONGODB_DATABASE"]].kept.find_one({}, {"_id": 0}) == {"v": 1}
    assert second in _owner_mark(name) and first not in _owner_mark(name)
    assert _events(name, "RetainedDataAdopted"), "a RetainedDataAdopted Event"
    # Leave nothing behind: this Tenant goes with reclaim Delete.
    kube.apply(_policy("mgo-delete", "Delete"))
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"lifecyclePolicyRef":"mgo-delete"}}')
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    assert _objects(name) == {"database": False, "roles": False, "login": False}
    kubectl("delete", "lifecyclepolicy", "mgo-retain", "mgo-delete", "--ignore-not-found", check=False)


def test_wrong_admin_secret_is_named(mongo_backend):
    """A Backend whose admin password the server refuses: Ready=False, the message names the Secret."""
    from .backends_fixtures import ferretdb_admin, secret

    name, admin = "mongo-bad-password", ferretdb_admin()
    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret(f"{name}-admin", {**{k: v for k, v in admin.items() if k != "port"},
                                 "password": "not-" + admin["password"]}),
        json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Backend", "metadata": {"name": name},
                    "spec": {"type": "mongodb", "endpoint": {"host": "127.0.0.1", "port": int(admin["port"])},
                             "adminSecretRef": {"name": f"{name}-admin"}, "paused": True}}),
    ]))
    try:
        ready = eventually(lambda: condition(get("backend", name), "Ready").get("status") == "False"
                           and condition(get("backend", name), "Ready"), 30, message=f"{name} Ready=False")
        print(f"\n{name}: {ready['reason']}: {ready['message']}")
        assert ready["reason"] == "Refused", ready
        assert f"{name}-admin" in ready["message"]
        assert admin["password"] not in ready["message"]
    finally:
        kubectl("delete", "backend", name, "--ignore-not-found", check=False)
        kubectl("delete", "secret", "-n", "tenancy-system", f"{name}-admin", "--ignore-not-found", check=False)
