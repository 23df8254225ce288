"""Runs last: `make down` leaves nothing behind, and `make up` on warm caches is quick."""

from __future__ import annotations

import os
import subprocess
import time

from .kube import REPO

OFFSET = int(os.environ.get("TENANCY_PORT_OFFSET") or 0)  # platform/lib.sh
PORTS = [p + OFFSET for p in (12379, 12380, 16443, 16257, 15432, 16379, 18200)]


def _listening() -> set[int]:
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        local = line.split()[3]
        ports.add(int(local.rsplit(":", 1)[1]))
    return ports & set(PORTS)


def _platform_processes() -> list[str]:
    """Processes whose command line names the platform's state (as linked or resolved) or PostgreSQL's
    folder outside it (platform/lib.sh PG_OUTSIDE, for a checkout only root can read)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    pg_outside = subprocess.run(["bash", "-c", f'source "{REPO}/platform/lib.sh" && echo "$PG_OUTSIDE"'],
                                capture_output=True, text=True, check=True).stdout.strip()
    places = {str(REPO / ".platform"), str((REPO / ".platform").resolve()), pg_outside}
    return [line for line in out.splitlines() if any(p in line for p in places) and "ps -eo" not in line]


def test_down_leaves_nothing_and_up_is_fast(platform):
    subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "down"], check=True, timeout=120)
    assert _listening() == set(), f"ports still listening after make down: {_listening()}"
    assert _platform_processes() == [], _platform_processes()
    started = time.monotonic()
    subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "up"], check=True, timeout=300)
    elapsed = time.monotonic() - started
    print(f"\nsecond `make up` (warm caches): {elapsed:.1f}s")
    assert _listening() >= {p + OFFSET for p in (12379, 16443, 16257, 15432, 16379, 18200)}, _listening()
