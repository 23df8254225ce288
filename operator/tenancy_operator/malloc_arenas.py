"""glibc's allocator for the operator process: arenas capped unless the environment chooses the number
(`cap`), and the heap's free pages handed back to the system (`trim`).

glibc gives a thread its own malloc arena the first time it allocates, up to 8 per CPU core, and an
arena keeps memory it has freed but cannot return to the system. The operator's threads are asyncio's
default executor, which runs every blocking call (OpenBao's hvac, and the Kubernetes API calls until
they moved to aiohttp on the event loop; `asyncio.to_thread`), so each of them ended up with an arena.
Measured at 1000 tenants: 253 MB of RSS with glibc's default, 225 MB with MALLOC_ARENA_MAX=2.

`cap()` must run before the process starts threads: an arena, once made, stays. Importing the handlers
already starts one (numpy's OpenBLAS workers), so `__main__` calls it before that import.

`trim()`: a batch of tenants leaves glibc's heaps with much memory freed but still counted in RSS:
glibc returns only the top of a heap, above a threshold that grows with the largest blocks freed.
Measured at 1000 tenants after the batch, in the idle window (2026-12-06): heaps 108 MB, 51 MB in use,
58 MB free (30 MB of it at the top); one malloc_trim(0) took 14 ms and RSS went from 275 to 224 MB.
Verify passes touch part of it again (249 MB a minute later), so the operator trims every
`TRIM_INTERVAL_S` (handlers/heap_trim.py), not once.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ARENAS", "ENV", "M_ARENA_MAX", "TRIM_INTERVAL_S", "cap", "trim"]

logger = logging.getLogger(__name__)

ARENAS = 2
"""Arenas (a count) the process may have, the main thread's included."""
ENV = "MALLOC_ARENA_MAX"
"""Set at all (any value), glibc's own reading of it wins and `cap()` does nothing."""
M_ARENA_MAX = -8
"""glibc's malloc.h: the `mallopt` parameter for the arena limit."""
_TUNABLE = "glibc.malloc.arena_max"  # the same setting through GLIBC_TUNABLES
TRIM_INTERVAL_S = 30.0
"""Seconds between two `trim()` calls of the running operator (TENANCY_HEAP_TRIM_INTERVAL overrides; 0: never)."""


def cap(arenas: int = ARENAS, environ: Mapping[str, str] | None = None, libc: Any = None) -> bool:
    """Limit glibc to `arenas` malloc arenas. True when applied; False when the environment sets the
    limit (MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES), or the C library is not
    glibc or refused it.

    `libc` is the C library to call (the process's own by default).
    """
    environ = os.environ if environ is None else environ
    if ENV in environ:
        logger.debug("malloc arenas: %s=%r set, left to glibc", ENV, environ[ENV])
        return False
    if _TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        logger.debug("malloc arenas: GLIBC_TUNABLES sets %s, left to glibc", _TUNABLE)
        return False
    try:
        libc = ctypes.CDLL(None) if libc is None else libc
        version = libc.gnu_get_libc_version
        mallopt = libc.mallopt
    except (AttributeError, OSError, TypeError) as exc:  # musl, macOS, ...: no glibc, nothing to cap
        logger.debug("malloc arenas: not glibc (%s), left alone", exc)
        return False
    version.restype = ctypes.c_char_p
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        logger.debug("malloc arenas: glibc %s refused M_ARENA_MAX=%d", version().decode(), arenas)
        return False
    logger.info("malloc arenas capped at %d (glibc %s; %s overrides)", arenas, version().decode(), ENV)
    return True


def trim(libc: Any = None) -> bool | None:
    """Give the free pages of glibc's heaps back to the system (malloc_trim(0): the top of each heap
    and, since glibc 2.8, whole free pages inside it). True when memory was returned, False when none
    was, None when the C library is not glibc. Milliseconds for a heap of ~100 MB (14 ms measured at
    1000 tenants); ctypes releases the GIL for the call, and glibc locks each arena while it trims it,
    so other threads go on allocating (handlers/heap_trim.py runs it in a thread, off the event loop).

    `libc` is the C library to call (the process's own by default).
    """
    try:
        libc = ctypes.CDLL(None) if libc is None else libc
        malloc_trim = libc.malloc_trim
    except (AttributeError, OSError, TypeError):  # musl, macOS, ...: nothing to trim this way
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))
