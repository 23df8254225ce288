"""Issue 19: the operator works with least-privileged admins, and those admins are refused the rest.

Every Backend of the suite already uses them (e2e/backends_fixtures.py, platform/admins.sh); here
the servers themselves prove what the operator's credentials cannot do, and that a weaker admin is
reported by name.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from urllib.parse import urlparse

import asyncpg
import hvac
import pytest
import redis
from tenancy_operator.api import names

from . import kube
from .admin import pg_admin, vault_admin
from .backends_fixtures import admins_env, backend, secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client


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


def _tenant_with_a_table(prefix: str, table: str, cleanup_tenants: list[str]) -> tuple[str, dict[str, str]]:
    """A Ready PostgreSQL tenant whose own login made `table` holding one row, 'tenant only'."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, postgres={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    creds = credentials(name)
    pg(creds, f"CREATE TABLE {table} (body text)")
    pg(creds, f"INSERT INTO {table} VALUES ('tenant only')")
    return name, creds


def test_postgres_admin_is_refused_tenant_data_verifiers_and_superuser(backends, operator, cleanup_tenants):
    name, creds = _tenant_with_a_table("lp-pg", "secret_notes", cleanup_tenants)
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


RECLAIM_DELETE = ('{"apiVersion":"tenancy.dev/v1alpha1","kind":"LifecyclePolicy","metadata":{"name":"reclaim-delete"},'
                  '"spec":{"reclaim":"Delete"}}')
REDIS_RULES = kube.REPO / "platform" / "admins" / "redis-operator.rules"
REFUSED_REDIS = [("CONFIG", "GET", "maxmemory"), ("FLUSHALL",), ("DEBUG", "SLEEP", "0"), ("MODULE", "LIST"),
                 ("SHUTDOWN", "NOSAVE")]


def redis_operator_rules() -> list[str]:
    """The rules platform/admins.sh gives the operator's ACL user (first word of each line, comments off)."""
    return [line.split("#", 1)[0].split()[0] for line in REDIS_RULES.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of our own on a free port, its `default` user disabled, the operator's user made
    as platform/admins.sh makes it. Yields (port, username, password)."""
    port, root, password = kube.free_port(), secrets.token_hex(16), secrets.token_hex(16)
    conf = tmp_path / "redis.conf"
    conf.write_text(f"bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly no\nrequirepass {root}\n"
                    f"dir {tmp_path}\nenable-debug-command no\n")
    conf.chmod(0o600)
    proc = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        boot = redis.Redis(host="127.0.0.1", port=port, password=root, socket_timeout=5)
        eventually(lambda: boot.ping(), 10, 0.2, message="private redis-server up")
        boot.execute_command("ACL", "SETUSER", "tenancy-operator", "reset", "on", f">{password}",
                             *redis_operator_rules())
        # A weaker admin: the same rules but one (no CLIENT KILL).
        boot.execute_command("ACL", "SETUSER", "weak-operator", "reset", "on", f">{password}",
                             *[r for r in redis_operator_rules() if r != "+client|kill"])
        boot.execute_command("ACL", "SETUSER", "default", "off")  # from here on only named users log in
        boot.close()
        yield port, "tenancy-operator", password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_operator_user_works_with_default_disabled_and_is_refused_the_rest(backends, operator, cleanup_tenants,
                                                                                 private_redis):
    port, user, password = private_redis
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()  # `default` is off
    name, tenant = f"redis-lp-{secrets.token_hex(3)}", f"lp-rd-{secrets.token_hex(3)}"
    try:
        kube.apply("\n---\n".join([secret(f"{name}-admin", {"username": user, "password": password}),
                                   backend(name, "redis", port, f"{name}-admin")]))
        kubectl("wait", "--for=condition=Ready", f"backend/{name}", "--timeout=60s", timeout=70)
        cleanup_tenants.append(tenant)
        kube.apply(RECLAIM_DELETE)
        kube.apply(tenant_yaml(tenant, redis={"enabled": True, "backend": name}, lifecyclePolicyRef="reclaim-delete"))
        kubectl("wait", "--for=condition=Ready", f"tenant/{tenant}", "--timeout=60s", timeout=70)
        creds = credentials(tenant)
        assert int(creds["REDIS_PORT"]) == port
        app = redis_client(creds)
        app.set(f"t:{tenant}:greeting", "hello")
        assert app.get(f"t:{tenant}:greeting") == "hello"
        operator_user = redis.Redis(host="127.0.0.1", port=port, username=user, password=password, socket_timeout=5)
        for command in REFUSED_REDIS:
            # DEBUG is refused before the ACL is looked at (enable-debug-command is off by default);
            # DRYRUN shows the ACL refuses it (and every other one) all the same.
            with pytest.raises(redis.exceptions.ResponseError):
                operator_user.execute_command(*command)
            assert b"no permissions" in operator_user.execute_command("ACL", "DRYRUN", user, *command), command
        assert operator_user.ping()  # still up: SHUTDOWN was refused
        # The shared server's operator user too (CONFIG, DEBUG, MODULE only: the others would hurt
        # every other test if a wrong rule let them through).
        admins = admins_env()
        shared = redis.Redis(host="127.0.0.1", port=int(urlparse(os.environ["REDIS_URL"]).port or 0),
                             username=admins["TENANCY_REDIS_ADMIN_USER"], password=admins["TENANCY_REDIS_ADMIN_PASSWORD"],
                             socket_timeout=5)
        for command in REFUSED_REDIS[:1] + REFUSED_REDIS[2:4]:
            with pytest.raises(redis.exceptions.ResponseError):
                shared.execute_command(*command)
        for command in REFUSED_REDIS:
            assert b"no permissions" in shared.execute_command("ACL", "DRYRUN", admins["TENANCY_REDIS_ADMIN_USER"],
                                                               *command), command
        # The weaker admin's Backend is not Ready and names the command it may not run.
        kube.apply("\n---\n".join([secret(f"{name}-weak-admin", {"username": "weak-operator", "password": password}),
                                   backend(f"{name}-weak", "redis", port, f"{name}-weak-admin")]))
        weak = eventually(lambda: (c := condition(get("backend", f"{name}-weak"), "Ready")).get("reason") ==
                          "InsufficientPrivilege" and c, 30, 1, message="weaker Redis admin reported")
        assert weak["status"] == "False" and "CLIENT KILL" in weak["message"], weak
        # Offboarding works with the operator's user too: the tenant's ACL user and keys go.
        kubectl("delete", "tenant", tenant, "--timeout=60s", timeout=70)
        assert operator_user.execute_command("ACL", "GETUSER", f"tenant:{tenant}") is None
        assert operator_user.execute_command("TYPE", f"t:{tenant}:greeting") == b"none"
    finally:
        kubectl("delete", "tenant", tenant, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "backend", name, f"{name}-weak", "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "secret", f"{name}-admin", f"{name}-weak-admin", "-n", "tenancy-system", "--ignore-not-found",
                check=False)


def _operator_bao_token() -> hvac.Client:
    admins = admins_env()
    client = hvac.Client(url=os.environ["VAULT_ADDR"])
    client.session.trust_env = False
    client.auth.approle.login(role_id=admins["TENANCY_BAO_ROLE_ID"], secret_id=admins["TENANCY_BAO_SECRET_ID"])
    return client


def test_openbao_operator_token_is_refused_raw_storage_other_policies_and_mounts(backends, operator):
    client = _operator_bao_token()
    assert client.lookup_token()["data"]["policies"] == ["tenancy-operator"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client.read("sys/raw/core/master")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.create_or_update_policy(f"lp-not-a-tenant-{secrets.token_hex(3)}", 'path "*" { capabilities = ["sudo"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.enable_secrets_engine("kv", path=f"lp-{secrets.token_hex(3)}")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.read(f"tenants-elsewhere/data/{secrets.token_hex(3)}")
    # What tenants need it may do: every Tenant of the suite on vault-main is made with this AppRole.
    assert condition(get("backend", "vault-main"), "Ready")["status"] == "True"


def test_openbao_approle_token_renews_itself_and_is_replaced_before_it_expires(backends, operator, cleanup_tenants):
    """A role whose tokens live 4 s and at most 10 s: the Backend stays Ready past both, and a tenant made
    after them is Ready (a token held past its maximum would be refused: 403)."""
    root = vault_admin()
    role = f"lp-short-{secrets.token_hex(3)}"
    root.write(f"auth/approle/role/{role}", token_policies="tenancy-operator", token_no_default_policy=True,
               token_ttl="4s", token_max_ttl="10s")
    role_id = root.read(f"auth/approle/role/{role}/role-id")["data"]["role_id"]
    secret_id = root.write(f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
    name = f"vault-lp-{secrets.token_hex(3)}"
    vault = urlparse(os.environ["VAULT_ADDR"])
    try:
        kube.apply("\n---\n".join([secret(f"{name}-admin", {"roleId": role_id, "secretId": secret_id}),
                                   backend(name, "vault", int(vault.port or 0), f"{name}-admin")]))
        kubectl("wait", "--for=condition=Ready", f"backend/{name}", "--timeout=60s", timeout=70)
        since = condition(get("backend", name), "Ready")["lastTransitionTime"]
        time.sleep(12)  # past the first token's lease (4 s) and its maximum (10 s)
        ready = condition(get("backend", name), "Ready")
        assert ready["status"] == "True" and ready["lastTransitionTime"] == since, ready
        tenant = f"lp-vr-{secrets.token_hex(3)}"
        cleanup_tenants.append(tenant)
        kube.apply(tenant_yaml(tenant, vault={"enabled": True, "backend": name}))
        kubectl("wait", "--for=condition=Ready", f"tenant/{tenant}", "--timeout=60s", timeout=70)
        kubectl("delete", "tenant", tenant, "--timeout=60s", timeout=70)
    finally:
        kubectl("delete", "backend", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "secret", f"{name}-admin", "-n", "tenancy-system", "--ignore-not-found", check=False)
        root.delete(f"auth/approle/role/{role}")


def test_a_membership_left_by_a_killed_pass_is_revoked(backends, operator, cleanup_tenants):
    """A pass killed between joining the tenant's owner role and leaving it (creation, export) left the
    admin a member: its login then read the tenant's data. The next verify pass revokes it, once."""
    name, creds = _tenant_with_a_table("lp-left", "notes", cleanup_tenants)
    admin = admins_env()["TENANCY_PG_ADMIN_USER"]
    owner = names.pg_owner_role(name)
    # What the killed pass left behind: GRANT <owner> TO <admin>, made by the admin itself.
    _as_operator_pg(f'GRANT "{owner}" TO CURRENT_USER')
    assert _as_operator_pg("SELECT body FROM notes", database=creds["PGDATABASE"])[0]["body"] == "tenant only"

    def member() -> bool:
        return pg_admin("SELECT pg_has_role($1, $2, 'USAGE')", admin, owner)[0][0]

    started = time.monotonic()
    eventually(lambda: not member(), timeout=30, message=f"{admin} still a member of {owner}")
    print(f"\nleft-over membership of {admin} in {owner} revoked {time.monotonic() - started:.1f} s after it was made")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied for database"):
        _as_operator_pg("SELECT body FROM notes", database=creds["PGDATABASE"])
    events = " ".join(e["message"] for e in kube.object_events("Tenant", name, reason="DriftRepaired"))
    assert f"admin membership in {owner}" in events, events
    assert kube.condition(get("tenant", name), "Ready")["status"] == "True"
