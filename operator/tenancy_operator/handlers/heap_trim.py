"""Every `malloc_arenas.TRIM_INTERVAL_S` (TENANCY_HEAP_TRIM_INTERVAL, seconds; 0 turns it off), the
heap's free pages go back to the system.

Why: after a batch of tenants glibc holds tens of MB freed but resident (malloc_arenas.py has the
numbers); without this the operator's RSS stays near its batch peak for as long as it runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import kopf

from .. import malloc_arenas

__all__ = ["interval", "run"]

ENV = "TENANCY_HEAP_TRIM_INTERVAL"
log = logging.getLogger(__name__)
_task: asyncio.Task[None] | None = None


def interval(environ: dict[str, str] | None = None) -> float:
    """Seconds between trims from the environment (default `malloc_arenas.TRIM_INTERVAL_S`); 0: off.
    Raises ValueError for a value that is not a number >= 0, so a typo stops the start, not the trims."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    value = malloc_arenas.TRIM_INTERVAL_S if raw == "" else float(raw)
    if not value >= 0:
        raise ValueError(f"{ENV}={raw!r}: seconds >= 0 expected (0 turns the heap trim off)")
    return value


async def run(every: float, trim: Callable[[], bool | None] = malloc_arenas.trim) -> None:
    """Call `trim` in a thread every `every` seconds until it says the C library cannot (None)."""
    while True:
        await asyncio.sleep(every)
        started = time.perf_counter()
        if await asyncio.to_thread(trim) is None:
            log.debug("heap trim: not glibc, stopped")
            return
        log.debug("heap trim took %.1f ms", 1000 * (time.perf_counter() - started))


@kopf.on.startup()
async def _start(**_: Any) -> None:
    global _task
    every = interval()
    if every > 0:
        _task = asyncio.create_task(run(every))


@kopf.on.cleanup()
async def _stop(**_: Any) -> None:
    if _task is not None:
        _task.cancel()
