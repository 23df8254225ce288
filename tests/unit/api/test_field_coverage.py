"""No inert field: every spec field of every kind is claimed by a test, a refusal at apply, or a NotImplemented report.

The registry is tests/field_coverage.py; its docstring says what each claim means and how it is checked.
"""

from __future__ import annotations

import ast
import importlib.util
import typing
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tenancy_operator.api import crd
from tenancy_operator.api.conditions import Reason
from tenancy_operator.api.kinds import KINDS
from tenancy_operator.reconcile import unbuilt

REPO = Path(__file__).resolve().parents[3]
OPERATOR = REPO / "operator" / "tenancy_operator"


def _registry() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("field_coverage", REPO / "tests" / "field_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FIELDS


FIELDS = _registry()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's type holds: itself, list/dict items, Optional's arm."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def leaf_fields(model: type[BaseModel], prefix: str) -> list[str]:
    """`Kind.spec.a.b` for every field that holds a value rather than a nested model (list items unindexed)."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        nested = _models_in(info.annotation)
        if nested:
            for sub in dict.fromkeys(nested):
                out += [p for p in leaf_fields(sub, path) if p not in out]
        else:
            out.append(path)
    return out


ALL_FIELDS = [path for kind in KINDS for path in leaf_fields(kind.spec, f"{kind.kind}.spec")]


def _entry_for(path: str) -> str:
    return f'    "{path}": ["test: <file>::<test function>"],  # or "refused: <CEL message text>", or NOT_BUILT'


def test_every_spec_field_has_a_claim():
    missing = [p for p in ALL_FIELDS if not FIELDS.get(p)]
    assert not missing, (
        "These API fields are claimed by nothing. Each must act (a test proves it), be refused at apply, or "
        "report NotImplemented (reconcile/unbuilt.py). Add to FIELDS in tests/field_coverage.py:\n"
        + "\n".join(_entry_for(p) for p in missing))


def test_every_claim_names_a_field_that_exists():
    gone = sorted(set(FIELDS) - set(ALL_FIELDS))
    assert not gone, ("tests/field_coverage.py claims fields the API no longer has (renamed or removed); "
                      f"delete or rename these entries: {gone}")


def test_the_walk_sees_nested_and_listed_fields():
    assert "Tenant.spec.vault.kv" in ALL_FIELDS
    assert "Tenant.spec.autoscaling.targetRef.kind" in ALL_FIELDS
    assert "CachePolicy.spec.tiers.ttl" in ALL_FIELDS
    assert "Tenant.spec.quota" not in ALL_FIELDS  # an object: its fields carry the claims
    assert len(ALL_FIELDS) == len(set(ALL_FIELDS))


@cache
def _test_functions(relative: str) -> frozenset[str]:
    tree = ast.parse((REPO / relative).read_text())
    return frozenset(n.name for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_"))


def _schema_at(path: str) -> list[dict[str, Any]]:
    """The CRD schema nodes from the spec down to the field (list items stepped through)."""
    kind_name, _, *parts = path.split(".")
    kind = next(k for k in KINDS if k.kind == kind_name)
    node = crd.crd_for(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    nodes = [node]
    for part in parts:
        if node.get("type") == "array":
            node = node["items"]
            nodes.append(node)  # a list item's own rules (Tenant.spec.owners[]) count as its object's
        node = node["properties"][part]
        nodes.append(node)
    return nodes


CLAIMS = [(path, claim) for path, claims in FIELDS.items() for claim in claims]


@pytest.mark.parametrize(("path", "claim"), CLAIMS, ids=[f"{p}={c.split(':')[0]}" for p, c in CLAIMS])
def test_each_claim_holds(path, claim):
    how, _, what = claim.partition(": ")
    if how == "test":
        relative, _, function = what.partition("::")
        assert (REPO / relative).is_file(), f"{path}: {relative} does not exist"
        assert function in _test_functions(relative), (
            f"{path}: {relative} has no test function {function} (renamed? update tests/field_coverage.py)")
    elif how == "refused":
        if path not in ALL_FIELDS:
            pytest.skip("reported by test_every_claim_names_a_field_that_exists")
        rules = [r for node in _schema_at(path)[-2:] for r in node.get("x-kubernetes-validations", [])]
        assert any(what in r.get("message", "") for r in rules), (
            f"{path}: no CEL rule at the field or its object has a message containing {what!r}; found {rules}")
    elif how == "not-built":
        assert what == Reason.NOT_IMPLEMENTED
        assert any(path == f or path.startswith(f + ".") for f in unbuilt.REPORTED), (
            f"{path} is claimed as not built, but reconcile/unbuilt.py does not report it: add an Unbuilt entry "
            "naming it (or, if it is built now, claim the test that proves it)")
    else:
        pytest.fail(f"{path}: unknown claim {claim!r}; use 'test: ', 'refused: ' or 'not-built: '")


def test_not_implemented_is_what_the_handlers_report():
    handlers = "\n".join(p.read_text() for p in (OPERATOR / "handlers").glob("*.py"))
    assert "Reason.NOT_IMPLEMENTED" in handlers
    assert "unbuilt." in (OPERATOR / "handlers" / "tenant.py").read_text()
    assert "unbuilt." in (OPERATOR / "handlers" / "policies.py").read_text()


def test_every_unbuilt_report_is_claimed_in_the_registry():
    """An Unbuilt entry for a field the registry says is built is stale: the feature landed, drop it."""
    for reported in unbuilt.REPORTED:
        claimed = [p for p, c in FIELDS.items() if (p == reported or p.startswith(reported + "."))
                   and "not-built: NotImplemented" in c]
        assert claimed, f"reconcile/unbuilt.py reports {reported}, which tests/field_coverage.py does not claim as not built"
