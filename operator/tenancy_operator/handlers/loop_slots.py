"""A bounded number of slots per asyncio event loop, taken in FIFO order.

kopf runs every handler on one event loop, but tests (and kopf's own restarts of its loop) make more than
one; an `asyncio.Semaphore` made on one loop cannot be awaited on another. `LoopSemaphore` keeps one
semaphore per running loop, weakly keyed, so a closed loop's semaphore goes with it.

Why a bound at all: a batch of 500 new Tenants started 500 passes at once; each took its share of the
executor, the API server and PostgreSQL, and the first tenant was Ready only when nearly all were
(apply-to-Ready p50 at 0.77 of the batch's wall time). With at most 64 at once the early ones finish
early and the batch as a whole takes no longer (bench/scale/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

__all__ = ["LoopSemaphore"]


class LoopSemaphore:
    """At most `limit` holders at once on each event loop; `limit` 0 means no bound.

    `asyncio.Semaphore` wakes waiters in the order they began waiting (FIFO), so a pass queued first
    runs first.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self.limit = limit
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            sem = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return sem

    def full(self) -> bool:
        """Every slot of the running loop is held (never with no bound)."""
        return bool(self.limit) and self._semaphore().locked()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Wait for a slot of the running loop (none with no bound), hold it for the block."""
        if not self.limit:
            yield
            return
        async with self._semaphore():
            yield
