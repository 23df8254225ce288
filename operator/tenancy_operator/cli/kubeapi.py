"""The plugin's only I/O: `kubectl` as a subprocess.

Going through kubectl keeps the plugin on the user's kubeconfig, context, exec credential plugins
and impersonation flags, exactly as `kubectl get tenants` sees the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Kubectl", "KubectlError"]


class KubectlError(Exception):
    """kubectl failed; the message is kubectl's own."""


@dataclass
class Kubectl:
    flags: list[str] = field(default_factory=list)
    """Global flags passed through: --kubeconfig, --context, --as."""
    binary: str = field(default_factory=lambda: os.environ.get("KUBECTL", "kubectl"))

    def run(self, *args: str, input: str | None = None) -> str:
        try:
            result = subprocess.run([self.binary, *self.flags, *args], capture_output=True, text=True,
                                    input=input, timeout=60)
        except FileNotFoundError:
            raise KubectlError(f"{self.binary} not found on PATH (set KUBECTL to its path)") from None
        except subprocess.TimeoutExpired:
            raise KubectlError(f"kubectl {' '.join(args)} did not answer within 60 s") from None
        if result.returncode != 0:
            raise KubectlError(result.stderr.strip() or f"kubectl {' '.join(args)} exited {result.returncode}")
        return result.stdout

    def get_tenant(self, name: str) -> dict[str, Any]:
        return json.loads(self.run("get", "tenants.tenancy.dev", name, "-o", "json"))

    def tenant_warnings(self, tenant: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The Warning Events on this Tenant (its uid: not an earlier Tenant's of the same name), in `default`
        where the operator posts a cluster-scoped object's Events; None when they cannot be read (a user
        without `list events` there: the status shows without them)."""
        meta = tenant.get("metadata") or {}
        selector = (f"involvedObject.kind=Tenant,involvedObject.name={meta.get('name')},"
                    f"involvedObject.uid={meta.get('uid')},type=Warning")
        try:
            return self.list_json("events", "-n", "default", "--field-selector", selector)
        except KubectlError:
            return None

    def list_tenants(self) -> list[dict[str, Any]]:
        return json.loads(self.run("get", "tenants.tenancy.dev", "-o", "json")).get("items", [])

    def list_json(self, resource: str, *args: str) -> list[dict[str, Any]]:
        return json.loads(self.run("get", resource, *args, "-o", "json")).get("items", [])

    def annotate_tenant(self, name: str, key: str, value: str) -> None:
        self.run("annotate", "tenants.tenancy.dev", name, f"{key}={value}", "--overwrite")

    def tenant_exists(self, name: str) -> bool:
        return bool(self.run("get", "tenants.tenancy.dev", name, "--ignore-not-found", "-o", "name").strip())

    def create_tenant(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name}, "spec": spec}
        self.run("create", "-f", "-", input=json.dumps(body))

    def patch_tenant_spec(self, name: str, spec: dict[str, Any], annotations: dict[str, str | None] | None = None) -> None:
        """Merge-patch spec (and annotations: None removes one) in one request."""
        patch: dict[str, Any] = {"spec": spec}
        if annotations:
            patch["metadata"] = {"annotations": annotations}
        self.run("patch", "tenants.tenancy.dev", name, "--type=merge", "-p", json.dumps(patch))
