"""MongoDB clients for e2e: a tenant's own (from its Secret) and the platform's PostgreSQL view of FerretDB."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pymongo


def mongo(creds: dict[str, str]) -> pymongo.MongoClient:
    """A fresh client from the tenant's MONGODB_URI, as its application would make one."""
    return pymongo.MongoClient(creds["MONGODB_URI"], serverSelectionTimeoutMS=4000, connectTimeoutMS=4000,
                               socketTimeoutMS=8000, retryWrites=False)


def ferret_pg(sql: str, *args):
    """A superuser statement in FerretDB's PostgreSQL database (the platform's `postgres` role)."""
    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), user=os.environ["PGUSER"],
                                     password=os.environ["PGPASSWORD"], database="ferretdb", timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def ferretdb_writes() -> int:
    """Rows inserted, updated or deleted in FerretDB's database (its tables and catalogs) and in the
    shared catalogs (roles, memberships, comments: PostgreSQL counts those under no database, for
    the whole server, so another tenant's role write counts too; at steady state there is none)."""
    row = ferret_pg("SELECT sum(tup_inserted + tup_updated + tup_deleted) AS n FROM pg_stat_database "
                    "WHERE datname = 'ferretdb' OR datid = 0")
    return int(row[0]["n"])


def purge_retained(*tenants: str) -> list[str]:
    """Drop what deleted Tenants of these names retained (an earlier run's Retain), through the adapter's
    own `delete`, which checks the ownership mark; a live Tenant's data is never touched."""
    import json

    from tenancy_operator.api import names
    from tenancy_operator.backends import mongodb
    from tenancy_operator.backends.base import Target

    from .backends_fixtures import ferretdb_admin
    from .kube import kubectl

    live = {t["metadata"]["name"] for t in json.loads(kubectl("get", "tenants", "-o", "json").stdout)["items"]}
    admin = ferretdb_admin()
    target = Target("mongo-main", "mongodb", "127.0.0.1", int(admin["port"]), admin["username"], admin["password"],
                    extra={k: admin[k] for k in ("postgresHost", "postgresPort", "postgresDatabase")})
    done: list[str] = []
    for tenant in tenants:
        if tenant in live:
            continue
        row = ferret_pg("SELECT shobj_description(oid, 'pg_authid') AS m FROM pg_roles WHERE rolname = $1",
                        names.mongo_owner_role(tenant))
        uid = names.parse_owner_mark(row[0]["m"]) if row else None
        if uid:
            done += asyncio.run(mongodb.delete(target, tenant, uid))
    return done


def ferretdb_binary() -> str:
    """The platform's FerretDB build (platform/lib.sh's cache path for the version in versions.env)."""
    from pathlib import Path

    versions = Path(__file__).resolve().parent.parent / "platform" / "versions.env"
    version = next(line.split("=", 1)[1].strip() for line in versions.read_text().splitlines()
                   if line.startswith("FERRETDB_VERSION="))
    cache = os.environ.get("TENANCY_CACHE") or os.path.expanduser("~/.cache/tenancy-operator")
    return f"{cache}/bin/ferretdb-{version}"


class private_ferretdb:  # noqa: N801 - used as a context manager, like open()
    """A second FerretDB process, started by the test on free ports against the platform's PostgreSQL
    database `ferretdb`: a fresh in-memory catalogue, as after a restart, without touching the
    platform's FerretDB. Yields its port; stopped (by its own pid) on exit."""

    def __enter__(self) -> int:
        import socket
        import subprocess
        import tempfile
        import time

        def free() -> int:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]

        self.port, debug = free(), free()
        self.state = tempfile.TemporaryDirectory(prefix="ferretdb-e2e-")
        self.proc = subprocess.Popen(
            [ferretdb_binary(), "--handler=postgresql",
             f"--postgresql-url=postgres://ferretdb_anonymous@{os.environ['PGHOST']}:{os.environ['PGPORT']}/ferretdb",
             f"--listen-addr=127.0.0.1:{self.port}", f"--debug-addr=127.0.0.1:{debug}", f"--state-dir={self.state.name}",
             "--telemetry=disable", "--log-level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self.port
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the test's own FerretDB did not listen within 15 s")

    def __exit__(self, *_exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.state.cleanup()
