"""The least-privileged admins' definitions: the chart ships the platform's OpenBao policy, the policy
covers every path the adapter's capability check asks for, and the Redis rules name no category."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from tenancy_operator.backends import vault_login

REPO = Path(__file__).resolve().parents[3]
POLICY = REPO / "charts" / "tenancy-operator" / "files" / "openbao-operator.hcl"


def test_the_platform_writes_the_policy_the_chart_ships():
    # One file: what e2e and the demo run with is what a chart install is told to give the operator.
    assert '"$REPO/charts/tenancy-operator/files/openbao-operator.hcl"' in (REPO / "platform" / "admins.sh").read_text()


def _policy() -> dict[str, set[str]]:
    rules = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', POLICY.read_text())
    return {path: {c.strip().strip('"') for c in caps.split(",")} for path, caps in rules}


def test_the_policy_grants_what_the_capability_check_requires_and_nothing_outside_tenant_paths():
    policy = _policy()
    for path, wanted in vault_login.REQUIRED.items():
        granted = set().union(*[caps for glob, caps in policy.items() if fnmatch.fnmatchcase(path, glob)])
        assert set(wanted) <= granted, path
    assert not any(glob in ("*", "sys/*", "sys/mounts/*", "sys/raw/*", "sys/policies/acl/*") for glob in policy)
    assert "sudo" not in set().union(*[c for p, c in policy.items() if p != "auth/token/accessors"])
    # No policy text and no Kubernetes auth config is written: either would let the token mint any token.
    for glob, caps in policy.items():
        if glob.startswith("sys/policies/") or glob.startswith("sys/policy/") or glob == "auth/kubernetes/config":
            assert caps <= {"read", "delete"}, glob


def test_the_redis_rules_start_from_nothing_and_name_each_command():
    rules = [line.split("#", 1)[0].split()[0] for line in (REPO / "platform" / "admins" / "redis-operator.rules")
             .read_text().splitlines() if line.split("#", 1)[0].strip()]
    assert rules[0] == "-@all"
    assert not [r for r in rules if r.startswith("+@") or r in ("~*", "allkeys", "allcommands", "+config", "+flushall")]
