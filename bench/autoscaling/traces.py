"""Primitives of the autoscaling bench's demand traces: the Trace record, the calendar, and the real
series shipped in a PyPI package. The trace families themselves (generators with seeds and parameter
ranges) are in families.py.

The real series is Taylor's half-hourly electricity demand for England and Wales (June-August 2000)
as shipped inside the ``pmdarima`` wheel (``pmdarima/datasets/taylor.py``). It is read from the
installed file with ``ast`` (no import of pmdarima, no download).
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Trace", "taylor_series", "MINUTES_PER_DAY", "DAYS", "T0_MONDAY"]

MINUTES_PER_DAY = 1440
DAYS = 21
T0_MONDAY = 1704067200.0  # 2024-01-01 00:00 UTC, a Monday


@dataclass(frozen=True)
class Trace:
    """One instance: ``name`` is "family#seed"; ``periodic`` decides the targets it is held to."""

    name: str
    periodic: bool
    y: np.ndarray
    t0_s: float
    capacity_per_replica: float
    note: str


def taylor_series() -> np.ndarray:
    """The 4032 half-hourly values of pmdarima's Taylor dataset, read from the installed wheel."""
    spec = importlib.util.find_spec("pmdarima")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pmdarima is not installed; the real demand trace needs its shipped data")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "taylor.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "array" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.List) and len(arg.elts) > 1000:
                return np.array([float(ast.literal_eval(e)) for e in arg.elts])
    raise RuntimeError(f"no data array found in {path}")
