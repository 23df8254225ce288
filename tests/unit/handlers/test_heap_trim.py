"""The heap trim loop (handlers/heap_trim.py): its interval setting and when it stops."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tenancy_operator import malloc_arenas
from tenancy_operator.handlers import heap_trim


def test_the_interval_defaults_reads_the_environment_and_refuses_nonsense():
    assert heap_trim.interval({}) == malloc_arenas.TRIM_INTERVAL_S
    assert heap_trim.interval({heap_trim.ENV: "0"}) == 0
    assert heap_trim.interval({heap_trim.ENV: "2.5"}) == 2.5
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ValueError):
            heap_trim.interval({heap_trim.ENV: bad})


def test_the_loop_trims_off_the_event_loop_until_the_library_cannot():
    calls: list[str] = []
    answers = iter([True, False, None, True])

    def trim() -> bool | None:
        calls.append(threading.current_thread().name)
        return next(answers)

    asyncio.run(asyncio.wait_for(heap_trim.run(0.001, trim), timeout=5))
    assert len(calls) == 3, "stops at the first None, keeps going on True and False"
    assert threading.main_thread().name not in calls
