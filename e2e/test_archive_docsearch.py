"""Archive and restore of the document store (FerretDB) and search (OpenSearch) parts, real servers.

A tenant's collections (documents with ObjectIds, dates, 64-bit integers; a unique and a compound
index) and indices (mapping, settings, documents with routing) are archived with `spec.state:
Archived`, the live data is released, and a new tenant restored from the archive reads the same
documents with its own credentials.
"""

from __future__ import annotations

import datetime
import json
import os
import time

import pymongo
from bson import Int64, ObjectId

from . import kube
from .conftest import ARCHIVE_DIR
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, search_client
from .tenant_mongo import ferret_pg, mongo, purge_retained
from .test_search import admin as search_admin

SPEC = {"mongodb": {"enabled": True}, "search": {"enabled": True}, "vault": {"enabled": True}}
SRC, DST = "ads-src", "ads-dst"


def _gone(name: str) -> None:
    if get("tenant", name) is not None:
        kubectl("delete", "tenant", name, "--wait=false")
        eventually(lambda: get("tenant", name) is None, 90, 1, f"tenant {name} deleted")


def _mongo_snapshot(creds: dict[str, str]) -> dict:
    with mongo(creds) as client:
        db = client[creds["MONGODB_DATABASE"]]
        return {c: {"docs": list(db[c].find({}, sort=[("_id", 1)])),
                    "indexes": {n: (i["key"], bool(i.get("unique"))) for n, i in db[c].index_information().items()}}
                for c in sorted(db.list_collection_names())}


def _search_snapshot(creds: dict[str, str]) -> dict:
    client, prefix = search_client(creds), creds["SEARCH_INDEX_PREFIX"]
    out = {}
    for suffix in ("products", "logs"):
        index = prefix + suffix
        hits = client.search(index=index, body={"size": 1000, "sort": ["_doc"], "query": {"match_all": {}}})
        out[suffix] = {"mapping": client.indices.get_mapping(index=index)[index]["mappings"],
                       "docs": sorted((h["_id"], json.dumps(h["_source"], sort_keys=True), h.get("_routing"))
                                      for h in hits["hits"]["hits"])}
    return out


def test_document_and_search_data_round_trip_through_an_archive(mongo_backend, search_backend, cleanup_tenants):
    for name in (SRC, DST):
        _gone(name)
    purge_retained(SRC, DST)
    cleanup_tenants += [DST, SRC]
    kube.apply(tenant_yaml(SRC, **SPEC))
    kubectl("wait", "--for=condition=Ready", f"tenant/{SRC}", "--timeout=90s", timeout=100)
    creds = credentials(SRC)
    with mongo(creds) as client:
        db = client[creds["MONGODB_DATABASE"]]
        db.people.insert_many([{"_id": ObjectId(), "n": i, "big": Int64(2**40 + i), "name": f"p{i}",
                                "at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=i),
                                "tags": ["a", "b"][: i % 3], "nested": {"x": i * 1.5}} for i in range(300)])
        db.people.create_index("name", unique=True)
        db.people.create_index([("n", pymongo.ASCENDING), ("big", pymongo.DESCENDING)], name="n_big")
        db.empty.insert_one({"_id": "only"})
    search = search_client(creds)
    prefix = creds["SEARCH_INDEX_PREFIX"]
    search.indices.create(index=prefix + "products", body={"mappings": {"properties": {
        "title": {"type": "text"}, "sku": {"type": "keyword"}, "price": {"type": "double"}}}})
    for i in range(200):
        search.index(index=prefix + "products", id=f"sku-{i}", body={"title": f"thing {i}", "sku": f"S{i}", "price": i / 4})
    search.index(index=prefix + "logs", id="l1", body={"msg": "hello"}, routing="r7")
    search.indices.refresh(index=prefix + "*")
    documents, indices = _mongo_snapshot(creds), _search_snapshot(creds)
    assert len(documents["people"]["docs"]) == 300 and len(indices["products"]["docs"]) == 200

    started = time.monotonic()
    kubectl("patch", "tenant", SRC, "--type", "merge", "-p", '{"spec":{"state":"Archived"}}')
    eventually(lambda: (get("tenant", SRC)["status"].get("archive") or {}).get("state") == "Released", 120, 1,
               "archive exported and live data released")
    archive_seconds = time.monotonic() - started
    archive_id = get("tenant", SRC)["status"]["archive"]["id"]
    manifest = json.loads((ARCHIVE_DIR / archive_id / "manifest.json").read_text())
    assert {"mongodb.jsonl.enc", "search.jsonl.enc"} <= set(manifest["files"])
    assert manifest["backends"]["mongodb"]["documents"] == 301 and manifest["backends"]["search"]["documents"] == 201
    assert not search_admin().indices.get(index=prefix + "*", expand_wildcards="all", ignore_unavailable=True)
    assert not ferret_pg("SELECT 1 FROM pg_namespace WHERE nspname = $1", creds["MONGODB_DATABASE"])  # released
    for name in ("mongodb.jsonl.enc", "search.jsonl.enc"):  # encrypted: no clear text of the data
        raw = (ARCHIVE_DIR / archive_id / name).read_bytes()
        assert b"thing 1" not in raw and b"p299" not in raw
    _gone(SRC)

    started = time.monotonic()
    kube.apply(tenant_yaml(DST, restoreFrom={"archive": archive_id}, **SPEC))
    eventually(lambda: ((get("tenant", DST) or {}).get("status", {}).get("restore") or {}).get("state") == "Done",
               120, 1, "restore done")
    restore_seconds = time.monotonic() - started
    size = sum(e["size"] for e in manifest["files"].values() if e["part"] in ("mongodb", "search"))
    print(f"\nmongodb+search archive parts: {size} bytes; archive {archive_seconds:.1f} s, restore "
          f"{restore_seconds:.1f} s")
    restored = credentials(DST)  # read with the new tenant's own credentials
    assert _mongo_snapshot(restored) == documents
    assert _search_snapshot(restored) == indices
    with mongo(restored) as client:  # and it can still write where it restored
        client[restored["MONGODB_DATABASE"]].people.insert_one({"n": 300, "name": "p300"})


def _collection_table(database: str) -> str:
    rows = ferret_pg("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> "
                     "'_ferretdb_database_metadata'", database)
    assert len(rows) == 1, rows
    return rows[0]["tablename"]


def test_an_archive_reads_the_collections_with_the_tenants_rights_only(mongo_backend, cleanup_tenants):
    """A's MongoDB user is a PostgreSQL role: A puts a view that reads B's collection, run with the
    rights of whoever reads it (security_invoker), in place of its own collection's table, then asks for
    an archive. Read as the Backend's admin (a member of every tenant's owner role) the archive would
    hold B's documents; read as A's dump role the server refuses, and nothing of B is archived."""
    thief, victim = "ads-thief", "ads-victim"
    for name in (thief, victim):
        _gone(name)
    purge_retained(thief, victim)
    cleanup_tenants += [thief, victim]
    for name in (victim, thief):
        kube.apply(tenant_yaml(name, mongodb={"enabled": True}, vault={"enabled": True}))  # vault: the archive's key
    for name in (victim, thief):
        kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    b, a = credentials(victim), credentials(thief)
    with mongo(b) as client:
        client[b["MONGODB_DATABASE"]].vault.insert_one({"secret": "b-only-7f3a"})
    with mongo(a) as client:
        client[a["MONGODB_DATABASE"]].things.insert_one({"mine": 1})
    mine, theirs = (f'"{c["MONGODB_DATABASE"]}"."{_collection_table(c["MONGODB_DATABASE"])}"' for c in (a, b))
    as_pg = {**a, "PGHOST": os.environ["PGHOST"], "PGPORT": os.environ["PGPORT"],
             "PGUSER": a["MONGODB_USERNAME"], "PGPASSWORD": a["MONGODB_PASSWORD"]}
    pg(as_pg, f"DROP TABLE {mine}", "ferretdb")
    pg(as_pg, f"CREATE VIEW {mine} WITH (security_invoker = true) AS SELECT _jsonb FROM {theirs}", "ferretdb")

    kubectl("patch", "tenant", thief, "--type", "merge", "-p", '{"spec":{"state":"Archived"}}')

    def refused() -> str:
        found = next((c for c in (get("tenant", thief) or {}).get("status", {}).get("conditions", [])
                      if c["type"] == "ArchiveReady"), {})
        return found.get("message", "") if "permission denied" in found.get("message", "") else ""

    message = eventually(refused, 60, 1, "the archive refused by the server")
    print(f"\narchive of a collection replaced by a view on B's data: {message[:200]}")
    assert (get("tenant", thief)["status"].get("archive") or {}).get("state") != "Released"
    for folder in ARCHIVE_DIR.glob(f"{thief}-*"):  # nothing of B in any file an attempt left
        for file in folder.iterdir():
            assert b"b-only-7f3a" not in file.read_bytes()
    dump_role = f"m_{thief.replace('-', '_')}_dump"  # dropped after each attempt (a retry makes a new one)
    eventually(lambda: not ferret_pg("SELECT 1 FROM pg_roles WHERE rolname = $1", dump_role), 20, 0.2,
               "no dump role left between attempts")

