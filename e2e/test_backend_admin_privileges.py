"""Issue 19: a PostgreSQL Backend whose admin lacks one privilege docs/backend-admins.md lists goes Ready=False,
reason InsufficientPrivilege, naming it; never a retry loop. Found by a reviewer for CONNECT ON DATABASE postgres:
the Backend got no status at all while the probe and the changed handler retried `permission denied for database`."""

from __future__ import annotations

import os
import secrets

import pytest

from . import kube
from .admin import pg_admin
from .backends_fixtures import backend, secret
from .kube import condition, eventually, get, kubectl

# (what the admin lacks, the words the Backend's message must hold)
LACKS = [("CONNECT", "CONNECT"), ("CREATEROLE", "CREATEROLE"), ("pg_signal_backend", "pg_signal_backend")]


@pytest.mark.parametrize(("lacks", "named"), LACKS)
def test_a_postgres_admin_lacking_one_privilege_is_not_ready_and_names_it(backends, operator, lacks, named):
    role, password = f"r19_weak_{secrets.token_hex(3)}", secrets.token_hex(16)
    attrs = "LOGIN CREATEDB" + ("" if lacks == "CREATEROLE" else " CREATEROLE")
    pg_admin(f"CREATE ROLE \"{role}\" {attrs} PASSWORD '{password}'")
    if lacks != "pg_signal_backend":
        pg_admin(f'GRANT pg_signal_backend TO "{role}"')
    if lacks != "CONNECT":
        pg_admin(f'GRANT CONNECT ON DATABASE postgres TO "{role}"')
    name = f"r19-pg-{secrets.token_hex(3)}"
    try:
        kube.apply("\n---\n".join([secret(f"{name}-admin", {"username": role, "password": password}),
                                   backend(name, "postgres", int(os.environ["PGPORT"]), f"{name}-admin")]))

        def settled() -> dict | None:
            ready = condition(get("backend", name), "Ready")
            return ready if ready.get("status") in ("True", "False") and ready.get("reason") != "Probing" else None
        try:
            ready = eventually(settled, 60, 1, message="Backend Ready settled")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; Backend status: {(get('backend', name) or {}).get('status')}") from None
        assert ready.get("status") == "False" and named in ready.get("message", ""), (lacks, ready)
    finally:
        kubectl("delete", "backend", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "secret", f"{name}-admin", "-n", "tenancy-system", "--ignore-not-found", check=False)
        pg_admin(f'REVOKE CONNECT ON DATABASE postgres FROM "{role}"')
        pg_admin(f'DROP ROLE IF EXISTS "{role}"')
