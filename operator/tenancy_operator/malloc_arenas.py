"""Caps glibc's malloc arenas for the operator process, unless the environment chooses the number.

glibc gives a thread its own malloc arena the first time it allocates, up to 8 per CPU core, and an
arena keeps memory it has freed but cannot return to the system. The operator's threads are asyncio's
default executor, which runs every blocking call (OpenBao's hvac, and the Kubernetes API calls until
they moved to aiohttp on the event loop; `asyncio.to_thread`), so each of them ended up with an arena.
Measured at 1000 tenants: 253 MB of RSS with glibc's default, 225 MB with MALLOC_ARENA_MAX=2.

`cap()` must run before the process starts threads: an arena, once made, stays. Importing the handlers
already starts one (numpy's OpenBLAS workers), so `__main__` calls it before that import.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ARENAS", "ENV", "M_ARENA_MAX", "cap"]

logger = logging.getLogger(__name__)

ARENAS = 2
"""Arenas (a count) the process may have, the main thread's included."""
ENV = "MALLOC_ARENA_MAX"
"""Set at all (any value), glibc's own reading of it wins and `cap()` does nothing."""
M_ARENA_MAX = -8
"""glibc's malloc.h: the `mallopt` parameter for the arena limit."""
_TUNABLE = "glibc.malloc.arena_max"  # the same setting through GLIBC_TUNABLES


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
