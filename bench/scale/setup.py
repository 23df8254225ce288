"""The bench's own cluster pieces: CRDs, the chart's ServiceAccount, Backends with room, the operator process.

The operator runs as the e2e runs start it (e2e/conftest.py): a real process, authenticated with a
TokenRequest token of the chart's ServiceAccount (the chart's least-privilege RBAC), with the chart's
ConfigMap as its environment, one process (standalone, no peering heartbeats), a metrics port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from urllib.parse import urlparse

import yaml

from e2e import kube
from e2e.backends_fixtures import NAMESPACE, _vault_kubernetes_auth, admins_env, backend, secret

BACKENDS = {"postgres": "pg-main", "redis": "redis-main", "vault": "vault-main"}
POLICY_NAME = "scale-bench-delete"
# Reclaim Delete: a deleted bench tenant leaves nothing on the servers (Retain, the default, keeps data).
POLICY = json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                     "metadata": {"name": POLICY_NAME}, "spec": {"reclaim": "Delete"}})
# Settings the bench sets itself (the rest is the chart's ConfigMap).
_OWN_SETTINGS = ("TENANCY_VERIFY_INTERVAL", "TENANCY_LIVENESS", "TENANCY_RETRY_BASE", "TENANCY_RETRY_MAX",
                 "TENANCY_STANDALONE", "TENANCY_METRICS_PORT")


def crds() -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kube.REPO / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=tenancy-operator",
                 "--timeout=60s")
    kube.eventually(lambda: "tenants" in kube.kubectl("api-resources", "--api-group=tenancy.dev").stdout, 30)


def operator_kubeconfig() -> str:
    """Install the chart with 0 replicas (after `make demo` the node runs pods: a chart operator would
    reconcile the bench's tenants beside the bench's own process) and write a kubeconfig with its SA's token."""
    release = "tenancy-operator"
    kube.kubectl("apply", "-f", str(kube.REPO / "manifests" / "namespace.yaml"))
    helm = subprocess.run(["helm", "upgrade", "--install", release, str(kube.REPO / "charts" / "tenancy-operator"),
                           "--namespace", NAMESPACE, "--set", "replicaCount=0", "--wait=false", "--timeout=120s"],
                          capture_output=True, text=True, timeout=180)
    if helm.returncode != 0:
        raise RuntimeError(f"helm upgrade --install failed: {helm.stderr}")
    token = kube.kubectl("create", "token", release, "-n", NAMESPACE, "--duration=24h").stdout.strip()
    cluster = yaml.safe_load(open(os.environ["KUBECONFIG"]))["clusters"][0]["cluster"]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "local", "cluster": cluster}],
              "users": [{"name": "operator", "user": {"token": token}}],
              "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
              "current-context": "operator"}
    path = kube.STATE / "operator-bench.kubeconfig"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return str(path)


def operator(kubeconfig: str, verify_interval: float) -> kube.Operator:
    """The operator process, not started yet; its log is .platform/logs/operator-e2e.log."""
    out = kube.kubectl("get", "configmap", "tenancy-operator", "-n", NAMESPACE, "-o", "json").stdout
    settings = {k: v for k, v in (json.loads(out).get("data") or {}).items() if k not in _OWN_SETTINGS}
    settings["TENANCY_ARCHIVE_DIR"] = str(kube.STATE / "archives-bench")
    settings["TENANCY_OTLP_ENDPOINT"] = ""
    # Not on the port the platform's Prometheus scrapes every 5 s (e2e's pace): the bench scrapes at the
    # chart's ServiceMonitor interval itself (measure.Scraper), as a deployed operator is scraped.
    return kube.Operator(kubeconfig, verify_interval=verify_interval, extra_env=settings, scraped=False)


def scrape_interval() -> float:
    """Seconds between scrapes of the chart's ServiceMonitor (values.yaml `metrics.serviceMonitor.interval`)."""
    values = yaml.safe_load((kube.REPO / "charts" / "tenancy-operator" / "values.yaml").read_text())
    interval = str(values["metrics"]["serviceMonitor"]["interval"])
    parts = re.findall(r"(\d+)(ms|s|m|h)", interval)
    if not parts or "".join(n + u for n, u in parts) != interval:
        raise ValueError(f"metrics.serviceMonitor.interval {interval!r} is not a Prometheus duration like 30s or 1m30s")
    return sum(int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def backends(capacity: int) -> dict[str, str]:
    """pg-main, redis-main and vault-main on the platform's servers, each with room for `capacity` tenants."""
    redis = urlparse(os.environ["REDIS_URL"])
    admins = admins_env()
    kube.kubectl("create", "namespace", NAMESPACE, check=False)
    _vault_kubernetes_auth()  # the platform admin's part (the operator's policy may only read it)
    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret("pg-main-admin", {"username": admins["TENANCY_PG_ADMIN_USER"],
                                 "password": admins["TENANCY_PG_ADMIN_PASSWORD"]}),
        secret("redis-main-admin", {"username": admins["TENANCY_REDIS_ADMIN_USER"],
                                    "password": admins["TENANCY_REDIS_ADMIN_PASSWORD"]}),
        secret("vault-main-admin", {"roleId": admins["TENANCY_BAO_ROLE_ID"], "secretId": admins["TENANCY_BAO_SECRET_ID"]}),
        backend("pg-main", "postgres", int(os.environ["PGPORT"]), "pg-main-admin", capacity=capacity),
        backend("redis-main", "redis", redis.port, "redis-main-admin", capacity=capacity),
        backend("vault-main", "vault", urlparse(os.environ["VAULT_ADDR"]).port, "vault-main-admin", capacity=capacity),
        POLICY,
    ]))
    return BACKENDS


def wait_backends_ready() -> None:
    kube.kubectl("wait", "--for=condition=Ready", *[f"backend/{b}" for b in BACKENDS.values()], "--timeout=90s",
                 timeout=100)


def with_room(names: dict[str, str], tenants: int) -> None:
    """Raise each Backend's capacity to hold `tenants` more than it may already hold (the e2e smoke)."""
    for name in names.values():
        current = json.loads(kube.kubectl("get", "backend", name, "-o", "json").stdout)["spec"].get("capacity", 100)
        if current < tenants + 100:
            kube.kubectl("patch", "backend", name, "--type=merge", "-p",
                         json.dumps({"spec": {"capacity": tenants + current}}))
    kube.kubectl("apply", "-f", "-", input=POLICY)
