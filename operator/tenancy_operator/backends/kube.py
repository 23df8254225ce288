"""The Kubernetes API as one more backend: read, create, patch and delete plain-dict objects.

We speak REST by path through the official client's ApiClient (run in a thread, so kopf's event
loop never blocks), rather than typed per-kind APIs: reconcile/ produces plain dicts, and one small
table of paths serves every kind we own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

__all__ = ["KubeError", "NotFound", "Conflict", "connect", "get", "create", "merge_patch", "delete", "list_objects",
           "path_for", "ApiException"]

# kind -> (api prefix, plural, namespaced)
_PATHS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "Pod": ("/api/v1", "pods", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "Tenant": ("/apis/tenancy.dev/v1alpha1", "tenants", False),
    "Backend": ("/apis/tenancy.dev/v1alpha1", "backends", False),
}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


_api: client.ApiClient | None = None


def connect() -> client.ApiClient:
    """The shared ApiClient: in-cluster config when there, else KUBECONFIG."""
    global _api
    if _api is None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        _api = client.ApiClient()
    return _api


def path_for(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    prefix, plural, namespaced = _PATHS[kind]
    path = prefix
    if namespaced:
        if not namespace:
            raise ValueError(f"{kind} is namespaced; a namespace is needed")
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    return path


def _raise(exc: ApiException) -> None:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    status, reason, message = exc.status or 0, body.get("reason", exc.reason or ""), body.get("message", str(exc))
    if status == 404:
        raise NotFound(status, reason, message) from None
    if status == 409:
        raise Conflict(status, reason, message) from None
    raise KubeError(status, reason, message) from None


def _call(method: str, path: str, body: Any = None, content_type: str = "application/json",
          query: list[tuple[str, str]] | None = None) -> Any:
    api = connect()
    try:
        return api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=True,
            _request_timeout=30,
        )
    except ApiException as exc:
        _raise(exc)


async def _run(*args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(_call, *args, **kwargs)


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
                      subresource: str | None = None) -> dict[str, Any]:
    path = path_for(kind, name, namespace) + (f"/{subresource}" if subresource else "")
    return await _run("PATCH", path, patch, "application/merge-patch+json")


async def delete(kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete; False when it was already gone."""
    try:
        await _run("DELETE", path_for(kind, name, namespace), {"propagationPolicy": "Background"})
        return True
    except NotFound:
        return False


async def list_objects(kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
    query = [("labelSelector", label_selector)] if label_selector else []
    result = await _run("GET", path_for(kind, None, namespace), query=query)
    items = result.get("items", [])
    for item in items:  # list items carry no kind; the reconcile layer keys on it
        item.setdefault("kind", kind)
    return items
