"""One aiohttp ClientSession per running event loop, closed at operator shutdown.

Why this exists: an aiohttp session belongs to the loop it was made on. The operator runs one loop,
but tests run several in turn, and a session made on a closed loop cannot be used again. Each
adapter that speaks HTTP with aiohttp keeps one `LoopSessions` and asks it for the current loop's
session; `close()` (from a kopf cleanup handler) closes them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

__all__ = ["LoopSessions"]


class LoopSessions:
    """The current loop's session from `factory` (called once per loop, and again after a close)."""

    def __init__(self, factory: Callable[[], aiohttp.ClientSession]) -> None:
        self._factory = factory
        self._sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        held = self._sessions.get(id(loop))
        if held is None or held[0] is not loop or held[1].closed:
            # Sessions of loops that have ended are only dropped (their connectors died with them).
            for key, (other, _) in list(self._sessions.items()):
                if other.is_closed():
                    del self._sessions[key]
            held = (loop, self._factory())
            self._sessions[id(loop)] = held
        return held[1]

    async def close(self) -> None:
        """Close the current loop's session; forget every other loop's."""
        loop = asyncio.get_running_loop()
        sessions, self._sessions = self._sessions, {}
        for other, session in sessions.values():
            if other is loop and not session.closed:
                await session.close()
