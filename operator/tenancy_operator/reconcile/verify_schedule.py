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
less than `RECENT` (0.9) of an interval ago; else True. `finished(name, started)` records a finished
pass by the monotonic time it began (its reads are that old). kopf starts a timer's next firing an
interval after the last one ended, so on its own clock every firing is due; a firing is skipped only
after another pass (a creation or an update) began less than 0.9 interval before it, and then the next
firing is due. So a tenant is read at least once in about 1.9 verify intervals (3.9 while every pass
slot stays taken: `defer` lets two firings in a row wait), never twice in 0.9 of one. Half an
interval (before) let the first firing after a batch's creations run a second full pass of each tenant
while the batch was still converging: at N=500, 13% more backend work and 67 s instead of 55 s to all
Ready (bench/scale/RESULTS.md). `forget(name)` drops a deleted tenant. Times are seconds of
`time.monotonic()`.

`defer(name)` asks whether a firing may wait for the next one because every pass slot is taken (a
batch of creations: a verify pass queued behind them only delays them and reads state that is seconds
old). It says yes at most `MAX_DEFERRALS` times in a row for a tenant, so drift is still found within a
few intervals however busy the process stays; a finished pass (or `forget`) resets the count.
"""

from __future__ import annotations

__all__ = ["VerifySchedule", "MAX_DEFERRALS", "RECENT"]

RECENT = 0.9
"""A pass that began less than this share of the verify interval ago makes a verify pass needless."""

MAX_DEFERRALS = 2
"""Firings of one tenant's verify timer that may wait in a row while every pass slot is taken."""


class VerifySchedule:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._began: dict[str, float] = {}
        self._deferred: dict[str, int] = {}

    def finished(self, name: str, started: float) -> None:
        """A pass of `name` that began at `started` ran to its end (clean, repaired or with parts failing)."""
        self._began[name] = max(started, self._began.get(name, started))
        self._deferred.pop(name, None)

    def defer(self, name: str) -> bool:
        """Every pass slot is taken: True (wait for the next firing) unless this tenant's firings already
        waited MAX_DEFERRALS times in a row."""
        count = self._deferred.get(name, 0)
        if count >= MAX_DEFERRALS:
            return False
        self._deferred[name] = count + 1
        return True

    def due(self, name: str, now: float, running: bool) -> bool:
        if running:
            return False
        began = self._began.get(name)
        return began is None or now - began >= self.interval * RECENT

    def forget(self, name: str) -> None:
        self._began.pop(name, None)
        self._deferred.pop(name, None)
