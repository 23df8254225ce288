"""e2e: the real local API server (make up). Missing platform is a failure, never a skip."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
import yaml

from . import kube
from .backends_fixtures import backends, mongo_backend, search_backend, second_postgres  # noqa: F401  (fixtures)
from .secrets_watch import RunRecord

pytestmark = pytest.mark.e2e

ARCHIVE_DIR = kube.STATE / "archives-e2e"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    # e2e/chaos/ restarts platform parts (Redis and OpenBao come back empty). pytest would collect the folder
    # before e2e/test_*.py; it runs after them instead, just before the test_z* files (zx reads every log of
    # the run, chaos's included; zz stops and starts the whole platform last).
    chaos = [item for item in items if "/e2e/chaos/" in str(item.fspath)]
    if chaos:
        rest = [item for item in items if item not in chaos]
        at = next((n for n, item in enumerate(rest) if "/e2e/test_z" in str(item.fspath)), len(rest))
        items[:] = rest[:at] + chaos + rest[at:]


@pytest.fixture(scope="session")
def platform():
    env = kube.load_platform_env()
    os.environ.update(env)
    kube.kubectl("get", "--raw", "/readyz")
    return env


@pytest.fixture(scope="session", autouse=True)
def run_record(platform):
    """Log offsets at the start and every Secret value seen during the run (e2e/test_zx_logs_have_no_secrets.py)."""
    record = RunRecord(kube.STATE / "logs")
    record.start()
    yield record
    record.stop()


@pytest.fixture(scope="session")
def crds(platform):
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kube.REPO / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=tenancy-operator",
                 "--timeout=60s")
    # Discovery caches in kubectl can lag a fresh CRD by a moment.
    kube.eventually(lambda: "tenants" in kube.kubectl("api-resources", "--api-group=tenancy.dev").stdout, 30)
    # The OpenAPI document (kubectl explain, client-side validation) follows a new CRD a few seconds
    # after discovery does: seen failing once on a fresh platform.
    kube.eventually(lambda: kube.kubectl("explain", "tenant.spec", check=False).returncode == 0, 60,
                    message="the CRDs' OpenAPI schema published")


@pytest.fixture(scope="session")
def operator_kubeconfig(platform, crds) -> str:
    """A kubeconfig holding a TokenRequest token of the chart's own ServiceAccount, after installing the
    chart: the operator runs with exactly the chart's least-privilege RBAC (no cluster-admin anywhere).

    Installed with 0 replicas: its pods would wait Pending for a node, and the platform keeps etcd across
    `make down`/`make up`, so once `TENANCY_NODE=1 make up` brought the node and e2e/test_node_chart.py
    imported the image, they started and joined the chart test's peering (CI failed on exactly that)."""
    release, namespace = "tenancy-operator", "tenancy-system"
    kube.kubectl("apply", "-f", str(kube.REPO / "manifests" / "namespace.yaml"))
    helm = subprocess.run(["helm", "upgrade", "--install", release, str(kube.REPO / "charts" / "tenancy-operator"),
                           "--namespace", namespace, "--set", "replicaCount=0", "--wait=false", "--timeout=120s"],
                          capture_output=True, text=True, timeout=180)
    assert helm.returncode == 0, f"helm upgrade --install failed: {helm.stderr}"
    token = kube.kubectl("create", "token", release, "-n", namespace, "--duration=24h").stdout.strip()
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


def chart_settings() -> dict[str, str]:
    """The environment the chart gives the operator (its ConfigMap), as the Deployment would."""
    out = kube.kubectl("get", "configmap", "tenancy-operator", "-n", "tenancy-system", "-o", "json").stdout
    return dict(json.loads(out).get("data") or {})


@pytest.fixture(scope="session")
def operator(operator_kubeconfig):
    # Test speed-ups and one process instead of the chart's two peering replicas (whose heartbeats
    # would write to the API server while other tests count writes).
    settings = {k: v for k, v in chart_settings().items()
                if k not in ("TENANCY_VERIFY_INTERVAL", "TENANCY_LIVENESS", "TENANCY_RETRY_BASE", "TENANCY_RETRY_MAX",
                             "TENANCY_STANDALONE", "TENANCY_METRICS_PORT")}
    # `make soak` verifies less often (TENANCY_E2E_VERIFY_INTERVAL): 200 tenants every 3 s would load the machine.
    interval = float(os.environ.get("TENANCY_E2E_VERIFY_INTERVAL") or 3)
    # Archives go to a folder of the platform state (the chart mounts a PersistentVolumeClaim instead);
    # the retention purge runs every 5 s so a 1-minute retention is seen on time.
    settings |= {"TENANCY_ARCHIVE_DIR": str(ARCHIVE_DIR), "TENANCY_ARCHIVE_PURGE_INTERVAL": "5"}
    # As the chart's volume is: there before the first archive (tests list it before any was made;
    # `make lifecycle-faults` alone failed on a missing folder).
    ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
    # Traces to the platform's Jaeger, so every e2e run (the idle zero-writes test too) has tracing on.
    settings["TENANCY_OTLP_ENDPOINT"] = os.environ.get("JAEGER_OTLP_URL", "")
    # The audit trail is on in every e2e run (the idle test counts zero writes with it); heads are signed
    # 3 s after changes rather than minutes, so a run's last changes are signed before anyone counts.
    settings |= {"TENANCY_AUDIT_BACKEND": "pg-main", "TENANCY_AUDIT_SIGNER": "vault-main",
                 "TENANCY_AUDIT_SIGN_INTERVAL": "3"}
    op = kube.Operator(operator_kubeconfig, verify_interval=interval, extra_env=settings)
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
