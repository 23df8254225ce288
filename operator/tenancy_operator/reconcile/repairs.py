"""Repairs that come back: a write repeated on consecutive passes is a comparison defect, not drift.

A verify pass that finds drift writes the object back; the next pass then finds it as wanted. If the
same object is "repaired" again on the very next pass of the same generation, nothing external undid
it in between as a rule: our comparison disagrees with how the server stores the object (a stale
cached reference, a default the server adds, a quantity it rewrites). Writing it every pass for ever
costs a write per object per pass and a Warning Event each time, and hides real drift in the noise.

`RepairTracker` notices it and says what to do, without I/O: report the recurring objects once per
generation (log one error with the diff, post one Event, forget cached references), then hold the
tenant's verify passes back, doubling the pause each time it recurs (up to `max_hold` passes), so a
defect costs a write per pause instead of per pass. A pass that no longer repairs the object, or a
new generation, clears it.

Only the same difference counts: a pass must write the object for the same reason as the pass
before (equal diff text, as in `Report.diffs`). Creating a missing object never counts (something
deleted it: real drift), nor does a write whose reason moved on (a rotation staging new passwords,
then its overlap ending), nor anything across a change of `context` (the credential version).

Shapes: `record(key, generation, repaired, context)` takes what a pass wrote, object description ->
what differed (as in `Report.diffs`), and returns a `Verdict`; `hold(key, generation)` is asked
before a verify pass and says whether to skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Verdict", "RepairTracker"]


@dataclass(frozen=True)
class Verdict:
    recurring: tuple[str, ...] = ()
    """Objects repaired on this pass and on the one before it, at the same generation."""
    new: tuple[str, ...] = ()
    """The recurring objects not yet reported at this generation: log, Event and forget caches for these."""
    hold_passes: int = 0
    """How many of the following verify passes to skip."""


MISSING = "missing"


@dataclass
class _State:
    generation: int
    context: str = ""
    last: frozenset[tuple[str, str]] = frozenset()
    reported: set[str] = field(default_factory=set)
    streak: int = 0
    """Consecutive passes that repeated a repair; sets the length of the pause."""
    holding: int = 0


class RepairTracker:
    def __init__(self, max_hold: int = 32) -> None:
        self.max_hold = max_hold
        self._by_key: dict[str, _State] = {}

    def _state(self, key: str, generation: int, context: str) -> _State:
        state = self._by_key.get(key)
        if state is None or state.generation != generation or state.context != context:
            state = self._by_key[key] = _State(generation, context)
        return state

    def record(self, key: str, generation: int, repaired: dict[str, str], context: str = "") -> Verdict:
        """Remember what this pass wrote and why; say which writes repeat the previous pass's."""
        state = self._state(key, generation, context)
        now = frozenset((what, why) for what, why in repaired.items() if why != MISSING)
        recurring = tuple(sorted(what for what, _ in now & state.last))
        state.last = now
        if not recurring:
            state.streak = state.holding = 0
            state.reported &= {what for what, _ in now}  # one that settled is reported again if it comes back
            return Verdict()
        state.streak += 1
        new = tuple(r for r in recurring if r not in state.reported)
        state.reported.update(recurring)
        state.holding = min(self.max_hold, 2 ** state.streak)
        return Verdict(recurring, new, state.holding)

    def hold(self, key: str, generation: int) -> bool:
        """True when this verify pass should be skipped (a repeated repair is pausing the tenant)."""
        state = self._by_key.get(key)
        if state is None or state.generation != generation or state.holding <= 0:
            return False
        state.holding -= 1
        return True

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
