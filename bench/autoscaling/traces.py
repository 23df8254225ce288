"""Demand traces for the autoscaling bench: synthetic shapes plus a real series from a PyPI package.

Why this exists: each trace stresses one thing the issue names (steep periodic ramps, a scheduled
spike, weak or no periodicity, bursts, flash crowds, holidays, a lasting level shift, a pattern moved
by an hour) and says whether it has usable periodicity, which decides the targets it is held to.
All traces are 1-minute series of at least 21 days starting on a Monday 00:00 UTC; the first 14 days
train, the rest test. Everything is seeded, so runs are repeatable.

The real series is Taylor's half-hourly electricity demand for England and Wales (June-August 2000)
as shipped inside the ``pmdarima`` wheel (``pmdarima/datasets/taylor.py``). It is read from the
installed file with ``ast`` (no import of pmdarima, no download), then interpolated to 1 minute.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Trace", "make_traces", "TRACE_NAMES", "QUICK_TRACES", "taylor_series", "MINUTES_PER_DAY"]

MINUTES_PER_DAY = 1440
DAYS = 21
T0_MONDAY = 1704067200.0  # 2024-01-01 00:00 UTC, a Monday


@dataclass(frozen=True)
class Trace:
    name: str
    periodic: bool
    y: np.ndarray
    t0_s: float
    capacity_per_replica: float
    note: str


def _weekday_profile(minute_of_day: np.ndarray, shift_min: float = 0.0) -> np.ndarray:
    """Office-hours shape with a steep 08:00 login ramp and a steep lunch ramp (multiplier of base)."""
    m = (minute_of_day - shift_min) % MINUTES_PER_DAY
    p = np.full(m.shape, 0.25)
    morning = np.clip((m - 480) / 4.0, 0, 1)  # 08:00 -> 08:04: x4
    p = p + 0.75 * morning
    lunch = np.clip((m - 720) / 3.0, 0, 1) * np.clip((780 - m) / 10.0 + 1, 0, 1)  # 12:00-13:10
    p = p + 0.45 * lunch
    evening = np.clip((m - 1020) / 120.0, 0, 1)  # 17:00 -> 19:00 down to 0.5
    p = p - 0.5 * evening
    late = np.clip((m - 1260) / 120.0, 0, 1)  # 21:00 -> 23:00 down to 0.25
    p = p - 0.25 * late
    return np.maximum(p, 0.2)


def _weekend_profile(minute_of_day: np.ndarray, shift_min: float = 0.0) -> np.ndarray:
    m = (minute_of_day - shift_min) % MINUTES_PER_DAY
    return 0.3 + 0.15 * np.exp(-(((m - 840) / 180.0) ** 2))


def _noise(rng: np.random.Generator, n: int, sd: float = 0.04, drift_sd: float = 0.004) -> np.ndarray:
    white = rng.normal(0.0, sd, n)
    drift = np.zeros(n)
    e = rng.normal(0.0, drift_sd, n)
    for i in range(1, n):  # slow AR(1) wander, a few percent
        drift[i] = 0.995 * drift[i - 1] + e[i]
    return np.exp(white + drift)


def _office(rng: np.random.Generator, days: int, base: float, holidays: tuple[int, ...] = (), shift_from_day: int | None = None) -> np.ndarray:
    out = []
    for d in range(days):
        mod = np.arange(MINUTES_PER_DAY, dtype=float)
        jitter = float(rng.integers(-1, 2))  # the ramp moves by up to a minute day to day
        shift = 60.0 * (-1.0 if shift_from_day is not None and d >= shift_from_day else 0.0)
        weekend = d % 7 >= 5 or d in holidays
        prof = _weekend_profile(mod, shift) if weekend else _weekday_profile(mod, shift + jitter)
        out.append(prof)
    y = base * np.concatenate(out)
    return y * _noise(rng, len(y))


def _daily_spike(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * MINUTES_PER_DAY
    t = np.arange(n, dtype=float)
    mod = t % MINUTES_PER_DAY
    y = 400.0 * (1.0 + 0.3 * np.sin(2 * math.pi * (mod - 420) / MINUTES_PER_DAY))
    spike = ((mod >= 120) & (mod < 135)).astype(float)  # 02:00 batch job for 15 minutes, instant
    y = y * (1.0 + 2.0 * spike)
    return y * _noise(rng, n)


def _random_walk(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * MINUTES_PER_DAY
    x = np.zeros(n)
    e = rng.normal(0.0, 0.02, n)
    for i in range(1, n):
        x[i] = 0.9995 * x[i - 1] + e[i]
    return 500.0 * np.exp(np.clip(x, -1.5, 1.5)) * _noise(rng, n, 0.03, 0.0)


def _weak(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * MINUTES_PER_DAY
    t = np.arange(n, dtype=float)
    season = 1.0 + 0.08 * np.sin(2 * math.pi * t / MINUTES_PER_DAY)
    return _random_walk(rng, days) * season


def _bursts(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * MINUTES_PER_DAY
    y = np.full(n, 300.0)
    k = rng.poisson(6 * days)
    for s in rng.integers(0, n, k):
        dur = int(rng.integers(5, 31))
        y[s : s + dur] *= float(rng.uniform(1.8, 3.0))
    return y * _noise(rng, n)


def _flash(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * MINUTES_PER_DAY
    t = np.arange(n, dtype=float)
    y = 400.0 * (1.0 + 0.15 * np.sin(2 * math.pi * (t % MINUTES_PER_DAY - 420) / MINUTES_PER_DAY))
    extra = np.zeros(n)
    for s in rng.integers(0, n - 200, max(1, days // 2)):
        size = float(rng.uniform(2.0, 4.0))
        k = np.arange(n - s, dtype=float)
        extra[s:] += size * np.minimum(k / 2.0, 1.0) * np.exp(-k / 45.0)
    return y * (1.0 + extra) * _noise(rng, n)


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


def _taylor(days: int) -> np.ndarray:
    half_hourly = taylor_series()[: days * 48 + 1]
    x = np.arange(days * MINUTES_PER_DAY, dtype=float) / 30.0
    return np.interp(x, np.arange(len(half_hourly), dtype=float), half_hourly)


TRACE_NAMES = (
    "ramps", "daily_spike", "weak", "random_walk", "bursts",
    "flash_crowd", "holidays", "level_shift", "hour_shift", "taylor_real",
)
QUICK_TRACES = ("ramps", "random_walk", "hour_shift")


def make_traces(names: tuple[str, ...] = TRACE_NAMES, days: int = DAYS, seed: int = 7) -> list[Trace]:
    out = []
    for name in names:
        rng = np.random.default_rng(seed + 101 * TRACE_NAMES.index(name))
        if name == "ramps":
            tr = Trace(name, True, _office(rng, days, 600.0), T0_MONDAY, 50.0, "daily+weekly, steep 08:00 and 12:00 ramps")
        elif name == "daily_spike":
            tr = Trace(name, True, _daily_spike(rng, days), T0_MONDAY, 50.0, "sine day + 02:00 x3 batch spike")
        elif name == "weak":
            tr = Trace(name, False, _weak(rng, days), T0_MONDAY, 50.0, "8% daily sine under a random walk")
        elif name == "random_walk":
            tr = Trace(name, False, _random_walk(rng, days), T0_MONDAY, 50.0, "mean-reverting log random walk")
        elif name == "bursts":
            tr = Trace(name, False, _bursts(rng, days), T0_MONDAY, 50.0, "random x1.8-3 bursts, 5-30 min")
        elif name == "flash_crowd":
            tr = Trace(name, False, _flash(rng, days), T0_MONDAY, 50.0, "x3-5 flash crowds decaying over ~1 h")
        elif name == "holidays":
            y = _office(rng, days, 600.0, holidays=(3, 15, 18))
            tr = Trace(name, True, y, T0_MONDAY, 50.0, "ramps with public holidays on days 3, 15, 18")
        elif name == "level_shift":
            y = _office(rng, days, 600.0)
            y[int(15.5 * MINUTES_PER_DAY) :] *= 1.6
            tr = Trace(name, True, y, T0_MONDAY, 50.0, "ramps, x1.6 lasting from day 15 12:00")
        elif name == "hour_shift":
            y = _office(rng, days, 600.0, shift_from_day=14)
            tr = Trace(name, True, y, T0_MONDAY, 50.0, "ramps one hour earlier from day 14 on")
        elif name == "taylor_real":
            tr = Trace(name, True, _taylor(days), 960163200.0, 1500.0, "real: GB electricity demand 2000 (pmdarima)")
        else:
            raise ValueError(f"unknown trace {name}")
        out.append(tr)
    return out
