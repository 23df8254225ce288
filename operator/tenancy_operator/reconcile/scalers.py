"""Other scalers on a rule's target, and what the HPA controller says about the rule's own HPA (issue 21).

Why this exists: two scalers on one workload fight. The HPA controller marks every HPA whose pods
another HPA also selects `AmbiguousSelector` and stops them all, and a KEDA ScaledObject drives its
own HPA; meanwhile the Tenant said `AutoscalingReady=True`. So on every pass the handler finds every
other scaler of each rule's target (HPAs the rule did not make, KEDA ScaledObjects, and an earlier
rule of the same tenant on the same target, which CEL refuses at apply but a Tenant stored before that
rule existed may still hold) and, while there is one, keeps no HPA of its own for the rule (the user's
scaler wins; the rule waits). And it reads the HPA controller's own conditions on the rule's HPA.
Pure functions over plain dicts; the handler (handlers/autoscaling_part.py) does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..api.tenant import AutoscalingRule

__all__ = ["other_scalers", "hpa_problems", "blocking", "METRIC_READ_REASONS"]

METRIC_READ_REASONS = frozenset({
    "FailedGetExternalMetric", "FailedGetObjectMetric", "FailedGetPodsMetric", "FailedGetResourceMetric",
    "FailedGetContainerResourceMetric",
})
"""ScalingActive=False reasons that only mean "cannot read the metric now": the HPA still holds
minReplicas (so a Floor lift still acts) and recovers by itself once the metrics API answers."""


def _target_of(ref: Mapping[str, Any] | None) -> tuple[str, str]:
    ref = ref or {}
    # KEDA's scaleTargetRef.kind defaults to Deployment; an HPA's is required.
    return str(ref.get("kind") or "Deployment"), str(ref.get("name") or "")


def other_scalers(rule: AutoscalingRule, earlier: Iterable[AutoscalingRule], hpas: Iterable[Mapping[str, Any]],
                  scaled_objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every other scaler of the rule's target, sorted: `HorizontalPodAutoscaler/<name>`,
    `ScaledObject/<name>` or `rule <name>`.

    ``hpas``: the HPAs in the tenant namespace that no rule of this tenant made; ``scaled_objects``:
    the KEDA ScaledObjects there (empty where KEDA is not installed); ``earlier``: the tenant's rules
    listed before this one (the first rule on a target keeps it).
    """
    target = (rule.target_ref.kind, rule.target_ref.name)
    found = [f"rule {r.name}" for r in earlier if (r.target_ref.kind, r.target_ref.name) == target]
    for hpa in hpas:
        meta = hpa.get("metadata") or {}
        if _target_of((hpa.get("spec") or {}).get("scaleTargetRef")) == target:
            found.append(f"HorizontalPodAutoscaler/{meta.get('name')}")
    for so in scaled_objects:
        if _target_of((so.get("spec") or {}).get("scaleTargetRef")) == target:
            found.append(f"ScaledObject/{(so.get('metadata') or {}).get('name')}")
    return sorted(set(found))


def hpa_problems(hpa: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The HPA controller's False `ScalingActive` / `AbleToScale` conditions on ``hpa``, as
    ``{"type", "reason", "message"}`` (empty when it scales, or before its first sync)."""
    conditions = ((hpa or {}).get("status") or {}).get("conditions") or []
    return [{"type": c.get("type", ""), "reason": c.get("reason", ""), "message": c.get("message", "")}
            for c in conditions
            if c.get("type") in ("ScalingActive", "AbleToScale") and c.get("status") == "False"]


def blocking(problems: Iterable[Mapping[str, str]]) -> dict[str, str] | None:
    """The first problem that stops the HPA from scaling at all (AmbiguousSelector, ScalingDisabled,
    FailedGetScale, ...), or None. A metric read failure alone is not one (see METRIC_READ_REASONS)."""
    return next((p for p in problems
                 if not (p["type"] == "ScalingActive" and p["reason"] in METRIC_READ_REASONS)), None)
