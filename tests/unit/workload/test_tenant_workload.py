"""The tenant workload's pure parts (images/workload/tenant_workload/app.py): which backends it checks,
what it never prints, and when /healthz is 200. Its checks against real servers: docs/image.md."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "images" / "workload"))

from tenant_workload import app  # noqa: E402

SECRET = {
    "PGHOST": "10.0.0.1", "PGPORT": "5432", "PGDATABASE": "tenant_a", "PGUSER": "tenant_a_1",
    "PGPASSWORD": "pg-Secret-1", "DATABASE_URL": "postgresql://tenant_a_1:pg-Secret-1@10.0.0.1:5432/tenant_a",
    "REDIS_HOST": "10.0.0.1", "REDIS_PORT": "6379", "REDIS_USERNAME": "tenant-a", "REDIS_PASSWORD": "redis-Secret-2",
    "REDIS_KEY_PREFIX": "t:a:", "REDIS_URL": "redis://tenant-a:redis-Secret-2@10.0.0.1:6379/0",
    "VAULT_ADDR": "http://10.0.0.1:8200", "VAULT_AUTH_PATH": "auth/kubernetes", "VAULT_ROLE": "tenant-a",
    "VAULT_KV_MOUNT": "tenants", "VAULT_KV_PATH": "tenant-a/",
}


def test_every_backend_with_all_its_keys_is_checked():
    found = app.present_backends(SECRET)
    assert set(found) == {"postgres", "redis", "openbao"}
    assert found["openbao"]["VAULT_JWT_FILE"] == app.DEFAULT_JWT_FILE
    assert found["openbao"]["VAULT_KV_PATH"] == "tenant-a/"


def test_a_backend_missing_a_key_is_not_checked():
    env = {k: v for k, v in SECRET.items() if k != "REDIS_PASSWORD"}
    env["PGHOST"] = ""
    assert set(app.present_backends(env)) == {"openbao"}
    assert app.present_backends({}) == {}


def test_secret_values_never_survive_redaction():
    secrets = app.secret_values(SECRET | {"VAULT_TOKEN": "s.token-value"})
    assert {"pg-Secret-1", "redis-Secret-2", SECRET["DATABASE_URL"], SECRET["REDIS_URL"], "s.token-value"} <= set(secrets)
    assert "10.0.0.1" not in secrets and "tenant-a" not in secrets
    text = f"failed: {SECRET['DATABASE_URL']} and password pg-Secret-1 and {SECRET['REDIS_URL']}"
    out = app.redact(text, secrets)
    for s in secrets:
        assert s not in out
    assert "failed:" in out


def test_healthz_is_200_only_when_every_present_backend_passed():
    assert app.verdict({"postgres": {"ok": True}, "redis": {"ok": True}}) == 200
    assert app.verdict({"postgres": {"ok": True}, "redis": {"ok": False, "error": "x"}}) == 503
    assert app.verdict({}) == 503


def test_run_checks_reports_each_backend_and_redacts_errors():
    def fails(cfg):
        raise RuntimeError(f"login refused for {cfg['PGPASSWORD']}")

    backends = app.present_backends(SECRET)
    results = app.run_checks({"postgres": backends["postgres"]}, {"postgres": fails}, app.secret_values(SECRET))
    assert results["postgres"]["ok"] is False
    assert "pg-Secret-1" not in results["postgres"]["error"] and "***" in results["postgres"]["error"]
    assert isinstance(results["postgres"]["ms"], int)


def test_keys_and_paths_stay_in_the_tenants_own_space():
    assert app.redis_key("t:a:", "pod-1") == "t:a:workload:health:pod-1"
    assert app.kv_list_path("tenants", "tenant-a/") == "tenants/metadata/tenant-a/"
    assert app.kv_list_path("tenants/", "tenant-a") == "tenants/metadata/tenant-a/"
