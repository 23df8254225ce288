"""`verify-isolation`: acting only with the tenant's own credentials, try to reach other tenants' data.

Every attempt must be refused by the server itself. Each probe lands in the run's outputs as
`probe <service> <what>` = `refused: <the server's error>`, `ALLOWED`, or `absent: ...` (the other
tenant's object is not on this server, so there is nothing to reach there). Any ALLOWED probe fails
the step (and the run) with a message naming the probes; the handler then raises a Warning Event,
the `tenancy_isolation_probes_allowed` metric and, through the chart's rules, an alert.

Services: `kube` (the operator's Kubernetes API module, with `token` for a ServiceAccount token),
`poll`, `namespace` (the run's namespace) and `target(backend)` (a Backend's Target). Only the
username, password (and, for OpenBao, the role) come from the tenant's `tenant-credentials` Secret, and
they never leave this module (nothing secret goes to outputs or logs). Where a probe connects (host,
port, TLS, URL) comes from the Backend recorded in the Tenant's `status.placement` for that service,
never from the Secret: the tenant owner can edit that Secret, and an address taken from it would let
them aim the probes at a server that lets everything in (a false breach), refuses everything (a hidden
one), or any host the operator can reach. A Secret whose endpoint keys differ from the placement's is
noted (`secret <service>`: which keys; the probes still went to the placed Backend). Before probing, the
tenant's own login must work on its own data (PostgreSQL, Redis, MongoDB): a password edited to a wrong one
would otherwise make every probe look refused; the step fails instead, saying so.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import hvac
import hvac.exceptions
import redis.asyncio as aioredis
import redis.exceptions

from ..api import names
from ..backends.base import Target
from .engine import Step, StepContext, StepFailed

if TYPE_CHECKING:
    import pymongo

# The MongoDB and search clients are imported by the probes that use them (backends/lazy_modules.py says why).

__all__ = ["steps", "SECRET", "APP_ACCOUNT", "ALLOWED", "allowed_probes", "MAX_PEERS", "PROBE_NAME", "Where",
           "published", "secret_differs", "where"]

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


def published(service: str, target: Target) -> dict[str, str]:
    """The endpoint keys the adapter writes into `tenant-credentials` for `target` (backends/*.py `endpoints`)."""
    scheme, host, port = "https" if target.tls else "http", target.app_host, str(target.port)
    return {"postgres": {"PGHOST": host, "PGPORT": port},
            "redis": {"REDIS_HOST": host, "REDIS_PORT": port},
            "vault": {"VAULT_ADDR": f"{scheme}://{host}:{port}"},
            "mongodb": {"MONGODB_HOST": host, "MONGODB_PORT": port},
            "search": {"SEARCH_URL": f"{scheme}://{host}:{port}"}}[service]


def secret_differs(service: str, target: Target, creds: dict[str, str]) -> str:
    """'' when the Secret's endpoint keys for `service` are what `target` gives, else which keys differ."""
    wrong = sorted(k for k, v in published(service, target).items() if creds.get(k) != v)
    return (f"Secret {SECRET} differs from Backend {target.name} in {', '.join(wrong)}; not used: the probes went "
            f"to Backend {target.name}" if wrong else "")


@dataclass(frozen=True)
class Where:
    """Where the probes of one service connect: the placed Backend's own address (the operator's route to it)."""

    backend: str
    host: str
    port: int
    tls: bool
    ca: str = ""
    note: str = ""
    """'' or how the tenant's Secret differs from this Backend (secret_differs)."""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def where(service: str, target: Target, creds: dict[str, str]) -> Where:
    return Where(target.name, target.host, target.port, target.tls, target.extra.get("ca.crt", "") if target.tls else "",
                 secret_differs(service, target, creds))


async def _where(ctx: StepContext, service: str, creds: dict[str, str]) -> Where | None:
    """The placed Backend of `service` (None: the tenant has none placed)."""
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant) or {}
    backend = ((tenant.get("status") or {}).get("placement") or {}).get(service)
    if not backend:
        return None
    return where(service, await ctx.services.target(backend), creds)


def _noted(service: str, place: Where, out: dict[str, str]) -> dict[str, str]:
    return {**out, f"secret {service}": place.note} if place.note else out


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
    place = await _where(ctx, "postgres", creds) if creds.get("PGUSER") else None
    if place is None:
        return {"probe postgres": "absent: the tenant has no PostgreSQL"}

    async def connect(database: str) -> None:
        conn = await asyncpg.connect(host=place.host, port=place.port, user=creds["PGUSER"], password=creds["PGPASSWORD"],
                                     database=database, timeout=10, ssl="require" if place.tls else None)
        await conn.close()

    own = names.pg_database(ctx.tenant)
    try:
        await connect(own)
    except asyncpg.PostgresError as e:  # a refusal here would make every probe look refused
        raise RuntimeError(f"the tenant's own login to database {own} on Backend {place.backend} fails "
                           f"({type(e).__name__}); the probes would prove nothing") from None
    out: dict[str, str] = {}
    for peer in ctx.outputs["peers"].split(","):
        database = names.pg_database(peer)
        exc: BaseException | None = None
        try:
            await connect(database)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            exc = e
        out[f"probe postgres connect to database {database}"] = _verdict(
            exc, (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidAuthorizationSpecificationError),
            (asyncpg.InvalidCatalogNameError,))
    return _report(_noted("postgres", place, out))


async def _redis(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    place = await _where(ctx, "redis", creds) if creds.get("REDIS_USERNAME") else None
    if place is None:
        return {"probe redis": "absent: the tenant has no Redis"}
    client = aioredis.Redis(host=place.host, port=place.port, username=creds["REDIS_USERNAME"],
                            password=creds["REDIS_PASSWORD"], ssl=place.tls, socket_timeout=10)
    out: dict[str, str] = {}
    try:
        try:
            await client.get(f"{names.redis_prefix(ctx.tenant)}probe")
        except (redis.exceptions.ResponseError, redis.exceptions.AuthenticationError) as e:  # else every probe looks refused
            raise RuntimeError(f"the tenant's own Redis user fails on Backend {place.backend} ({type(e).__name__}); "
                               "the probes would prove nothing") from None
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
    return _report(_noted("redis", place, out))


def _vault_probes(place: Where, role: str, jwt: str, peers: list[str]) -> dict[str, str]:
    client = hvac.Client(url=place.url, timeout=10)  # TLS checked against the system's CAs, as backends/vault_login
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
    place = await _where(ctx, "vault", creds) if creds.get("VAULT_ROLE") else None
    if place is None:
        return {"probe vault": "absent: the tenant has no OpenBao"}
    jwt = await ctx.services.kube.token(APP_ACCOUNT, names.namespace(ctx.tenant))
    # The role is the tenant's own (names.vault_policy); the Secret's may have been edited.
    out = await asyncio.to_thread(_vault_probes, place, names.vault_policy(ctx.tenant), jwt,
                                  ctx.outputs["peers"].split(","))
    return _report(_noted("vault", place, out))


async def _same_backend(ctx: StepContext, service: str) -> dict[str, str]:
    """Each peer -> why it is not probed for `service` ('' when it is: placed on the tenant's own Backend)."""
    mine = await ctx.services.kube.get("Tenant", ctx.tenant) or {}
    here = ((mine.get("status") or {}).get("placement") or {}).get(service)
    out: dict[str, str] = {}
    for peer in ctx.outputs["peers"].split(","):
        found = await ctx.services.kube.get("Tenant", peer) or {}
        there = ((found.get("status") or {}).get("placement") or {}).get(service)
        # Not where the peer is: a run from a tenant namespace must not map the other tenants' placement.
        out[peer] = "" if there and there == here else f"absent: tenant {peer} has no {service} on Backend {here}"
    return out


def _mongo_probes(place: Where, tenant: str, creds: dict[str, str], peers: dict[str, str]) -> dict[str, str]:
    import pymongo
    import pymongo.errors

    from ..backends.mongodb import mongodb_uri

    def client(user: str) -> pymongo.MongoClient:
        uri = mongodb_uri(user, creds["MONGODB_PASSWORD"], place.host, place.port, names.mongo_database(tenant), place.tls)
        return pymongo.MongoClient(uri, serverSelectionTimeoutMS=8000, connectTimeoutMS=8000, socketTimeoutMS=10000,
                                   retryWrites=False)

    out: dict[str, str] = {}
    mine = client(creds["MONGODB_USERNAME"])
    try:
        own = names.mongo_database(tenant)
        try:
            mine[own].list_collection_names()
        except pymongo.errors.PyMongoError as e:  # a refusal here would make every probe look refused
            raise RuntimeError(f"the tenant's own MongoDB login to database {own} on Backend {place.backend} fails "
                               f"({type(e).__name__}); the probes would prove nothing") from None
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
                out[f"probe mongodb {what}"] = said or _verdict(exc, (pymongo.errors.OperationFailure,))
    finally:
        mine.close()
    return out


async def _mongodb(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    place = await _where(ctx, "mongodb", creds) if creds.get("MONGODB_USERNAME") else None
    if place is None:
        return {"probe mongodb": "absent: the tenant has no MongoDB"}
    peers = await _same_backend(ctx, "mongodb")
    return _report(_noted("mongodb", place, await asyncio.to_thread(_mongo_probes, place, ctx.tenant, creds, peers)))


def _search_probes(place: Where, creds: dict[str, str], peers: dict[str, str]) -> dict[str, str]:
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import AuthorizationException, NotFoundError

    context = ssl.create_default_context(cadata=place.ca or None) if place.tls else None
    client = OpenSearch(hosts=[place.url], http_auth=(creds["SEARCH_USERNAME"], creds["SEARCH_PASSWORD"]),
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

            # allow_no_indices=false: a pattern that matches no index answers 404, not an empty 200 that
            # would read as "allowed" (the peer has no index yet, so there is nothing to read).
            for what, call in ((f"search indices {prefix}*",
                                lambda p=prefix: client.search(index=f"{p}*", params={"allow_no_indices": "false"})),
                               (f"create index {prefix}{PROBE_NAME}", create)):
                exc: BaseException | None = None
                try:
                    call()
                except (AuthorizationException, NotFoundError) as e:
                    exc = e
                out[f"probe search {what}"] = _verdict(exc, (AuthorizationException,), (NotFoundError,))
    finally:
        client.close()
    return out


async def _search(ctx: StepContext) -> dict[str, str]:
    creds = await _credentials(ctx)
    place = await _where(ctx, "search", creds) if creds.get("SEARCH_USERNAME") else None
    if place is None:
        return {"probe search": "absent: the tenant has no search"}
    peers = await _same_backend(ctx, "search")
    return _report(_noted("search", place, await asyncio.to_thread(_search_probes, place, creds, peers)))


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
