"""Backend objects for e2e: admin Secrets and Backends pointing at the platform's real servers."""

from __future__ import annotations

import base64
import json
import os
import secrets
from urllib.parse import urlparse

import hvac
import pytest
import yaml

from . import kube
from .pg_instance import PostgresInstance
from .retained import purge_retained_data_of_deleted_tenants

NAMESPACE = "tenancy-system"


def secret(name: str, data: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                       "type": "Opaque", "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def backend(name: str, type_: str, port: int, secret_name: str, capacity: int = 100) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Backend", "metadata": {"name": name},
                       "spec": {"type": type_, "endpoint": {"host": "127.0.0.1", "port": port},
                                "adminSecretRef": {"name": secret_name}, "capacity": capacity}})


def _vault_kubernetes_auth() -> None:
    """OpenBao's Kubernetes auth pointed at this cluster, as the platform admin (root token; the operator's
    policy may only read it), with a token reviewer: its own ServiceAccount with auth-delegator."""
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "openbao-auth", "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "openbao-auth-delegator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": [{"kind": "ServiceAccount", "name": "openbao-auth", "namespace": NAMESPACE}]},
    ]))
    token = kube.kubectl("create", "token", "openbao-auth", "-n", NAMESPACE, "--duration=48h").stdout.strip()
    admin = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    cluster = admin["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    root = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    root.session.trust_env = False
    root.write("auth/kubernetes/config", kubernetes_host=cluster["server"], kubernetes_ca_cert=ca,
               token_reviewer_jwt=token, disable_local_ca_jwt=True)


def admins_env() -> dict[str, str]:
    """The operator's least-privileged admins (platform/admins.sh writes .platform/admins.env)."""
    env_file = kube.STATE / "admins.env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: run platform/admins.sh (make up runs it)")
    pairs = (line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


@pytest.fixture(scope="session")
def backends(platform, crds, operator):
    """pg-main, redis-main and vault-main, Ready, with the least-privileged admins a cautious production
    install gives the operator (docs/backend-admins.md); tests inspect with the servers' superusers."""
    redis = urlparse(os.environ["REDIS_URL"])
    admins = admins_env()
    kube.kubectl("create", "namespace", NAMESPACE, check=False)
    _vault_kubernetes_auth()
    manifests = [
        secret("pg-main-admin", {"username": admins["TENANCY_PG_ADMIN_USER"],
                                 "password": admins["TENANCY_PG_ADMIN_PASSWORD"]}),
        secret("redis-main-admin", {"username": admins["TENANCY_REDIS_ADMIN_USER"],
                                    "password": admins["TENANCY_REDIS_ADMIN_PASSWORD"]}),
        secret("vault-main-admin", {"roleId": admins["TENANCY_BAO_ROLE_ID"], "secretId": admins["TENANCY_BAO_SECRET_ID"]}),
        backend("pg-main", "postgres", int(os.environ["PGPORT"]), "pg-main-admin"),
        backend("redis-main", "redis", redis.port, "redis-main-admin"),
        backend("vault-main", "vault", urlparse(os.environ["VAULT_ADDR"]).port, "vault-main-admin"),
    ]
    kube.kubectl("apply", "-f", "-", input="\n---\n".join(manifests))
    kube.kubectl("wait", "--for=condition=Ready", "backend/pg-main", "backend/redis-main", "backend/vault-main",
                 "--timeout=60s", timeout=70)
    # Tenants an earlier run left deleting finish first, then their retained data goes (see retained.py).
    try:
        kube.eventually(lambda: not any(t["metadata"].get("deletionTimestamp") for t in json.loads(
            kube.kubectl("get", "tenants", "-o", "json").stdout)["items"]), 60, 2, "earlier runs' tenants deleted")
    except AssertionError as exc:  # their UIDs are live, so their data is skipped below; not this run's concern
        print(f"\n{exc}")
    purged = purge_retained_data_of_deleted_tenants()
    if purged:
        print(f"\nremoved data retained from deleted tenants of earlier runs: {len(purged)} objects")
    return {"postgres": "pg-main", "redis": "redis-main", "vault": "vault-main"}


def search_env() -> dict[str, str]:
    """The platform's OpenSearch (platform/opensearch.sh writes .platform/opensearch.env)."""
    env_file = kube.STATE / "opensearch.env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: OpenSearch is not up (make up starts it)")
    pairs = (line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


@pytest.fixture(scope="session")
def search_backend(backends):
    """search-main: the platform's OpenSearch over TLS, its CA in the admin Secret, Ready."""
    env = search_env()
    ca = open(env["SEARCH_CA_FILE"]).read()
    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret("search-main-admin", {"username": env["SEARCH_ADMIN_USERNAME"],
                                     "password": env["SEARCH_ADMIN_PASSWORD"], "ca.crt": ca}),
        json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Backend", "metadata": {"name": "search-main"},
                    "spec": {"type": "search", "endpoint": {"host": "127.0.0.1", "port": int(urlparse(
                        env["SEARCH_URL"]).port or 0), "tls": True}, "adminSecretRef": {"name": "search-main-admin"}}}),
    ]))
    kube.kubectl("wait", "--for=condition=Ready", "backend/search-main", "--timeout=60s", timeout=70)
    return "search-main"


@pytest.fixture
def second_postgres(backends):
    """A second PostgreSQL server and its Backend `pg-second` (capacity 5); removed afterwards."""
    password = secrets.token_urlsafe(16)
    instance = PostgresInstance(port=kube.free_port(), password=password)
    instance.init()
    instance.start()
    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret("pg-second-admin", instance.operator_admin()),
        backend("pg-second", "postgres", instance.port, "pg-second-admin", capacity=5),
    ]))
    kube.kubectl("wait", "--for=condition=Ready", "backend/pg-second", "--timeout=60s", timeout=70)
    yield instance
    kube.kubectl("delete", "backend", "pg-second", "--ignore-not-found", check=False)
    instance.remove()


def ferretdb_admin() -> dict[str, str]:
    """The platform's FerretDB (platform/up.sh): its port and the admin role FerretDB passes through."""
    state = os.environ.get("TENANCY_PLATFORM_DIR", "")
    password = os.environ.get("FERRETDB_ADMIN_PASSWORD") or open(f"{state}/secrets/ferretdb-admin-password").read().strip()
    return {"port": os.environ.get("FERRETDB_PORT", "17017"), "username": os.environ.get("FERRETDB_ADMIN_USER", "ferretdb_admin"),
            "password": password, "postgresHost": "127.0.0.1", "postgresPort": os.environ["PGPORT"],
            "postgresDatabase": "ferretdb"}


@pytest.fixture(scope="session")
def mongo_backend(backends):
    """mongo-main: the platform's FerretDB, Ready."""
    admin = ferretdb_admin()
    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret("mongo-main-admin", {k: v for k, v in admin.items() if k != "port"}),
        backend("mongo-main", "mongodb", int(admin["port"]), "mongo-main-admin"),
    ]))
    kube.kubectl("wait", "--for=condition=Ready", "backend/mongo-main", "--timeout=60s", timeout=70)
    return "mongo-main"
