"""Metrics and logging of the operator itself; independent of the other packages."""

from . import logs, metrics

__all__ = ["logs", "metrics"]
