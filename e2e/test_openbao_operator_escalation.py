"""Review finding: the operator's OpenBao policy lets its token make itself a root-like token.

`sys/policies/acl/tenant-*` (create/update) has no limit on the policy's *content*, and
`auth/kubernetes/role/tenant-*` (create/update) may bind that policy to any ServiceAccount (the
policy also allows rewriting `auth/kubernetes/config`, so the cluster could be the attacker's own).
With only the operator's AppRole credentials: write `tenant-<x>` = `path "*" {sudo ...}`, a role
binding it, log in with any ServiceAccount token, and the new token writes non-tenant policies,
which docs/backend-admins.md says the operator's credential is refused. Real OpenBao and kube-apiserver.
Expected to FAIL until the policy (or a Sentinel-like check / templated policy) fences tenant policy content.
"""

from __future__ import annotations

import os
import secrets

import hvac

from .backends_fixtures import admins_env
from .kube import kubectl


def test_operator_token_cannot_mint_a_token_beyond_tenant_paths():
    admins, name = admins_env(), f"tenant-zzesc-{secrets.token_hex(3)}"
    ns = name.removeprefix("tenant-")  # not a tenant namespace
    op = hvac.Client(url=os.environ["VAULT_ADDR"])
    op.session.trust_env = False
    op.auth.approle.login(role_id=admins["TENANCY_BAO_ROLE_ID"], secret_id=admins["TENANCY_BAO_SECRET_ID"])
    kubectl("create", "namespace", ns)
    try:
        kubectl("create", "serviceaccount", "x", "-n", ns)
        jwt = kubectl("create", "token", "x", "-n", ns).stdout.strip()
        try:
            op.write(f"sys/policies/acl/{name}", policy='path "*" { capabilities = ["create","read","update","delete","list","sudo"] }')
            op.write(f"auth/kubernetes/role/{name}", bound_service_account_names=["x"],
                     bound_service_account_namespaces=[ns], policies=[name], ttl="5m")
        except hvac.exceptions.Forbidden:
            return  # fenced: what should happen
        evil = hvac.Client(url=os.environ["VAULT_ADDR"])
        evil.session.trust_env = False
        evil.auth.kubernetes.login(name, jwt)
        other = f"zzesc-not-a-tenant-{secrets.token_hex(3)}"
        try:
            evil.write(f"sys/policies/acl/{other}", policy='path "secret/*" { capabilities = ["read"] }')
            escalated = True
            evil.delete(f"sys/policies/acl/{other}")
        except hvac.exceptions.Forbidden:
            escalated = False
        evil.logout()
        assert not escalated, "the operator's AppRole token minted a token that writes a non-tenant policy"
    finally:
        op.delete(f"auth/kubernetes/role/{name}")
        op.delete(f"sys/policies/acl/{name}")
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_operator_token_can_bind_only_the_fixed_tenant_policies_to_one_tenant_namespace():
    """The other doors to the same end, each refused by the server (the operator's policy's
    allowed/denied parameters), while the role the adapter writes is admitted."""
    admins, name = admins_env(), f"tenant-zzesc-{secrets.token_hex(3)}"
    op = hvac.Client(url=os.environ["VAULT_ADDR"])
    op.session.trust_env = False
    op.auth.approle.login(role_id=admins["TENANCY_BAO_ROLE_ID"], secret_id=admins["TENANCY_BAO_SECRET_ID"])
    ok = {"bound_service_account_names": "tenant-app", "bound_service_account_namespaces": name,
          "token_policies": "tenancy-tenant-kv,tenancy-tenant-transit", "token_ttl": 3600}
    refused = {
        "another policy": {**ok, "token_policies": "tenancy-operator"},
        "a policy beside the fixed ones": {**ok, "token_policies": "tenancy-tenant-kv,default"},
        "the deprecated policies field": {**ok, "policies": "tenancy-operator"},
        "a list (compared with no allowed value)": {**ok, "token_policies": ["tenancy-tenant-kv"]},
        "any ServiceAccount": {**ok, "bound_service_account_names": "*"},
        "a namespace that is not a tenant's": {**ok, "bound_service_account_namespaces": "kube-system"},
        "two namespaces": {**ok, "bound_service_account_namespaces": f"{name},kube-system"},
        "a namespace glob": {**ok, "bound_service_account_namespaces": "tenant-*"},
        "a periodic token": {**ok, "token_period": "768h"},
    }
    try:
        for what, body in refused.items():
            try:
                op.write(f"auth/kubernetes/role/{name}", **body)
                raise AssertionError(f"the operator's token wrote a login role with {what}")
            except hvac.exceptions.Forbidden:
                pass
        try:
            op.write("auth/kubernetes/config", kubernetes_host="https://attacker.example:6443")
            raise AssertionError("the operator's token rewrote auth/kubernetes/config")
        except hvac.exceptions.Forbidden:
            pass
        op.write(f"auth/kubernetes/role/{name}", **ok)  # what the adapter writes for a tenant
        assert op.read(f"auth/kubernetes/role/{name}")["data"]["token_policies"] == ["tenancy-tenant-kv",
                                                                                     "tenancy-tenant-transit"]
    finally:
        op.delete(f"auth/kubernetes/role/{name}")
