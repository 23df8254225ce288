"""e2e: the real local API server (make up). Missing platform is a failure, never a skip."""

from __future__ import annotations

import base64
import json
import os

import pytest
import yaml

from . import kube
from .backends_fixtures import backends, second_postgres  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def platform():
    env = kube.load_platform_env()
    os.environ.update(env)
    kube.kubectl("get", "--raw", "/readyz")
    return env


@pytest.fixture(scope="session")
def crds(platform):
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kube.REPO / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=tenancy-operator",
                 "--timeout=60s")
    # Discovery caches in kubectl can lag a fresh CRD by a moment.
    kube.eventually(lambda: "tenants" in kube.kubectl("api-resources", "--api-group=tenancy.dev").stdout, 30)


@pytest.fixture(scope="session")
def operator_kubeconfig(platform, crds) -> str:
    """A kubeconfig holding a token of the operator's own ServiceAccount (TokenRequest)."""
    kube.kubectl("apply", "-f", str(kube.REPO / "e2e" / "fixtures" / "operator-identity.yaml"))
    token = kube.kubectl("create", "token", "tenancy-operator", "-n", "tenancy-system", "--duration=24h").stdout.strip()
    admin = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
        "current-context": "operator",
    }
    path = kube.STATE / "operator-e2e.kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="session")
def operator(operator_kubeconfig):
    op = kube.Operator(operator_kubeconfig)
    op.start()
    yield op
    op.stop()


@pytest.fixture
def cleanup_tenants(platform):
    """Names appended here are deleted after the test, whatever happened."""
    created: list[str] = []
    yield created
    for name in created:
        kube.kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
