"""The Argo CD health checks pass their own fixtures, run as Argo CD runs them: Lua 5.1, no `string`.

Every `argocd/tenancy.dev/<Kind>/health_test.yaml` (Argo CD's resource_customizations format) is run
with `lupa.lua51`. The `string` library is removed from the globals and from the string metatable,
so `string.find(...)` and `s:find(...)` both fail here as they do in Argo CD's default sandbox.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROOT = REPO / "argocd" / "tenancy.dev"
KINDS = ("Tenant", "Backend", "WorkflowRun", "CachePolicy", "TenantSessionPolicy", "LifecyclePolicy")


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in KINDS:
        for test in yaml.safe_load((ROOT / kind / "health_test.yaml").read_text())["tests"]:
            cases.append((kind, test))
    return cases


CASES = _cases()


def _lua_value(runtime: lua51.LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _lua_value(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_lua_value(runtime, v) for v in value])
    return value


def run_health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
    runtime.execute("getmetatable('').__index = nil; string = nil")
    runtime.globals().obj = _lua_value(runtime, obj)
    script = (ROOT / kind / "health.lua").read_text()
    result = runtime.execute(script)
    return {"status": result["status"], "message": result["message"]}


def test_the_runtime_is_lua_5_1_without_string():
    runtime = lua51.LuaRuntime()
    assert runtime.eval("_VERSION") == "Lua 5.1"
    runtime.execute("getmetatable('').__index = nil; string = nil")
    with pytest.raises(lua51.LuaError):
        runtime.execute("return ('abc'):upper()")


@pytest.mark.parametrize(("kind", "test"), CASES, ids=[f"{k}/{Path(t['inputPath']).stem}" for k, t in CASES])
def test_fixture(kind, test):
    obj = yaml.safe_load((ROOT / kind / test["inputPath"]).read_text())
    assert run_health(kind, obj) == test["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_fixture_file_is_listed(kind):
    listed = {t["inputPath"] for k, t in CASES if k == kind}
    on_disk = {f"testdata/{p.name}" for p in (ROOT / kind / "testdata").glob("*.yaml")}
    assert listed == on_disk


_BASIC = {"Healthy", "Progressing", "Degraded"}
REACHABLE = {
    "Tenant": _BASIC | {"Suspended"},
    "Backend": _BASIC | {"Suspended"},
    "WorkflowRun": _BASIC,
    "LifecyclePolicy": _BASIC,
    "CachePolicy": {"Healthy", "Progressing"},  # built: never Stalled
    # Nothing acts on this yet: the operator only ever reports it NotImplemented (issue 14).
    "TenantSessionPolicy": {"Progressing", "Degraded"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_argo_status_the_kind_can_reach_is_covered(kind):
    statuses = {t["healthStatus"]["status"] for k, t in CASES if k == kind}
    assert REACHABLE[kind] <= statuses


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "CachePolicy"])  # CachePolicy is built: never Stalled
def test_not_implemented_is_degraded_with_the_operators_message(kind):
    """Stalled, reason NotImplemented: Argo CD shows Degraded and names the unbuilt fields."""
    case = next(t for k, t in CASES if k == kind and t["inputPath"] == "testdata/degraded_not_implemented.yaml")
    obj = yaml.safe_load((ROOT / kind / case["inputPath"]).read_text())
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "NotImplemented"
    result = run_health(kind, obj)
    assert result["status"] == "Degraded" and stalled["message"] in result["message"]


def test_tenant_fixtures_cover_every_condition_combination():
    names = {Path(t["inputPath"]).stem for k, t in CASES if k == "Tenant"}
    for needed in ("ready", "provisioning", "stalled", "backend_outage", "suspended", "archived", "terminating",
                   "stale_generation", "no_status"):
        assert any(needed in n for n in names), needed


def test_argocd_cm_snippet_equals_the_lua_files():
    spec = importlib.util.spec_from_file_location("render_cm", REPO / "argocd" / "render_cm.py")
    assert spec and spec.loader
    render_cm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_cm)
    committed = (REPO / "argocd" / "argocd-cm.yaml").read_text()
    assert committed == render_cm.render(), "run: python argocd/render_cm.py > argocd/argocd-cm.yaml"
    data = yaml.safe_load(committed)["data"]
    for kind in KINDS:
        assert data[f"resource.customizations.health.tenancy.dev_{kind}"] == (ROOT / kind / "health.lua").read_text()
