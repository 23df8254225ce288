"""A circuit breaker per Backend: stop hammering a server that is down, and say so.

After `threshold` consecutive failures the circuit opens for a cool-down that doubles with each
further failure (up to `max_cooldown`). While open, callers fail fast with the last error, and
tenants on that backend report Degraded naming it; the first success closes it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Breaker", "breaker_for", "breakers", "CircuitOpen"]


class CircuitOpen(Exception):
    pass


@dataclass
class Breaker:
    name: str
    threshold: int = 2
    base_cooldown: float = 2.0
    max_cooldown: float = 30.0
    failures: int = 0
    opened_until: float = 0.0
    last_error: str = ""

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self.opened_until:
            raise CircuitOpen(
                f"backend {self.name} is unavailable ({self.last_error}); retrying in {self.opened_until - now:.0f}s"
            )

    def success(self) -> None:
        self.failures, self.opened_until, self.last_error = 0, 0.0, ""

    def failure(self, error: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.failures += 1
        self.last_error = error
        if self.failures >= self.threshold:
            cooldown = min(self.max_cooldown, self.base_cooldown * 2 ** (self.failures - self.threshold))
            self.opened_until = now + cooldown

    @property
    def open(self) -> bool:
        return time.monotonic() < self.opened_until


_breakers: dict[str, Breaker] = {}


def breakers() -> list[Breaker]:
    """Every breaker made so far (the metrics read their state at scrape time)."""
    return list(_breakers.values())


def breaker_for(backend: str) -> Breaker:
    if backend not in _breakers:
        _breakers[backend] = Breaker(backend)
    return _breakers[backend]
