"""The operator caps glibc's malloc arenas at two (operator/tenancy_operator/malloc_arenas.py).

Each run counts the arenas glibc reports (`<heap nr=` in malloc_info's XML) in a fresh interpreter
after 8 threads, all alive at once, allocated: uncapped, each thread gets an arena of its own.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
from tenancy_operator import malloc_arenas

_PROBE = """
import ctypes, sys, tempfile, threading
from tenancy_operator import malloc_arenas

if sys.argv[1] == "cap":
    assert malloc_arenas.cap() is True
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
THREADS = 8
started, done = threading.Barrier(THREADS + 1), threading.Barrier(THREADS + 1)

def work():
    started.wait()  # all alive at once: an exited thread's arena would go to the next one
    kept = [bytearray(4096) for _ in range(2000)]  # over pymalloc's 512 bytes: glibc's malloc
    done.wait()
    del kept

threads = [threading.Thread(target=work) for _ in range(THREADS)]
for t in threads:
    t.start()
started.wait()
done.wait()
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    assert fp and libc.malloc_info(0, fp) == 0
    libc.fclose(fp)
    print(open(f.name).read().count("<heap nr="))
for t in threads:
    t.join()
"""


def _heaps(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas and malloc_info are glibc's")
def test_the_cap_keeps_eight_allocating_threads_to_two_arenas():
    uncapped, capped = _heaps("default"), _heaps("cap")
    assert capped <= malloc_arenas.ARENAS, (uncapped, capped)
    assert uncapped > capped, (uncapped, capped)


def test_an_explicit_malloc_arena_max_wins():
    # Returns before touching the C library: this test process keeps glibc's default.
    assert malloc_arenas.cap(environ={"MALLOC_ARENA_MAX": "4"}) is False
    assert malloc_arenas.cap(environ={"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}) is False


def test_a_libc_without_glibcs_functions_is_left_alone():
    class Musl:  # no gnu_get_libc_version, no mallopt
        pass

    assert malloc_arenas.cap(environ={}, libc=Musl()) is False


_TRIM_PROBE = """
import ctypes, sys
from tenancy_operator import malloc_arenas

def rss_kb():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: free() keeps the heap top, as after a batch of tenants
libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: these blocks come from the heap, not from mmap
blocks = [libc.malloc(64 * 1024) for _ in range(1600)]  # 100 MB
for b in blocks:
    ctypes.memset(b, 1, 64 * 1024)
keep = blocks[::40]  # a few live blocks across the heap, as long-lived objects are
for b in blocks:
    if b not in keep:
        libc.free(b)
before = rss_kb()
returned = malloc_arenas.trim()
print(returned, before, rss_kb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_hands_a_freed_heap_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", _TRIM_PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    returned, before_kb, after_kb = out.stdout.split()
    assert returned == "True"
    assert int(before_kb) - int(after_kb) > 80_000, f"RSS {before_kb} -> {after_kb} kB"


def test_trim_without_glibc_says_so():
    class NoTrim:
        pass

    assert malloc_arenas.trim(NoTrim()) is None
