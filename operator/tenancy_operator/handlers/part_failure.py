"""A part that raised, as a failing PartResult: its condition False with a reason a person can act on."""

from __future__ import annotations

import logging

from ..backends import kube
from ..reconcile.status import PartResult

__all__ = ["failure", "api_failure"]


def failure(condition: str, exc: Exception, logger: logging.Logger) -> PartResult:
    """A part that raised: a failing PartResult (Ready False with the reason in this pass's status)."""
    if isinstance(exc, kube.KubeError):
        return api_failure(condition, exc)
    logger.exception("%s failed", condition)
    return PartResult(condition, False, "UnexpectedError", f"{type(exc).__name__}: {exc}")


def api_failure(condition: str, exc: kube.KubeError) -> PartResult:
    if exc.status == 403 and "exceeded quota" in exc.message:
        return PartResult(condition, False, "QuotaExceeded",
                          f"a ResourceQuota in the tenant namespace refuses the operator's object: {exc.message}")
    if exc.status == 403:
        # Retried with backoff rather than Stalled: a RoleBinding the operator just made takes a moment
        # to reach the authorizer. If it lasts, the message says what a person must fix.
        return PartResult(condition, False, "Forbidden",
                          f"the operator lacks permission (check its RBAC, chart value rbac.*): {exc.message}")
    return PartResult(condition, False, "ApiError", f"API server said {exc}")
