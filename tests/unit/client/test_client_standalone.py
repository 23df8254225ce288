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


def test_the_client_distribution_installs_none_of_the_operators_dependencies():
    """`pip install ./client` is what docs/cache.md and docs/sessions.md tell an app to run: an extra of the
    operator's package would install kopf, the Kubernetes client, scikit-learn, ... with it."""
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    client = tomllib.loads((repo / "client" / "pyproject.toml").read_text())
    operator = tomllib.loads((repo / "pyproject.toml").read_text())
    assert client["project"]["name"] == "tenancy-client"
    assert client["project"]["dependencies"] == operator["project"]["optional-dependencies"]["client"]
    assert (repo / "client" / "tenancy_client").resolve() == (repo / "operator" / "tenancy_client").resolve()
    assert client["tool"]["setuptools"]["packages"] == ["tenancy_client"]
