"""Building blocks shared by every kind: the model base, condition shape, and validated string types.

The pydantic models in this package are the single source of the CRDs (see `crd.py`). Every field's
attribute docstring becomes its description in the CRD, so `kubectl explain` reads like the docs.
Validation that the API server can do (patterns, enums, bounds, CEL rules) lives here too, attached
with `cel()` so that bad input is refused at `kubectl apply`, not discovered by a reconciler.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "GROUP",
    "VERSION",
    "API_VERSION",
    "Spec",
    "Condition",
    "Conditions",
    "KindStatus",
    "Duration",
    "Quantity",
    "ObjectName",
    "DNSLabel",
    "cel",
    "DURATION_PATTERN",
    "QUANTITY_PATTERN",
    "DNS_LABEL_PATTERN",
    "QUANTITY_RULE",
]

GROUP = "tenancy.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Go's time.ParseDuration format, as CEL's duration() and kubectl users know it ("720h", "1h30m").
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
# Kubernetes resource.Quantity ("500m", "16Gi", "1e3"); the CEL rule isQuantity() double-checks.
QUANTITY_PATTERN = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[kmMGTPE])?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry, for `json_schema_extra`."""
    return {"rule": rule, "message": message, **extra}


class Spec(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """Go's duration text ("720h", "1h30m"; a `Duration` field's value) as a timedelta.

    Raises ValueError for anything else. The one parser of the project: fields, status, manifests."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
QUANTITY_RULE = cel("isQuantity(self)", "must be a Kubernetes quantity, like 500m or 16Gi")
# A field that adds its own rules lists QUANTITY_RULE again: json_schema_extra replaces, not appends.
Quantity = Annotated[
    str,
    Field(pattern=QUANTITY_PATTERN, max_length=32, json_schema_extra={"x-kubernetes-validations": [QUANTITY_RULE]}),
]
ObjectName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
DNSLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]


class Condition(Spec):
    """A Kubernetes condition, as metav1.Condition shapes it."""

    type: str
    """CamelCase type, such as Ready, Reconciling, Stalled, DatabaseReady."""
    status: str
    """True, False or Unknown."""
    reason: str = ""
    """A CamelCase word that machines can match on."""
    message: str = ""
    """What happened and, when something is wrong, what a person can do about it."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""
    last_transition_time: str | None = None
    """When status last changed; it does not move when only the message does."""


# A list-map keyed by type, as Kubernetes conditions are, so server-side apply merges them by type.
Conditions = Annotated[
    list[Condition],
    Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class KindStatus(Spec):
    """Status of a kind whose objects only report whether what they ask for is built: kstatus conditions."""

    model_config = Spec.model_config | {"extra": "allow"}

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    conditions: Conditions
    """Ready and Stalled. Stalled=True with reason NotImplemented names each field whose feature is not
    built yet (and the issue that tracks it)."""
