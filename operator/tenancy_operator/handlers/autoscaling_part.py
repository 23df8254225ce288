"""The AutoscalingReady part: an HPA per autoscaling rule, fed by forecasts (see issue 7).

Placeholder until the forecasting integration lands: with no rules it reports nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api.tenant import TenantSpec
from ..reconcile.status import PartResult

__all__ = ["ensure", "CONDITION"]

CONDITION = "AutoscalingReady"


async def ensure(tenant: str, uid: str, namespace: str, spec: TenantSpec,
                 logger: logging.Logger) -> tuple[list[PartResult], dict[str, Any], list[str]]:
    """(parts, status fields, repaired). Parts: AutoscalingReady and, informational, AnomalyDetected."""
    return [], {}, []
