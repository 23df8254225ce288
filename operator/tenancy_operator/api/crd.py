"""CRD generation: turns the pydantic models into structural CustomResourceDefinitions.

`make crds` runs `python -m tenancy_operator.api.crd crds/ charts/tenancy-operator/crds/`; a unit
test regenerates in memory and fails when the committed files differ, so the models stay the single
source of truth.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from .kinds import CATEGORY, KINDS, Kind

__all__ = ["crd_for", "render", "write", "main"]

# JSON-schema keys pydantic emits that a structural OpenAPI v3 schema does not take.
_DROP = {"title", "$defs", "discriminator"}


def _reflow(text: str) -> str:
    """A docstring's lines joined into paragraphs (blank lines and `- ` list items kept), so
    `kubectl explain` wraps the text itself instead of showing the source's line breaks."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines: list[str] = []
        for line in (raw.strip() for raw in paragraph.splitlines()):
            if lines and line and not line.startswith(("- ", "* ")):
                lines[-1] += " " + line
            elif line:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs, fold Optional's anyOf into the plain type, and drop keys Kubernetes refuses."""
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "anyOf" in node:  # first: an Optional model is anyOf [$ref, null]
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {options}")
        merged = dict(options[0])
        merged.update(node)
        node = merged
        if node.get("default", ...) is None:
            node.pop("default")
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        target.update(node)  # description/default set on the field win over the model's own
        node = target
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if node.get("additionalProperties") is True:
        node.pop("additionalProperties")
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("exclusiveMinimum") is not None and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    for key in list(node):
        if key in _DROP:
            node.pop(key)
    if isinstance(node.get("description"), str):
        node["description"] = _reflow(node["description"])
    for key in ("properties",):
        if key in node:
            node[key] = {k: _resolve(v, defs) for k, v in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _resolve(node[key], defs)
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def _schema(model: Any) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _resolve(raw, raw.get("$defs", {}))


def crd_for(kind: Kind) -> dict[str, Any]:
    spec_schema = _schema(kind.spec)
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec_schema,
    }
    if not spec_schema.get("required"):
        # An omitted spec becomes the fully defaulted one, so rules over defaulted fields can evaluate.
        spec_schema["default"] = kind.spec().model_dump(mode="json", by_alias=True, exclude_none=True)
    version: dict[str, Any] = {"name": kind.version, "served": True, "storage": True}
    if kind.status is not None:
        status_schema = _schema(kind.status)
        status_schema["x-kubernetes-preserve-unknown-fields"] = True
        properties["status"] = status_schema
        version["subresources"] = {"status": {}}
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "properties": properties,
        "required": ["spec"],
    }
    if kind.root_rules:
        root["x-kubernetes-validations"] = kind.root_rules
    version["schema"] = {"openAPIV3Schema": root}
    version["additionalPrinterColumns"] = kind.columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "tenancy-operator"}},
        "spec": {
            "group": kind.group,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "plural": kind.plural,
                "singular": kind.singular,
                "listKind": f"{kind.kind}List",
                "shortNames": kind.short_names,
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def render() -> dict[str, str]:
    """File name to YAML text, for every kind."""
    header = "# Generated by `make crds` from operator/tenancy_operator/api; do not edit.\n"
    return {
        f"{k.crd_name}.yaml": header + yaml.safe_dump(crd_for(k), sort_keys=False, width=100)
        for k in KINDS
    }


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.tenancy.dev.yaml"):
        stale.unlink()
    for name, text in render().items():
        (directory / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    for target in argv if argv is not None else sys.argv[1:]:
        write(Path(target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
