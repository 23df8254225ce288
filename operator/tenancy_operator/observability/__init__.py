"""Metrics and logging of the operator itself; independent of the other packages."""

from . import metrics

__all__ = ["metrics"]
