"""People's hands on the credentials (issue 21, items 1-3), on the real API server and backends.

A deleted credentials Secret (or namespace) is a rotation from the state in the Tenant's status, never
a reset; an edited annotation on the Secret neither breaks the tenant nor stops suspend; a part that
fails shows Ready=False at once while the other parts (suspend) still act; rotations are Normal
`Rotated` Events with their own metric; unsafe rotation settings are refused at apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta

import asyncpg
import hvac.exceptions
import pytest
import redis
from tenancy_operator.api import names

from . import kube
from .admin import pg_admin, redis_admin, vault_admin
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client, vault_login

PG_AUTH = (asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError)


def _tenant(name: str, overlap: str = "1h", restart: bool = True) -> None:
    kube.apply(tenant_yaml(name, postgres={"enabled": True}, redis={"enabled": True},
                           credentials={"rotateEvery": "30h", "overlap": overlap, "restartWorkloads": restart}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    # rotateEvery (not the default 720h) schedules the next rotation from the current version's making
    status = _creds_status(name)
    rotated, due = (datetime.fromisoformat(status[k]) for k in ("rotatedAt", "nextRotationAt"))
    assert due - rotated == timedelta(hours=30), status


def _creds_status(name: str) -> dict:
    return ((get("tenant", name) or {}).get("status", {}).get("credentials") or {})


def _version(name: str) -> int:
    return int(_creds_status(name).get("version") or 0)


def _rolled(namespace: str) -> str | None:
    template = ((get("deployment", "api", namespace) or {}).get("spec", {}).get("template", {}).get("metadata", {}))
    return (template.get("annotations") or {}).get("tenancy.dev/credential-version")


def _works(creds: dict[str, str]) -> bool:
    pg(creds, "SELECT 1")
    client = redis_client(creds)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _events(name: str) -> list[dict]:
    return kube.object_events("Tenant", name)


def _plugin(*args: str) -> None:
    env = {**os.environ, "PATH": f"{kube.REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["kubectl", "tenant", *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr


def _rotate(name: str, since: int) -> int:
    kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=test-{time.time()}")
    eventually(lambda: _version(name) > since, 60, message=f"{name} rotated past version {since}")
    return _version(name)


def test_deleted_secret_is_a_rotation_from_status_never_a_reset(backends, operator, cleanup_tenants):
    name, ns = "credsdel", "tenant-credsdel"
    cleanup_tenants.append(name)
    _tenant(name)
    kube.apply(kube.rolling_deployment(ns))
    assert _version(name) == 1
    assert _rotate(name, 1) == 2
    v2 = credentials(name)
    assert v2["PGUSER"].endswith("_b")
    eventually(lambda: _rolled(ns) == "2", 30, message="deployment rolled to version 2")

    kubectl("delete", "secret", "tenant-credentials", "-n", ns)
    eventually(lambda: get("secret", "tenant-credentials", ns) is not None and _version(name) == 3, 60,
               message="Secret back as version 3")
    status = _creds_status(name)
    v3 = credentials(name)
    assert (status["version"], status["slot"], status["reason"]) == (3, "a", "secret-deleted")
    assert v3["PGUSER"].endswith("_a") and v3["PGPASSWORD"] != v2["PGPASSWORD"]
    assert get("secret", "tenant-credentials", ns)["metadata"]["annotations"]["tenancy.dev/credential-version"] == "3"
    assert _works(v3)
    # The live version 2 keeps working for the overlap (1h), over several verify passes.
    for _ in range(3):
        assert _works(v2)
        time.sleep(2)
    eventually(lambda: _rolled(ns) == "3", 30, message="opted-in deployment rolled to version 3")
    assert any(e["reason"] == "Rotated" and "secret-deleted" in e["message"] for e in _events(name))


def test_deleted_namespace_comes_back_with_a_rotation(backends, operator, cleanup_tenants):
    name, ns = "credsns", "tenant-credsns"
    cleanup_tenants.append(name)
    _tenant(name)
    v1 = credentials(name)
    kubectl("delete", "namespace", ns, "--wait=true", timeout=120)
    eventually(lambda: get("secret", "tenant-credentials", ns) is not None and _version(name) == 2, 120,
               message="namespace and Secret back as version 2")
    assert _creds_status(name)["slot"] == "b"
    assert _works(credentials(name))
    assert _works(v1)  # the running apps' credentials stay valid through the overlap


def test_edited_annotation_breaks_nothing_and_suspend_still_closes(backends, operator, cleanup_tenants):
    name, ns = "credsann", "tenant-credsann"
    cleanup_tenants.append(name)
    _tenant(name, restart=False)
    creds = credentials(name)
    kubectl("annotate", "--overwrite", "secret", "tenant-credentials", "-n", ns,
            "tenancy.dev/rotated-at=2026-11-29T16:34:06+01:00")
    time.sleep(8)  # a couple of verify passes
    tenant = get("tenant", name)
    assert condition(tenant, "Ready")["status"] == "True", condition(tenant, "Ready")
    assert condition(tenant, "CredentialsReady")["status"] == "True", condition(tenant, "CredentialsReady")
    assert _works(creds) and _version(name) == 1

    _plugin("suspend", name)
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Suspended", 30, message="phase Suspended")
    with pytest.raises(PG_AUTH):
        pg(creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(creds).ping()
    _plugin("resume", name)
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Ready", 30, message="phase Ready")

    # Scheduled rotation still works once the annotation is gone: make the last rotation look 31 days old.
    kubectl("annotate", "secret", "tenant-credentials", "-n", ns, "tenancy.dev/rotated-at-")
    kubectl("patch", "tenant", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"credentials": {"rotatedAt": "2026-01-01T00:00:00Z"}}}))
    eventually(lambda: _version(name) == 2, 60, message="scheduled rotation to version 2")
    assert _creds_status(name)["reason"] == "scheduled"
    assert _works(credentials(name))


def _patch_secret(namespace: str, name: str, values: dict[str, str]) -> None:
    kubectl("patch", "secret", name, "-n", namespace, "--type=merge", "-p", json.dumps({"stringData": values}))


def test_an_edited_password_is_never_applied_it_rotates(backends, operator, cleanup_tenants):
    """A password written into the Secret by hand (a weak one, or one pasted from elsewhere) never
    reaches a backend: pushing it would cut every running app holding ours. It is a rotation instead."""
    name, ns = "credsedit", "tenant-credsedit"
    cleanup_tenants.append(name)
    _tenant(name, restart=False)
    v1 = credentials(name)
    hand = {"PGPASSWORD": "chosen-by-hand", "REDIS_PASSWORD": "also-by-hand"}
    _patch_secret(ns, "tenant-credentials", hand)
    eventually(lambda: _version(name) == 2, 60, message="an edited password rotates to version 2")
    status = _creds_status(name)
    assert status["reason"] == "password-edited", status
    assert set(status["passwordSha256"]) == {"postgres", "redis"}
    v2 = credentials(name)
    assert v2["PGPASSWORD"] not in (hand["PGPASSWORD"], v1["PGPASSWORD"])
    assert v2["REDIS_PASSWORD"] not in (hand["REDIS_PASSWORD"], v1["REDIS_PASSWORD"])
    assert _works(v2)
    assert _works(v1)  # running apps keep the password they hold, through the overlap
    with pytest.raises(PG_AUTH):
        pg({**v1, **hand}, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client({**v1, **hand}).ping()
    assert any(e["reason"] == "Rotated" and "password-edited" in e["message"] for e in _events(name))
    time.sleep(8)  # a couple of verify passes: one rotation, then quiet
    assert _version(name) == 2 and _works(v2)
    # The Secret goes with its Tenant: an ownerReference taken off is put back (no rotation for it).
    kubectl("patch", "secret", "tenant-credentials", "-n", ns, "--type=json",
            "-p", '[{"op": "remove", "path": "/metadata/ownerReferences"}]')
    eventually(lambda: [r["uid"] for r in get("secret", "tenant-credentials", ns)["metadata"].get("ownerReferences", [])]
               == [get("tenant", name)["metadata"]["uid"]], 30, message="ownerReference put back")
    assert _version(name) == 2


def test_broken_credentials_show_at_once_and_suspend_still_closes(backends, operator, cleanup_tenants):
    name, ns = "credsquota", "tenant-credsquota"
    cleanup_tenants.append(name)
    _tenant(name, restart=False)
    creds = credentials(name)
    # The tenant's admin caps Secrets at what exists: staging the next credentials is refused.
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "cap", "namespace": ns},
                           "spec": {"hard": {"count/secrets": "1"}}}))
    eventually(lambda: ((get("resourcequota", "cap", ns) or {}).get("status", {}).get("used") or {}).get("count/secrets"),
               30, message="quota usage computed")
    kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=test-{time.time()}")

    def broken():
        tenant = get("tenant", name)
        return (condition(tenant, "CredentialsReady").get("reason") == "QuotaExceeded"
                and condition(tenant, "Ready")["status"] == "False") and tenant
    tenant = eventually(broken, 30, message="CredentialsReady=False (QuotaExceeded) and Ready=False")
    assert "quota" in condition(tenant, "Ready")["message"].lower()
    assert any(e["type"] == "Warning" and "CredentialsReady=False" in e["message"] for e in _events(name))

    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: "suspended" in condition(get("tenant", name), "DatabaseReady").get("message", ""), 30,
               message="database part suspended while credentials are broken")
    with pytest.raises(PG_AUTH):
        pg(creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(creds).ping()

    kubectl("delete", "resourcequota", "cap", "-n", ns)
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: _version(name) == 2 and condition(get("tenant", name), "Ready")["status"] == "True", 60,
               message="rotation completes once the quota is gone")
    assert _works(credentials(name))


def _metric(port: int, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_rotation_is_a_normal_rotated_event_not_drift(backends, operator, cleanup_tenants):
    name, ns = "credsevt", "tenant-credsevt"
    cleanup_tenants.append(name)
    _tenant(name, overlap="4s")
    kube.apply(kube.rolling_deployment(ns))
    eventually(lambda: _rolled(ns) == "1", 30, message="deployment carries version 1")
    time.sleep(4)  # let the first pass's writes settle
    drift_before = _metric(operator.metrics_port, f'tenancy_drift_repairs_total{{tenant="{name}"}}')
    rotations_before = _metric(operator.metrics_port,
                               f'tenancy_credential_rotations_total{{reason="requested",tenant="{name}"}}')
    v1 = credentials(name)
    started = time.time()
    assert _rotate(name, 1) == 2
    time.sleep(10)  # the overlap ends and a verify pass closes version 1
    with pytest.raises(PG_AUTH):
        pg(v1, "SELECT 1")

    events = [e for e in _events(name) if kube_time(e) >= started - 1]
    rotated = [e for e in events if e["reason"] == "Rotated"]
    assert rotated and all(e["type"] == "Normal" for e in rotated), events
    assert any("requested" in e["message"] and "rolled Deployment/api" in e["message"] for e in rotated), rotated
    assert not [e for e in events if e["reason"] == "DriftRepaired"], events
    assert _metric(operator.metrics_port,
                   f'tenancy_credential_rotations_total{{reason="requested",tenant="{name}"}}') == rotations_before + 1
    assert _metric(operator.metrics_port, f'tenancy_drift_repairs_total{{tenant="{name}"}}') == drift_before

    # A hand edit the rotation's own pass puts back is still drift: the Redis user's key fence widened
    # and the login roles' connection limit changed, then a rotation at once. Only what the rotation
    # changes (passwords, a slot's LOGIN) is the rotation's.
    user, roles = names.redis_user(name), [names.pg_login_role(name, s) for s in "ab"]
    redis_admin().execute_command("ACL", "SETUSER", user, "allkeys")
    for role in roles:
        pg_admin(f'ALTER ROLE "{role}" CONNECTION LIMIT 7')
    started = time.time()
    assert _rotate(name, 2) == 3
    eventually(lambda: redis_admin().acl_getuser(user)["keys"] == [f"~{names.redis_prefix(name)}*"], 30,
               message="the key fence put back")
    limit = get("tenant", name)["spec"]["postgres"]["connectionLimit"]  # the schema's default
    assert {r["rolconnlimit"] for r in pg_admin("SELECT rolconnlimit FROM pg_roles WHERE rolname = ANY($1)",
                                                roles)} == {limit} != {7}

    def said() -> str:  # kopf posts Events after the pass, in the background
        drift = [e for e in _events(name) if kube_time(e) >= started - 1 and e["reason"] == "DriftRepaired"]
        assert all(e["type"] == "Warning" for e in drift), drift
        text = " ".join(e["message"] for e in drift)
        assert f"ACL user {user}" in text and all(f"login of {r}" in text for r in roles), text
        return text

    eventually(said, 30, message="a DriftRepaired Event names the Redis user and both login roles")
    assert _metric(operator.metrics_port, f'tenancy_drift_repairs_total{{tenant="{name}"}}') > drift_before


def kube_time(event: dict) -> float:
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("credentials_spec,message", [
    ({"rotateEvery": "1s", "overlap": "0s"}, "rotateEvery must be at least 1h"),
    ({"rotateEvery": "2h", "overlap": "2h"}, "overlap must be shorter than rotateEvery"),
    ({"rotateEvery": "2h", "overlap": "0s", "restartWorkloads": True}, "overlap must be above 0s when restartWorkloads"),
], ids=["too-often", "overlap-not-shorter", "no-overlap-with-rolling"])
def test_unsafe_rotation_is_refused_at_apply(crds, credentials_spec, message):
    result = kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                     input=tenant_yaml("credscel", credentials=credentials_spec))
    assert result.returncode != 0 and message in result.stderr, result.stderr
    ok = kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                 input=tenant_yaml("credscel", credentials={"rotateEvery": "1h", "overlap": "59m",
                                                            "restartWorkloads": True}))
    assert ok.returncode == 0, ok.stderr


def test_openbao_tokens_from_before_a_rotation_retire_when_its_overlap_ends(backends, operator, cleanup_tenants):
    """Rotation away from a compromised role (issue 11 item 5): a token issued before the rotation keeps
    working through the overlap (no running app is cut), then is revoked; a fresh login works."""
    name = f"tokrot-{int(time.time()) % 100000}"
    ns = f"tenant-{name}"
    cleanup_tenants.append(name)
    kube.apply(tenant_yaml(name, vault={"enabled": True},
                           credentials={"rotateEvery": "720h", "overlap": "20s"}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    creds = credentials(name)
    before = vault_login(creds, ns)
    before.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{name}/k", secret={"v": "1"})
    accessor = before.lookup_token()["data"]["accessor"]

    _rotate(name, _version(name))
    # Within the overlap the old token still works.
    assert before.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/k",
                                                    raise_on_deleted_version=True)["data"]["data"] == {"v": "1"}

    def refused() -> bool:
        try:
            before.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/k",
                                                     raise_on_deleted_version=True)
        except hvac.exceptions.Forbidden:
            return True
        return False

    eventually(refused, 90, interval=2, message="the token from before the rotation revoked after the overlap")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_admin().auth.token.lookup_accessor(accessor)
    after = vault_login(creds, ns)
    assert after.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/k",
                                                   raise_on_deleted_version=True)["data"]["data"] == {"v": "1"}
    time.sleep(operator.verify_interval * 2 + 1)  # later passes leave the new token alone
    assert after.lookup_token()["data"]["accessor"]
