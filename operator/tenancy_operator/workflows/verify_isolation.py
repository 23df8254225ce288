"""`verify-isolation`: acting only with the tenant's own credentials, try to reach other tenants' data.

Every attempt must be refused by the server itself. Each probe lands in the run's outputs as
`probe <service> <what>` = `refused: <the server's error>`, `ALLOWED`, or `absent: ...` (the other
tenant's object is not on this server, so there is nothing to reach there). Any ALLOWED probe fails
the step (and the run) with a message naming the probes; the handler then raises a Warning Event,
the `tenancy_isolation_probes_allowed` metric and, through the chart's rules, an alert.

Services: `kube` (the operator's Kubernetes API module, with `token` for a ServiceAccount token),
`poll`, and `namespace` (the run's namespace). Credentials are read from the tenant's
`tenant-credentials` Secret and never leave this module (nothing secret goes to outputs or logs).

Parameters: `peers`, comma-separated Tenant names (default: every other Tenant). MongoDB and search
are probed when the tenant has them, against each peer placed on the same Backend (a peer elsewhere,
or without the service, is `absent`): MongoDB finds in a collection of the peer's database, creates
a collection there, and logs in as the peer's user with the tenant's password; search searches the
peer's index pattern and creates an index under the peer's prefix. A create the server let through is
removed again at once (best effort), so a breach found leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any
from urllib.parse import quote

import asyncpg
import hvac
import hvac.exceptions
import pymongo
import pymongo.errors
import redis.asyncio as aioredis
import redis.exceptions
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthorizationException, NotFoundError

from ..api import names
from .engine import Step, StepContext, StepFailed

__all__ = ["steps", "SECRET", "APP_ACCOUNT", "ALLOWED", "allowed_probes", "MAX_PEERS", "PROBE_NAME"]

SECRET = "tenant-credentials"
APP_ACCOUNT = "tenant-app"
ALLOWED = "ALLOWED"
MAX_PEERS = 50
PROBE_NAME = "tenancy-isolation-probe"
"""The collection (MongoDB) and index suffix (search) a probe tries to create in a peer's space."""


def allowed_probes(outputs: dict[str, str]) -> list[str]:
    """The probes a server let through (what the run's failure, Event and metric name)."""
    return sorted(k.removeprefix("probe ") for k, v in outputs.items() if k.startswith("probe ") and v == ALLOWED)


async def _credentials(ctx: StepContext) -> dict[str, str]:
    secret = await ctx.services.kube.get("Secret", SECRET, names.namespace(ctx.tenant))
    if secret is None:
        raise LookupError(f"Secret {SECRET} in {names.namespace(ctx.tenant)} does not exist yet")
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def _peers(ctx: StepContext) -> dict[str, str]:
    wanted = [p.strip() for p in ctx.params.get("peers", "").split(",") if p.strip()]
    for peer in wanted:
        if not names.is_tenant_name(peer):
            raise StepFailed(f"parameter peers: {peer!r} is not a Tenant name")
    if not wanted:
        tenants = await ctx.services.kube.list_objects("Tenant")
        wanted = sorted(t["metadata"]["name"] for t in tenants if names.is_tenant_name(t["metadata"]["name"]))
    peers = [p for p in dict.fromkeys(wanted) if p != ctx.tenant][:MAX_PEERS]
    if not peers:
        raise StepFailed("there is no other tenant to probe (parameter peers, or other Tenants)")
    return {"peers": ",".join(peers)}


def _verdict(exc: BaseException | None, refusals: tuple[type[BaseException], ...],
             absent: tuple[type[BaseException], ...] = ()) -> str:
    if exc is None:
        return ALLOWED
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    if isinstance(exc, refusals):
        return f"refused: {type(exc).__name__}: {text}"
    if isinstance(exc, absent):
        return f"absent: {type(exc).__name__}: {text}"
    raise exc  # not the server's verdict (unreachable, timeout): the step retries


def _report(outputs: dict[str, str]) -> dict[str, str]:
    bad = allowed_probes(outputs)
    if bad:
        raise StepFailed(f"{len(bad)} probe(s) not refused by the server: {'; '.join(bad)}", outputs)
    return outputs


async def _postgres(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    if not creds.get("PGUSER"):
        return {"probe postgres": "absent: the tenant has no PostgreSQL"}
    out: dict[str, str] = {}
    for peer in ctx.outputs["peers"].split(","):
        database = names.pg_database(peer)
        exc: BaseException | None = None
        try:
            conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                         password=creds["PGPASSWORD"], database=database, timeout=10)
            await conn.close()
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            exc = e
        out[f"probe postgres connect to database {database}"] = _verdict(
            exc, (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidAuthorizationSpecificationError),
            (asyncpg.InvalidCatalogNameError,))
    return _report(out)


async def _redis(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    if not creds.get("REDIS_USERNAME"):
        return {"probe redis": "absent: the tenant has no Redis"}
    client = aioredis.Redis(host=creds["REDIS_HOST"], port=int(creds["REDIS_PORT"]), username=creds["REDIS_USERNAME"],
                            password=creds["REDIS_PASSWORD"], socket_timeout=10)
    out: dict[str, str] = {}
    try:
        for peer in ctx.outputs["peers"].split(","):
            prefix = names.redis_prefix(peer)
            for what, call in ((f"GET {prefix}probe", lambda p=prefix: client.get(f"{p}probe")),
                               (f"PUBLISH {prefix}probe", lambda p=prefix: client.publish(f"{p}probe", ""))):
                exc: BaseException | None = None
                try:
                    await call()
                except redis.exceptions.ResponseError as e:
                    exc = e
                out[f"probe redis {what}"] = _verdict(exc, (redis.exceptions.NoPermissionError,))
    finally:
        await client.aclose()
    return _report(out)


def _vault_probes(addr: str, role: str, jwt: str, peers: list[str]) -> dict[str, str]:
    client = hvac.Client(url=addr, timeout=10)
    client.session.trust_env = False
    client.auth.kubernetes.login(role, jwt, mount_point="kubernetes")
    out: dict[str, str] = {}
    for peer in peers:
        mount, _, base = names.vault_kv_path(peer).partition("/")
        calls: list[tuple[str, Any]] = [
            (f"read KV {mount}/{base}/probe",
             lambda m=mount, b=base: client.secrets.kv.v2.read_secret_version(mount_point=m, path=f"{b}/probe",
                                                                             raise_on_deleted_version=True)),
            (f"encrypt with transit key {names.vault_key(peer)}",
             lambda p=peer: client.secrets.transit.encrypt_data(names.vault_key(p), "cHJvYmU=")),
        ]
        for what, call in calls:
            exc: BaseException | None = None
            try:
                call()
            except hvac.exceptions.InvalidPath:  # the policy let the read through; nothing is stored there
                exc = None
            except hvac.exceptions.Forbidden as e:
                exc = e
            out[f"probe vault {what}"] = _verdict(exc, (hvac.exceptions.Forbidden,))
    return out


async def _vault(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    if not creds.get("VAULT_ADDR") or not creds.get("VAULT_ROLE"):
        return {"probe vault": "absent: the tenant has no OpenBao"}
    jwt = await ctx.services.kube.token(APP_ACCOUNT, names.namespace(ctx.tenant))
    out = await asyncio.to_thread(_vault_probes, creds["VAULT_ADDR"], creds["VAULT_ROLE"], jwt,
                                  ctx.outputs["peers"].split(","))
    return _report(out)


async def _same_backend(ctx: StepContext, service: str) -> dict[str, str]:
    """Each peer -> why it is not probed for `service` ('' when it is: placed on the tenant's own Backend)."""
    mine = await ctx.services.kube.get("Tenant", ctx.tenant) or {}
    here = ((mine.get("status") or {}).get("placement") or {}).get(service)
    out: dict[str, str] = {}
    for peer in ctx.outputs["peers"].split(","):
        found = await ctx.services.kube.get("Tenant", peer) or {}
        there = ((found.get("status") or {}).get("placement") or {}).get(service)
        out[peer] = ("" if there and there == here else
                     f"absent: tenant {peer} has no {service} on Backend {here}" + (f" (it is on {there})" if there else ""))
    return out


_MONGO_REFUSED = (pymongo.errors.OperationFailure,)


def _mongo_probes(creds: dict[str, str], peers: dict[str, str]) -> dict[str, str]:
    def client(user: str) -> pymongo.MongoClient:
        uri = creds["MONGODB_URI"].replace(quote(creds["MONGODB_USERNAME"], safe=""), quote(user, safe=""), 1)
        return pymongo.MongoClient(uri, serverSelectionTimeoutMS=8000, connectTimeoutMS=8000, socketTimeoutMS=10000,
                                   retryWrites=False)

    out: dict[str, str] = {}
    mine = client(creds["MONGODB_USERNAME"])
    try:
        for peer, skip in peers.items():
            database = names.mongo_database(peer)
            if skip:
                out[f"probe mongodb database {database}"] = skip
                continue
            theirs = mine[database]

            def find(db: Any = theirs) -> str:
                # FerretDB lists every database's collections to anyone (docs/mongodb.md); reading one is the probe.
                found = db.list_collection_names()
                if not found:
                    return f"absent: database {db.name} holds no collection to read"
                db[found[0]].find_one()
                return ""

            def create(db: Any = theirs) -> str:
                db.create_collection(PROBE_NAME)
                try:
                    db.drop_collection(PROBE_NAME)
                except pymongo.errors.PyMongoError:
                    pass
                return ""

            login_as = names.mongo_login_role(peer, creds["MONGODB_USERNAME"][-1])

            def login(user: str = login_as, db: str = database) -> str:
                with client(user) as other:
                    other[db].list_collection_names()
                return ""

            for what, call in ((f"find in a collection of database {database}", find),
                               (f"create a collection in database {database}", create),
                               (f"log in as {login_as} with the tenant's password", login)):
                said, exc = "", None  # said: why there was nothing to probe
                try:
                    said = call()
                except pymongo.errors.OperationFailure as e:
                    exc = e
                out[f"probe mongodb {what}"] = said or _verdict(exc, _MONGO_REFUSED)
    finally:
        mine.close()
    return out


async def _mongodb(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    if not creds.get("MONGODB_URI"):
        return {"probe mongodb": "absent: the tenant has no MongoDB"}
    peers = await _same_backend(ctx, "mongodb")
    return _report(await asyncio.to_thread(_mongo_probes, creds, peers))


def _search_probes(creds: dict[str, str], peers: dict[str, str]) -> dict[str, str]:
    context = ssl.create_default_context(cadata=creds["SEARCH_CA_CERT"]) if creds.get("SEARCH_CA_CERT") else None
    client = OpenSearch(hosts=[creds["SEARCH_URL"]], http_auth=(creds["SEARCH_USERNAME"], creds["SEARCH_PASSWORD"]),
                        ssl_context=context, timeout=10, max_retries=0)
    out: dict[str, str] = {}
    try:
        for peer, skip in peers.items():
            prefix = names.search_prefix(peer)
            if skip:
                out[f"probe search indices {prefix}*"] = skip
                continue

            def create(index: str = prefix + PROBE_NAME) -> None:
                client.indices.create(index=index)
                try:
                    client.indices.delete(index=index)
                except NotFoundError:
                    pass

            for what, call in ((f"search indices {prefix}*", lambda p=prefix: client.search(index=f"{p}*")),
                               (f"create index {prefix}{PROBE_NAME}", create)):
                exc: BaseException | None = None
                try:
                    call()
                except AuthorizationException as e:
                    exc = e
                out[f"probe search {what}"] = _verdict(exc, (AuthorizationException,))
    finally:
        client.close()
    return out


async def _search(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    if not creds.get("SEARCH_URL"):
        return {"probe search": "absent: the tenant has no search"}
    peers = await _same_backend(ctx, "search")
    return _report(await asyncio.to_thread(_search_probes, creds, peers))


def steps(params: dict[str, str]) -> list[Step]:
    unknown = sorted(set(params) - {"peers"})
    if unknown:
        raise ValueError(f"verify-isolation takes only the parameter peers, got {', '.join(unknown)}")
    # A probe's verdict is final (retrying cannot make an allowed probe refused); retries cover a
    # server that did not answer.
    return [
        Step("choose-peers", _peers, timeout=30, retries=3),
        Step("probe-postgres", _postgres, timeout=120, retries=2),
        Step("probe-redis", _redis, timeout=60, retries=2),
        Step("probe-vault", _vault, timeout=60, retries=2),
        Step("probe-mongodb", _mongodb, timeout=120, retries=2),
        Step("probe-search", _search, timeout=60, retries=2),
    ]
