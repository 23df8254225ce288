"""From a Backend object and its admin Secret to a `Target` an adapter can connect to."""

from __future__ import annotations

import base64
from typing import Any

from ..backends import kube
from ..backends.base import Target
from . import config

__all__ = ["TargetError", "target_for"]


class TargetError(Exception):
    """The Backend or its Secret is missing or incomplete; a person must fix it."""


def _decode(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def target_for(backend: dict[str, Any]) -> Target:
    name = backend["metadata"]["name"]
    spec = backend.get("spec", {})
    namespace = config.load().operator_namespace
    secret_name = spec.get("adminSecretRef", {}).get("name", "")
    secret = await kube.get("Secret", secret_name, namespace)
    if secret is None:
        raise TargetError(f"Backend {name}: admin Secret {namespace}/{secret_name} not found")
    data = _decode(secret)
    endpoint = spec.get("endpoint", {})
    extra = {k: v for k, v in data.items() if k not in ("username", "password", "token")}
    if spec.get("type") == "search":  # which security API the search adapter speaks (search.elastic)
        extra["flavor"] = (spec.get("search") or {}).get("flavor") or "opensearch"
    return Target(
        name=name,
        type=spec.get("type", ""),
        host=endpoint.get("host", ""),
        port=int(endpoint.get("port", 0)),
        tls=bool(endpoint.get("tls", False)),
        public_host=endpoint.get("publicHost") or "",
        username=data.get("username", ""),
        password=data.get("password", ""),
        token=data.get("token", ""),
        extra=extra,
    )
