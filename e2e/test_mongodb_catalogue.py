"""FerretDB's catalogue rows, which a tenant may write, cannot break FerretDB for the other tenants.

A tenant's login role writes its database's catalogue table (FerretDB does so as the client) and can
log in to PostgreSQL directly. A row FerretDB cannot decode made its next catalogue load fail, and
with it `listDatabases` of every client (reproduced here on a second FerretDB, as after a restart).
The operator's CHECK constraint (backends/mongodb_catalogue.py) refuses such rows at PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os

import asyncpg
import pymongo
import pytest

from . import kube
from .kube import kubectl, tenant_yaml
from .tenant_clients import credentials
from .tenant_mongo import ferret_pg, mongo, private_ferretdb, purge_retained

A, B = "mcat-a", "mcat-b"
MARK = "tenancy-e2e-bad-row"


@pytest.fixture(scope="module")
def pair(mongo_backend):
    purge_retained(A, B)
    kube.apply("\n---\n".join([tenant_yaml(A, mongodb={"enabled": True}), tenant_yaml(B, mongodb={"enabled": True})]))
    kubectl("wait", "--for=condition=Ready", f"tenant/{A}", f"tenant/{B}", "--timeout=90s", timeout=100)
    a, b = credentials(A), credentials(B)
    with mongo(b) as client:
        client[b["MONGODB_DATABASE"]].notes.delete_many({})
        client[b["MONGODB_DATABASE"]].notes.insert_one({"v": "b"})
    yield a, b
    kubectl("delete", "tenant", A, B, "--wait=false", check=False)


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


def test_a_malformed_catalogue_row_is_refused_and_a_fresh_ferretdb_lists_every_database(pair):
    a, b = pair
    table = f'{a["MONGODB_DATABASE"]}._ferretdb_database_metadata'
    with mongo(a) as client:
        client[a["MONGODB_DATABASE"]].notes.insert_one({"v": "a"})
    good = json.loads(ferret_pg(f"SELECT _jsonb::text AS j FROM {table} WHERE _jsonb->>'_id' = 'notes'")[0]["j"])
    wrong_type = copy.deepcopy(good) | {"_id": MARK + "-t", "table": MARK + "-t", "cappedDocs": "many"}
    extra_key = copy.deepcopy(good) | {"_id": MARK + "-k", "table": MARK + "-k", "surprise": 1}
    bad_rows = [{"_id": MARK, "table": MARK}, wrong_type, extra_key, [MARK], None]
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
                found = fresh[b["MONGODB_DATABASE"]].notes.find_one({}, {"_id": 0})
        print(f"\ncatalogue rows refused: {len(refused)} of {len(bad_rows) + 1}; fresh FerretDB lists {len(names)} "
              "databases")
        assert len(refused) == len(bad_rows) + 1, f"accepted: {[r for r in bad_rows + ['update'] if r not in refused]}"
        assert b["MONGODB_DATABASE"] in names and found == {"v": "b"}
    finally:  # never leave a row that would break the platform's FerretDB at its next start
        ferret_pg(f"DELETE FROM {table} WHERE _jsonb IS NULL OR jsonb_typeof(_jsonb) <> 'object' "
                  "OR NOT _jsonb ? '$s' OR _jsonb->>'_id' LIKE $1", MARK + "%")
