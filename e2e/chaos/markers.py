"""The chaos run's markers: what each tenant writes through its own credentials once it is Ready, and reads
back at the end (test_chaos.py).

Per tenant: a row in table `chaos_marker` of its PostgreSQL database, a Redis key under its prefix, a KV
entry in its OpenBao folder and, for a tenant with MongoDB and search, a document in collection
`chaos_marker` of its MongoDB database (FerretDB) and a document in its index `<SEARCH_INDEX_PREFIX>chaos`.
Redis and OpenBao (dev mode) keep nothing across a restart (IN_MEMORY): the test counts their markers as
not checkable after one, and the tenant's next Active step writes them again. The others must survive
every fault: PostgreSQL's data folder, FerretDB's data in that PostgreSQL, OpenSearch's data folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opensearchpy.exceptions import NotFoundError
from tenancy_operator.api import names

from ..tenant_clients import credentials, pg, redis_client, search_client, vault_login
from ..tenant_mongo import mongo

if TYPE_CHECKING:
    from .test_chaos import Life

IN_MEMORY = {"redis-server": "redis", "bao": "vault"}
"""Servers without persistence on the local platform (fault kind -> backend): a restart wipes their markers."""
MARKER_TABLE = "chaos_marker"
"""The PostgreSQL table and the MongoDB collection."""
MARKER_ID = "chaos-marker"
"""The Redis key (after the tenant's prefix), the KV entry, the MongoDB document's `_id` and the search
document's id (in index `<SEARCH_INDEX_PREFIX>chaos`)."""


def write(life: Life) -> None:
    """The markers this tenant does not hold (yet, or since a restart wiped them), through its own credentials."""
    creds = credentials(life.name)
    if "postgres" not in life.markers:
        pg(creds, f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (v text)")
        pg(creds, f"INSERT INTO {MARKER_TABLE} VALUES ($1)", None, life.marker)
        life.markers["postgres"] = "ok"
    if life.markers.get("redis") != "ok":
        client = redis_client(creds)
        try:
            client.set(f"{names.redis_prefix(life.name)}{MARKER_ID}", life.marker)
        finally:
            client.close()
        life.markers["redis"] = "ok"
    if life.markers.get("vault") != "ok":
        vault = vault_login(creds, names.namespace(life.name))
        vault.secrets.kv.v2.create_or_update_secret(mount_point=creds["VAULT_KV_MOUNT"],
                                                    path=f"{creds['VAULT_KV_PATH']}/{MARKER_ID}",
                                                    secret={"v": life.marker})
        life.markers["vault"] = "ok"
    if life.docsearch and "mongodb" not in life.markers:
        with mongo(creds) as documents:
            documents[creds["MONGODB_DATABASE"]][MARKER_TABLE].replace_one(
                {"_id": MARKER_ID}, {"_id": MARKER_ID, "v": life.marker}, upsert=True)
        life.markers["mongodb"] = "ok"
    if life.docsearch and "search" not in life.markers:
        search = search_client(creds)
        try:
            search.index(index=f"{creds['SEARCH_INDEX_PREFIX']}chaos", id=MARKER_ID, body={"v": life.marker},
                         refresh=True)
        finally:
            search.close()
        life.markers["search"] = "ok"


def read(life: Life) -> dict[str, str | None]:
    """backend -> the marker read back with the tenant's current credentials (None: absent)."""
    creds = credentials(life.name)
    rows = pg(creds, f"SELECT v FROM {MARKER_TABLE}")
    client = redis_client(creds)
    try:
        cached = client.get(f"{names.redis_prefix(life.name)}{MARKER_ID}")
    finally:
        client.close()
    vault = vault_login(creds, names.namespace(life.name))
    try:
        kv = vault.secrets.kv.v2.read_secret_version(mount_point=creds["VAULT_KV_MOUNT"],
                                                     path=f"{creds['VAULT_KV_PATH']}/{MARKER_ID}",
                                                     raise_on_deleted_version=True)["data"]["data"]["v"]
    except Exception:  # noqa: BLE001 - absent (InvalidPath) or unreadable: both mean lost
        kv = None
    got = {"postgres": life.marker if any(r["v"] == life.marker for r in rows) else None,
           "redis": cached, "vault": kv}
    if life.docsearch:
        with mongo(creds) as documents:
            document = documents[creds["MONGODB_DATABASE"]][MARKER_TABLE].find_one({"_id": MARKER_ID})
        search = search_client(creds)
        try:
            found = search.get(index=f"{creds['SEARCH_INDEX_PREFIX']}chaos", id=MARKER_ID)
        except NotFoundError:  # the index or the document: both mean lost
            found = {}
        finally:
            search.close()
        got |= {"mongodb": (document or {}).get("v"), "search": (found.get("_source") or {}).get("v")}
    return got
