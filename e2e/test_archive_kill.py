"""SIGKILL of the operator at random points of an archive and of a restore (issue 13).

Each trial kills the operator process group a random moment after asking, starts it again, and
checks the job finished with nothing lost, nothing doubled and no unfinished folder left. Trials per
run: TENANCY_KILL_TRIALS (default 3; the issue asks for 10, e.g. `TENANCY_KILL_TRIALS=10`).
"""

from __future__ import annotations

import json
import os
import random
import time

from . import kube
from .admin import pg_databases
from .conftest import ARCHIVE_DIR
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials
from .test_archive import (
    FULL,
    _delete_and_wait,
    _fill_pg,
    _fill_redis,
    _fresh,
    _pg_fingerprint,
    _redis_snapshot,
)

TRIALS = int(os.environ.get("TENANCY_KILL_TRIALS") or 3)


def _archives_of_uid(uid: str) -> list[str]:
    return sorted(p.name for p in ARCHIVE_DIR.iterdir() if (p / "manifest.json").is_file()
                  and json.loads((p / "manifest.json").read_text()).get("tenantUid") == uid)


def _unfinished(prefix: str) -> list[str]:
    return sorted(p.name for p in ARCHIVE_DIR.iterdir() if p.name.startswith(f".staging-{prefix}"))


def _phase_of(kind: str, name: str, field: str) -> str | None:
    return (((get(kind, name) or {}).get("status") or {}).get(field) or {}).get("state")


def _kill_inside(operator, rng: random.Random, started, max_delay: float = 0.5) -> float:
    """SIGKILL the operator a random moment after `started()` first holds; restart it. The delay."""
    eventually(lambda: bool(started()), 120, 0.01, "the job started")
    delay = rng.uniform(0, max_delay)
    time.sleep(delay)
    operator.kill()
    operator.start()
    return delay


def _trial(operator, rng: random.Random, trial: int, cleanup: list[str]) -> None:
    src, dst = f"arc-kill-{trial}", f"arc-kill-{trial}-to"
    for name in (src, dst):
        _fresh(name)
    cleanup += [dst, src]
    kube.apply(tenant_yaml(src, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=90s", timeout=100)
    creds = credentials(src)
    _fill_pg(creds, 1000)
    _fill_redis(creds, 100)
    tables, keys = _pg_fingerprint(creds), _redis_snapshot(creds["REDIS_KEY_PREFIX"])
    uid = get("tenant", src)["metadata"]["uid"]

    kubectl("patch", "tenant", src, "--type=merge", "-p", '{"spec":{"state":"Archived"}}')
    # Killed inside the job: once its staging folder appears, after a random part of its ~0.5 s.
    archive_kill = _kill_inside(operator, rng, lambda: _unfinished(src + "-"))
    eventually(lambda: _phase_of("tenant", src, "archive") == "Released", 120, 1,
               f"trial {trial}: archive finished after a kill at {archive_kill:.2f} s")
    made = _archives_of_uid(uid)
    assert made == [get("tenant", src)["status"]["archive"]["id"]], (trial, archive_kill, made)  # one, not two
    assert _unfinished(src + "-") == [], trial
    assert f"t_arc_kill_{trial}" not in pg_databases(f"t_arc_kill_{trial}")

    work_before = set(ARCHIVE_DIR.glob(".work-*"))
    kube.apply(tenant_yaml(dst, restoreFrom={"archive": made[0]}, **FULL))
    # Killed inside the restore: once its work folder (verify, then load) appears.
    restore_kill = _kill_inside(operator, rng, lambda: set(ARCHIVE_DIR.glob(".work-*")) - work_before)
    eventually(lambda: _phase_of("tenant", dst, "restore") == "Done", 120, 1,
               f"trial {trial}: restore finished after a kill at {restore_kill:.2f} s")
    assert _pg_fingerprint(credentials(dst)) == tables, (trial, restore_kill)  # nothing lost, nothing doubled
    restored = _redis_snapshot(f"t:{dst}:")
    assert {k: v[:2] for k, v in restored.items()} == {k: v[:2] for k, v in keys.items()}, (trial, restore_kill)
    print(f"\ntrial {trial}: killed the archive {archive_kill:.2f} s and the restore {restore_kill:.2f} s into the job: ok")
    for name in (dst, src):
        _delete_and_wait(name)


def test_sigkill_during_archive_and_restore(backends, operator, cleanup_tenants):
    seed = int(os.environ.get("TENANCY_KILL_SEED") or time.time())
    print(f"\nseed {seed}")
    rng = random.Random(seed)
    for trial in range(TRIALS):
        _trial(operator, rng, trial, cleanup_tenants)
