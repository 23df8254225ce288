"""tenancy_client stands alone: importing it pulls in neither the operator, kopf nor the Kubernetes client."""

import json
import subprocess
import sys

from tenancy_client import load


def test_import_needs_no_operator_dependencies():
    code = ("import sys, tenancy_client, pkgutil, importlib\n"
            "import tenancy_client as c\n"
            "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('tenancy_client.' + m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes', 'tenancy_operator')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_load_prefers_the_mounted_secret_over_the_environment(tmp_path):
    creds, cache = tmp_path / "creds", tmp_path / "cache"
    creds.mkdir()
    cache.mkdir()
    (creds / "REDIS_KEY_PREFIX").write_text("t:acme:")
    (cache / "cache.json").write_text(json.dumps({"memoryBudgetBytes": 1024}))
    cfg = load(creds, cache, tmp_path / "missing", env={"REDIS_KEY_PREFIX": "t:other:", "REDIS_URL": "redis://x"})
    assert cfg.tenant == "acme"
    assert cfg.credentials["REDIS_URL"] == "redis://x"
    assert cfg.cache == {"memoryBudgetBytes": 1024}
    assert cfg.jwks == {}
