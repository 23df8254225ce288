"""The Kubernetes API as one more backend: read, create, patch and delete plain-dict objects.

We speak REST by path with aiohttp on kopf's event loop (one keep-alive session per loop), using the
official client only to load kubeconfig or in-cluster settings: reconcile/ produces plain dicts, and
one small table of paths serves every kind we own, whatever the generated client's API looks like.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

import aiohttp
from kubernetes import client, config

from .loop_sessions import LoopSessions

__all__ = ["KubeError", "NotFound", "Conflict", "connect", "get", "create", "merge_patch", "delete", "list_objects",
           "path_for", "served", "token", "close"]

# kind -> (api prefix, plural, namespaced)
_PATHS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Pod": ("/api/v1", "pods", True),
    "Event": ("/api/v1", "events", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "ScaledObject": ("/apis/keda.sh/v1alpha1", "scaledobjects", True),
    "Tenant": ("/apis/tenancy.dev/v1alpha1", "tenants", False),
    "Backend": ("/apis/tenancy.dev/v1alpha1", "backends", False),
    "LifecyclePolicy": ("/apis/tenancy.dev/v1alpha1", "lifecyclepolicies", False),
    "TenantSessionPolicy": ("/apis/tenancy.dev/v1alpha1", "tenantsessionpolicies", False),
    "CachePolicy": ("/apis/tenancy.dev/v1alpha1", "cachepolicies", False),
    "WorkflowRun": ("/apis/tenancy.dev/v1alpha1", "workflowruns", True),
    "ClusterKopfPeering": ("/apis/kopf.dev/v1", "clusterkopfpeerings", False),
}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


_config: client.Configuration | None = None


def connect() -> client.Configuration:
    """Connection settings: in-cluster when there, else KUBECONFIG (loaded once)."""
    global _config
    if _config is None:
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException:
            config.load_kube_config(client_configuration=cfg)
        _config = cfg
    return _config


def _ssl_context(cfg: client.Configuration) -> ssl.SSLContext | bool:
    """The kubeconfig's CA and client certificate; False when it says not to verify (never the
    environment's CA bundle or proxies: aiohttp reads neither unless asked)."""
    if not cfg.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file and cfg.key_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return context


def _new_session() -> aiohttp.ClientSession:
    # Keep-alive connections on the event loop itself: before, each call took a thread of asyncio's
    # default pool (6 on 2 cores) and `requests` in it; a batch of 500 tenants queued for those
    # threads and spent a third of the operator's CPU in them (bench/scale/RESULTS.md).
    connector = aiohttp.TCPConnector(ssl=_ssl_context(connect()), limit=64)
    # Per connect and per read, as `requests` timed them: a whole-call limit would also count the wait
    # for a pooled connection and the event loop's lag, and call a busy operator's API server unreachable.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


_sessions = LoopSessions(_new_session)


async def close() -> None:
    """Close this loop's API server connections (at operator shutdown)."""
    await _sessions.close()


def path_for(kind: str, name: str | None = None, namespace: str | None = None, all_namespaces: bool = False) -> str:
    prefix, plural, namespaced = _PATHS[kind]
    path = prefix
    if namespaced and not (all_namespaces and name is None):
        if not namespace:
            raise ValueError(f"{kind} is namespaced; a namespace is needed")
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    return path


THROTTLED_RETRIES = 3
"""Times a call answered 429 (the API server's priority and fairness) is sent again, after the
Retry-After it names (at most MAX_RETRY_AFTER seconds); then the 429 is raised like any error."""
MAX_RETRY_AFTER = 5.0


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


async def _run(method: str, path: str, body: Any = None, content_type: str = "application/json",
               query: list[tuple[str, str]] | None = None) -> Any:
    """One REST call: the decoded JSON answer ({} when empty). Raises NotFound (404), Conflict (409),
    KubeError(status) for any other error answer and KubeError(0, "Unreachable") when no answer came.
    A 401 is sent once more with the token asked for again (TOKEN_REUSE_SECONDS); a 429 after its
    Retry-After, THROTTLED_RETRIES times."""
    throttled, renewed = 0, False
    while True:
        status, text, reason_phrase, retry_after = await _send(method, path, body, content_type, query)
        if status == 401 and not renewed:  # the reused token may have been renewed since: ask once more
            renewed = True
            _forget_token()
            continue
        if status != 429 or throttled == THROTTLED_RETRIES:
            break
        throttled += 1
        await asyncio.sleep(_retry_after(retry_after))
    if status >= 400:
        try:
            detail = json.loads(text)
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        reason, message = detail.get("reason", reason_phrase), detail.get("message", text[:500])
        if status == 404:
            raise NotFound(404, reason, message)
        if status == 409:
            raise Conflict(409, reason, message)
        raise KubeError(status, reason, message)
    return json.loads(text) if text else {}


TOKEN_REUSE_SECONDS = 30.0
"""How long the Authorization value from the client's settings is reused. Asking for it runs the
official client's refresh hook, which sets the client's host again, and that walks every environment
variable for proxies (in a pod and from a kubeconfig alike): a tenth of the operator's CPU in a batch
of 500 tenants (bench/scale/RESULTS.md, 2026-12-06). A projected ServiceAccount token is renewed by the
kubelet at 80 % of its life (an hour or more) and the old one stays valid until it expires, so one
half a minute old still works. A 401 asks once more and resends: the API server refuses before
admission and storage, so nothing was written (in a pod the client itself re-reads the token file at
most once a minute, so the resend may carry the same token and fail the same way)."""
_token: tuple[client.Configuration, float, str | None] | None = None


def _authorization(cfg: client.Configuration) -> str | None:
    global _token
    now, held = time.monotonic(), _token
    if held is None or held[0] is not cfg or now - held[1] >= TOKEN_REUSE_SECONDS:
        # The key's name differs across client versions; in-cluster, a refresh hook re-reads the token file.
        value = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
        held = _token = (cfg, now, value)
    return held[2]


def _forget_token() -> None:
    global _token
    _token = None


async def _send(method: str, path: str, body: Any, content_type: str,
                query: list[tuple[str, str]] | None) -> tuple[int, str, str, str | None]:
    cfg = connect()
    headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": "tenancy-operator"}
    token = _authorization(cfg)
    if token:
        headers["Authorization"] = token
    data = json.dumps(body) if body is not None else None
    try:
        async with _sessions.get().request(method, cfg.host + path, params=query or None, headers=headers,
                                           data=data) as response:
            return response.status, await response.text(), response.reason or "", response.headers.get("Retry-After")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise KubeError(0, "Unreachable", f"API server unreachable ({method} {path}): {exc or type(exc).__name__}") from None


async def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The live object, or None when it does not exist."""
    try:
        return await _run("GET", path_for(kind, name, namespace))
    except NotFound:
        return None


async def create(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return await _run("POST", path_for(obj["kind"], None, meta.get("namespace")), obj)


async def merge_patch(kind: str, name: str, namespace: str | None, patch: dict[str, Any],
                      subresource: str | None = None, field_manager: str | None = None) -> dict[str, Any]:
    """A JSON merge patch; `field_manager` names the writer (managedFields, and the audit log's requestURI)."""
    path = path_for(kind, name, namespace) + (f"/{subresource}" if subresource else "")
    query = [("fieldManager", field_manager)] if field_manager else None
    return await _run("PATCH", path, patch, "application/merge-patch+json", query)


async def delete(kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete; False when it was already gone."""
    try:
        await _run("DELETE", path_for(kind, name, namespace), {"propagationPolicy": "Background"})
        return True
    except NotFound:
        return False


async def list_objects(kind: str, namespace: str | None = None, label_selector: str | None = None,
                       all_namespaces: bool = False) -> list[dict[str, Any]]:
    """Objects of `kind` in `namespace` (or cluster-scoped ones; of every namespace with `all_namespaces`)."""
    query = [("labelSelector", label_selector)] if label_selector else []
    result = await _run("GET", path_for(kind, None, None if all_namespaces else namespace, all_namespaces), query=query)
    items = result.get("items", [])
    for item in items:  # list items carry no kind; the reconcile layer keys on it
        item.setdefault("kind", kind)
    return items


async def token(service_account: str, namespace: str, seconds: int = 600) -> str:
    """A short-lived token of a ServiceAccount (TokenRequest), as its pods would hold. Never logged."""
    path = path_for("ServiceAccount", service_account, namespace) + "/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    return (await _run("POST", path, body))["status"]["token"]


async def served(kind: str) -> bool:
    """Whether the API server serves ``kind`` (one discovery GET of its group version; for optional
    APIs such as KEDA's). Errors other than 404 propagate."""
    prefix, plural, _ = _PATHS[kind]
    try:
        found = await _run("GET", prefix)
    except NotFound:
        return False
    return any(r.get("name") == plural for r in found.get("resources") or [])
