"""Issue 19: the operator works with least-privileged admins, and those admins are refused the rest.

Every Backend of the suite already uses them (e2e/backends_fixtures.py, platform/admins.sh); here
the servers themselves prove what the operator's credentials cannot do, and that a weaker admin is
reported by name.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import asyncpg
import pytest

from . import kube
from .admin import pg_admin
from .backends_fixtures import admins_env, backend, secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg


def _as_operator_pg(sql: str, database: str = "postgres"):
    admins = admins_env()

    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), database=database,
                                     user=admins["TENANCY_PG_ADMIN_USER"], password=admins["TENANCY_PG_ADMIN_PASSWORD"],
                                     timeout=5)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()
    return asyncio.run(go())


def test_postgres_admin_is_refused_tenant_data_verifiers_and_superuser(backends, operator, cleanup_tenants):
    name = f"lp-pg-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, postgres={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    creds = credentials(name)
    pg(creds, "CREATE TABLE secret_notes (body text)")
    pg(creds, "INSERT INTO secret_notes VALUES ('tenant only')")
    admin = admins_env()["TENANCY_PG_ADMIN_USER"]
    assert tuple(pg_admin("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1", admin)[0]) == (
        False, True, True)
    assert not pg_admin("SELECT pg_has_role($1, 'pg_read_all_data', 'MEMBER')", admin)[0][0]
    # Not a member of the tenant's roles once the tenant is made: its database is closed to it.
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied for database"):
        _as_operator_pg("SELECT body FROM secret_notes", database=creds["PGDATABASE"])
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="pg_authid"):
        _as_operator_pg("SELECT rolpassword FROM pg_authid")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="superuser"):
        _as_operator_pg(f'CREATE ROLE "lp_evil_{secrets.token_hex(3)}" SUPERUSER')

    # Password drift without pg_authid: someone sets the login role's password; the operator's
    # login check sees it and sets the Secret's again, and then leaves the verifier alone.
    role = creds["PGUSER"]
    verifier = pg_admin("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)[0][0]
    pg_admin(f'ALTER ROLE "{role}" PASSWORD \'{secrets.token_hex(8)}\'')
    eventually(lambda: _login_works(creds), operator.verify_interval * 2 + 10, 1, message="password put back")
    settled = pg_admin("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)[0][0]
    assert settled != verifier  # a new salt: it was written again
    time.sleep(operator.verify_interval * 2 + 1)
    assert pg_admin("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)[0][0] == settled, \
        "steady state rewrote the password"


def _login_works(creds: dict[str, str]) -> bool:
    try:
        return pg(creds, "SELECT 1")[0][0] == 1
    except asyncpg.exceptions.InvalidPasswordError:
        return False


def test_a_backend_whose_admin_lacks_createdb_is_not_ready_and_names_it(backends, operator):
    role, password = f"lp_weak_{secrets.token_hex(3)}", secrets.token_hex(16)
    pg_admin(f"CREATE ROLE \"{role}\" LOGIN CREATEROLE PASSWORD '{password}'")
    pg_admin(f'GRANT pg_signal_backend TO "{role}"')
    pg_admin(f'GRANT CONNECT ON DATABASE postgres TO "{role}"')
    name = f"pg-weak-{secrets.token_hex(3)}"
    try:
        kube.apply("\n---\n".join([secret(f"{name}-admin", {"username": role, "password": password}),
                                   backend(name, "postgres", int(os.environ["PGPORT"]), f"{name}-admin")]))

        def refused() -> dict | None:
            ready = condition(get("backend", name), "Ready")
            return ready if ready.get("reason") == "InsufficientPrivilege" else None
        ready = eventually(refused, 30, 1, message="Backend Ready=False InsufficientPrivilege")
        assert ready["status"] == "False"
        assert "lacks CREATEDB" in ready["message"], ready["message"]
        # Given the privilege, the same admin is enough.
        pg_admin(f'ALTER ROLE "{role}" CREATEDB')
        eventually(lambda: condition(get("backend", name), "Ready").get("status") == "True", 30, 1,
                   message="Backend Ready once the admin has CREATEDB")
    finally:
        kubectl("delete", "backend", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "secret", f"{name}-admin", "-n", "tenancy-system", "--ignore-not-found", check=False)
        pg_admin(f'REVOKE CONNECT ON DATABASE postgres FROM "{role}"')
        pg_admin(f'DROP ROLE IF EXISTS "{role}"')
