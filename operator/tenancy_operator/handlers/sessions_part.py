"""The sessions part of a Tenant: its TenantSessionPolicy, the session key's settings, ConfigMap `tenant-session-keys`.

`spec.sessionPolicyRef` names a cluster-scoped TenantSessionPolicy, read from the `session_policies`
index (no API read per pass; the verify pass re-reads it, so a policy created or changed later reaches
every tenant that names it within one verify interval). A name with no policy is `SessionsReady=False`
and `Ready=False`, reason `PolicyNotFound`, Stalled (nothing to retry until the policy appears; the
verify pass looks again). The OpenBao adapter keeps the key; this part publishes what apps need:

ConfigMap `tenant-session-keys` in the tenant namespace, data
- `jwks.json`: the JWK Set (RFC 7517) of the key's live versions, newest first, kid `v<version>`;
- `policy.json`: the effective settings, camelCase: `policy`, `tenant`, `lifetime`, `lifetimeSeconds`,
  `idleTimeout`, `idleTimeoutSeconds`, `maxConcurrent`, `signingAlgorithm`, `jwsAlgorithm`,
  `keyRotation`, `overlap`, `transitMount`, `keyName`.
Written only when its data or labels differ. Removing the reference removes the ConfigMap and the
signing path from the tenant's OpenBao policy; the key itself is kept (as transit keys are).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..api import names
from ..api.common import parse_duration
from ..api.conditions import Reason
from ..api.session_policy import JWS_ALGORITHMS, TenantSessionPolicySpec
from ..api.tenant import TenantSpec
from ..backends import kube
from ..backends.base import Report, TenantSlice
from ..backends.vault import SESSION_MOUNT
from ..reconcile import labels
from ..reconcile.namespace import owner_reference
from ..reconcile.status import PartResult
from .indexes import first_stored

__all__ = ["CONDITION", "CONFIGMAP", "Published", "resolve", "with_key", "settings", "publish", "unpublish", "waiting", "converge",
           "Converged"]

CONDITION = "SessionsReady"
CONFIGMAP = "tenant-session-keys"
SETTINGS_ANNOTATION = "tenancy.dev/session-settings-sha256"


def resolve(tenant: TenantSpec, index: Any) -> tuple[TenantSessionPolicySpec | None, PartResult | None]:
    """The referenced policy's spec, or the part saying why there is none (None, None: no reference)."""
    ref = tenant.session_policy_ref
    if not ref:
        return None, None
    stored = first_stored(index, ref)
    if stored is None:
        return None, PartResult(CONDITION, False, Reason.POLICY_NOT_FOUND,
                                f"TenantSessionPolicy {ref} (spec.sessionPolicyRef) does not exist: no session key is "
                                "kept until it is created (the tenant picks it up by itself) or the reference is "
                                "changed", stalled=True)
    try:
        return TenantSessionPolicySpec.model_validate(stored), None
    except ValidationError as exc:  # the API server validated it; an older CRD might not have
        return None, PartResult(CONDITION, False, Reason.INVALID_SPEC,
                                f"TenantSessionPolicy {ref}: {exc.errors()[0]['msg']}", stalled=True)


def with_key(want: TenantSlice, policy: TenantSessionPolicySpec | None) -> TenantSlice:
    """The OpenBao slice with the session key the policy asks for (none without a policy)."""
    if policy is None:
        return want
    return dataclasses.replace(want, signing_algorithm=policy.signing_algorithm,
                               session_rotate_every=parse_duration(policy.key_rotation).total_seconds(),
                               session_overlap=parse_duration(policy.overlap).total_seconds())


def settings(tenant: str, ref: str, policy: TenantSessionPolicySpec) -> dict[str, Any]:
    """The `policy.json` document."""
    return {
        "policy": ref,
        "tenant": tenant,
        "lifetime": policy.lifetime,
        "lifetimeSeconds": parse_duration(policy.lifetime).total_seconds(),
        "idleTimeout": policy.idle_timeout,
        "idleTimeoutSeconds": parse_duration(policy.idle_timeout).total_seconds(),
        "maxConcurrent": policy.max_concurrent,
        "signingAlgorithm": policy.signing_algorithm,
        "jwsAlgorithm": JWS_ALGORITHMS[policy.signing_algorithm],
        "keyRotation": policy.key_rotation,
        "overlap": policy.overlap,
        "transitMount": SESSION_MOUNT,
        "keyName": names.vault_session_key(tenant),
    }


def _data(jwks: dict[str, Any], policy: dict[str, Any]) -> dict[str, str]:
    return {"jwks.json": json.dumps(jwks, sort_keys=True), "policy.json": json.dumps(policy, sort_keys=True)}


@dataclass
class Published:
    part: PartResult
    repaired: list[str] = field(default_factory=list)
    """Writes that made the ConfigMap or put an edited one back (provisioning or drift)."""
    policy_changed: list[str] = field(default_factory=list)
    """Writes that follow a change of the policy's settings (not drift)."""


def _settings_sha(data: dict[str, str]) -> str:
    return hashlib.sha256(data["policy.json"].encode()).hexdigest()


async def publish(tenant: str, uid: str, namespace: str, ref: str, policy: TenantSessionPolicySpec,
                  jwks: dict[str, Any]) -> Published:
    """Write ConfigMap `tenant-session-keys` when it differs.

    The annotation `tenancy.dev/session-settings-sha256` records the settings last published: a write
    because they changed is the policy's (a Normal Event), one that puts edited data back is drift.
    """
    data = _data(jwks, settings(tenant, ref, policy))
    annotations = {SETTINGS_ANNOTATION: _settings_sha(data)}
    live = await kube.get("ConfigMap", CONFIGMAP, namespace)
    kids = ", ".join(k.get("kid", "?") for k in jwks.get("keys", []))
    out = Published(PartResult(CONDITION, True, Reason.SUCCEEDED,
                               f"TenantSessionPolicy {ref}: {policy.signing_algorithm} key versions {kids} published "
                               f"in ConfigMap {CONFIGMAP}"))
    if live is None:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP, "namespace": namespace, "labels": labels.owned_labels(tenant),
                             "annotations": annotations, "ownerReferences": [owner_reference(tenant, uid)]},
                "data": data}
        try:
            await kube.create(body)
        except kube.Conflict:
            await kube.merge_patch("ConfigMap", CONFIGMAP, namespace, {"metadata": {"annotations": annotations},
                                                                       "data": data})
        out.repaired.append(f"ConfigMap {CONFIGMAP}")
        return out
    meta = live.get("metadata") or {}
    live_data, live_labels = live.get("data") or {}, meta.get("labels") or {}
    live_sha = (meta.get("annotations") or {}).get(SETTINGS_ANNOTATION)
    if (live_data != data or live_sha != annotations[SETTINGS_ANNOTATION]
            or any(live_labels.get(k) != v for k, v in labels.owned_labels(tenant).items())):
        patch = {"metadata": {"labels": labels.owned_labels(tenant), "annotations": annotations},
                 "data": {**{k: None for k in live_data if k not in data}, **data}}
        await kube.merge_patch("ConfigMap", CONFIGMAP, namespace, patch)
        if live_sha is not None and live_sha != annotations[SETTINGS_ANNOTATION]:
            out.policy_changed.append(f"TenantSessionPolicy {ref} changed: ConfigMap {CONFIGMAP} updated")
        else:
            out.repaired.append(f"ConfigMap {CONFIGMAP}")
    return out


async def unpublish(tenant: str, namespace: str) -> list[str]:
    """Without a reference: remove our ConfigMap (a read only when there is none)."""
    live = await kube.get("ConfigMap", CONFIGMAP, namespace)
    if live is None or labels.tenant_of(live) != tenant:
        return []
    await kube.delete("ConfigMap", CONFIGMAP, namespace)
    return [f"ConfigMap {CONFIGMAP} removed (no sessionPolicyRef)"]


def waiting(vault_part: PartResult | None) -> PartResult:
    """Sessions need the OpenBao part: waiting on it is stalled when it is."""
    why = vault_part.message if vault_part is not None else "vault is not placed on a ready Backend"
    return PartResult(CONDITION, False, "WaitingForVault", f"the session key waits for VaultReady: {why}",
                      stalled=bool(vault_part and vault_part.stalled))


@dataclass
class Converged:
    parts: list[PartResult] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    """Messages of Normal `Rotated` Events: the key's schedule and the ConfigMap write following it."""
    policy_changed: list[str] = field(default_factory=list)


async def converge(name: str, uid: str, namespace: str, tenant: TenantSpec, policy: TenantSessionPolicySpec | None,
                   problem: PartResult | None, vault: Report | None, vault_part: PartResult | None) -> Converged:
    """SessionsReady: the policy found (or PolicyNotFound), and ConfigMap `tenant-session-keys` published."""
    out = Converged()
    if problem is not None:
        out.parts.append(problem)
    elif policy is None:
        out.repaired += await unpublish(name, namespace)
    elif vault is None or vault.session_keys is None:
        out.parts.append(waiting(vault_part))
    else:
        published = await publish(name, uid, namespace, tenant.session_policy_ref or "", policy, vault.session_keys)
        out.parts.append(published.part)
        out.policy_changed += published.policy_changed
        if vault.session_rotated:  # the schedule's writes, and the ConfigMap following them, are not drift
            out.rotated.append("; ".join(vault.session_rotated + published.repaired))
        else:
            out.repaired += published.repaired
    return out
