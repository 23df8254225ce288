"""A tenant's OpenBao grants: fixed, platform-written policies templated on the login's namespace, named in
the login role only as sets the operator's own policy admits (the server refuses any other set)."""

import re
from itertools import product
from pathlib import Path

from tenancy_operator.api import names
from tenancy_operator.backends import vault

FILES = Path(__file__).resolve().parents[3] / "charts" / "tenancy-operator" / "files"
NAMESPACE = "{{identity.entity.aliases.@KUBERNETES_ACCESSOR@.metadata.service_account_namespace}}"


def _allowed(parameter: str) -> list[str]:
    """The `allowed_parameters` values of the login-role rule in the operator's policy."""
    text = (FILES / "openbao-operator.hcl").read_text()
    rule = text[text.index('path "auth/kubernetes/role/tenant-*"'):]
    block = re.search(rf'"{parameter}" = \[([^\]]*)\]', rule[:rule.index("denied_parameters")])
    assert block, parameter
    return re.findall(r'"([^"]*)"', block.group(1))


def test_the_role_grants_exactly_what_the_flags_enable():
    assert vault.token_policies(kv=True, transit=False, session_key=False) == ["tenancy-tenant-kv"]
    assert vault.token_policies(kv=False, transit=True, session_key=True) == ["tenancy-tenant-transit",
                                                                            "tenancy-tenant-session"]
    assert vault.token_policies(kv=False, transit=False, session_key=False) == []


def test_every_role_the_adapter_writes_is_one_the_operators_policy_admits():
    # The server compares each field with these values; a set the adapter writes but the policy lacks
    # would be a 403 for that tenant.
    allowed = {p: _allowed(p) for p in ("token_policies", "bound_service_account_names",
                                         "bound_service_account_namespaces")}
    for kv, transit, session in product((True, False), repeat=3):
        params = vault._role_params(vault._role_body(names.namespace("acme"),
                                                     vault.token_policies(kv, transit, session)))
        assert set(params) <= set(allowed) | {"token_ttl"}, params
        assert params["token_policies"] in allowed["token_policies"], (kv, transit, session)
        assert params["bound_service_account_names"] in allowed["bound_service_account_names"]
        assert all(isinstance(v, str | int) for v in params.values()), params  # a JSON list matches no value
    assert allowed["bound_service_account_namespaces"] == ["tenant-*"]


def test_the_fixed_policies_reach_only_paths_named_by_the_logins_namespace():
    for part, policy in vault.TENANT_POLICIES.items():
        text = (FILES / f"openbao-tenant-{part}.hcl").read_text()
        assert f"`{policy}`" in text.splitlines()[0]
        paths = re.findall(r'^path "([^"]+)"', text, re.MULTILINE)
        assert paths and all(NAMESPACE in p for p in paths), paths
        assert not any("*" in p.split(NAMESPACE)[0] for p in paths), paths  # nothing wider before the namespace


def test_the_tenants_objects_are_named_as_its_namespace():
    # What the templated paths become for tenant `acme`'s login (namespace tenant-acme).
    ns = names.namespace("acme")
    assert names.vault_key("acme") == names.vault_session_key("acme") == ns
    assert names.vault_kv_path("acme") == f"{vault.KV_MOUNT}/{ns}"


def test_role_differences_ignore_order_and_see_a_policy_taken_away():
    body = vault._role_body("tenant-acme", ["tenancy-tenant-kv", "tenancy-tenant-transit"])
    live = dict(body, token_policies=["tenancy-tenant-transit", "tenancy-tenant-kv"], token_type="default")
    assert vault._role_differs(live, body) == []
    assert vault._role_differs(dict(live, token_policies=["tenant-acme"]), body) == ["token_policies"]
    assert vault._role_differs(None, body) == sorted(body)
