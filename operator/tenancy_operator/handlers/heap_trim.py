"""Every `malloc_arenas.TRIM_INTERVAL_S`, the heap's free pages go back to the system.

Why: after a batch of tenants glibc holds tens of MB freed but resident (malloc_arenas.py has the
numbers); without this the operator's RSS stays at its batch peak for as long as it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from .. import malloc_arenas

__all__: list[str] = []

log = logging.getLogger(__name__)
_task: asyncio.Task[None] | None = None


async def _loop(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        if malloc_arenas.trim() is None:
            log.debug("heap trim: not glibc, stopped")
            return


@kopf.on.startup()
async def _start(**_: Any) -> None:
    global _task
    _task = asyncio.create_task(_loop(malloc_arenas.TRIM_INTERVAL_S))


@kopf.on.cleanup()
async def _stop(**_: Any) -> None:
    if _task is not None:
        _task.cancel()
