"""When a periodic verify pass is worth running: not while another pass of the same tenant runs, and
not right after one finished.

A verify pass reads every part of a tenant and writes where it finds drift: exactly what a create or
update pass does. kopf's timer fires on its own clock, from the moment the operator sees the Tenant,
whatever else runs; so when hundreds of Tenants are applied at once and their creation takes longer
than the verify interval (every tenant progresses together on one event loop), each timer firing
queued a second full pass behind the creation's lock and ran it as soon as the creation finished: the
same reads again, on a process that was already CPU bound (bench/scale/RESULTS.md, issue #20).

`VerifySchedule` decides without I/O. `due(name, now, running)` says whether a verify pass should
run: False while another pass of that tenant holds its lock (`running`; that pass reads everything
this one would and, if it fails, kopf retries it), and False when the last pass that finished began
less than half an interval ago; else True. `finished(name, started)` records a finished pass by the
monotonic time it began (its reads are that old). So a pass runs at least once in 1.5 verify
intervals, never twice in half of one. `forget(name)` drops a deleted tenant. Times are seconds of
`time.monotonic()`.
"""

from __future__ import annotations

__all__ = ["VerifySchedule"]


class VerifySchedule:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._began: dict[str, float] = {}

    def finished(self, name: str, started: float) -> None:
        """A pass of `name` that began at `started` ran to its end (clean, repaired or with parts failing)."""
        self._began[name] = max(started, self._began.get(name, started))

    def due(self, name: str, now: float, running: bool) -> bool:
        if running:
            return False
        began = self._began.get(name)
        return began is None or now - began >= self.interval / 2

    def forget(self, name: str) -> None:
        self._began.pop(name, None)
