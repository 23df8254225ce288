"""SIGKILL of the operator at random points of an archive and of a restore (issue 13).

Each trial kills the operator process group a random moment inside an archive job and then inside a
restore job, starts it again, and checks each job finished, with nothing lost (every row, key and
secret back), nothing doubled (row counts and checksums equal, one archive per archive job) and no
orphan folder (no staging folder of an export, no work folder of a restore, no archive made by the
restore). Trials per run: TENANCY_KILL_TRIALS (default 1, as in `make test`; `make lifecycle-faults`
runs 10, i.e. 10 kills during archive and 10 during restore). Every trial runs; the counts are
printed, then any failure is reported.
"""

from __future__ import annotations

import json
import os
import random
import time

from . import kube
from .admin import pg_databases, vault_admin
from .conftest import ARCHIVE_DIR
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials
from .test_archive import (
    FULL,
    _delete_and_wait,
    _fill_pg,
    _fill_redis,
    _fresh,
    _kv,
    _pg_fingerprint,
    _redis_snapshot,
)

TRIALS = int(os.environ.get("TENANCY_KILL_TRIALS") or 1)
CHECKS = ("archive finished", "restore finished", "nothing lost", "nothing doubled", "no orphan folder")


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


def _orphans(*tenants: str) -> list[str]:
    """Folders a finished job must not leave: staging folders of exports and restore work folders."""
    return sorted(p.name for p in ARCHIVE_DIR.iterdir() for t in tenants
                  if p.name.startswith(f".staging-{t}-") or p.name == f".work-{t}")


def _trial(operator, rng: random.Random, trial: int, cleanup: list[str], passed: dict[str, int]) -> None:
    src, dst = f"arc-kill-{trial}", f"arc-kill-{trial}-to"
    for name in (src, dst):
        _fresh(name)
    cleanup += [dst, src]
    kube.apply(tenant_yaml(src, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=90s", timeout=100)
    creds = credentials(src)
    _fill_pg(creds, 1000)
    _fill_redis(creds, 100)
    vault_admin().secrets.kv.v2.create_or_update_secret(path=f"tenant-{src}/app", secret={"k": f"v{trial}"},
                                                        mount_point="tenants")
    tables, keys, kv = _pg_fingerprint(creds), _redis_snapshot(creds["REDIS_KEY_PREFIX"]), _kv(src)
    uid = get("tenant", src)["metadata"]["uid"]

    kubectl("patch", "tenant", src, "--type=merge", "-p", '{"spec":{"state":"Archived"}}')
    # Killed inside the job: once its staging folder appears, after a random part of its ~0.5 s.
    archive_kill = _kill_inside(operator, rng, lambda: _unfinished(src + "-"))
    eventually(lambda: _phase_of("tenant", src, "archive") == "Released", 120, 1,
               f"trial {trial}: archive finished after a kill at {archive_kill:.2f} s")
    record = get("tenant", src)["status"]["archive"]
    assert record.get("bytesDone") == record.get("bytesTotal") > 0, (trial, archive_kill, record)  # progress complete
    passed["archive finished"] += 1
    made = _archives_of_uid(uid)
    assert made == [get("tenant", src)["status"]["archive"]["id"]], (trial, archive_kill, made)  # one, not two
    assert _orphans(src) == [], (trial, archive_kill, _orphans(src))
    assert f"t_arc_kill_{trial}" not in pg_databases(f"t_arc_kill_{trial}")

    archives_before = sorted(p.name for p in ARCHIVE_DIR.iterdir() if not p.name.startswith("."))
    work_before = set(ARCHIVE_DIR.glob(".work-*"))
    kube.apply(tenant_yaml(dst, restoreFrom={"archive": made[0]}, **FULL))
    # Killed inside the restore: once its work folder (verify, then load) appears.
    restore_kill = _kill_inside(operator, rng, lambda: set(ARCHIVE_DIR.glob(".work-*")) - work_before)
    eventually(lambda: _phase_of("tenant", dst, "restore") == "Done", 120, 1,
               f"trial {trial}: restore finished after a kill at {restore_kill:.2f} s")
    record = get("tenant", dst)["status"]["restore"]
    assert record.get("bytesDone") == record.get("bytesTotal") > 0, (trial, restore_kill, record)
    passed["restore finished"] += 1
    restored_tables, restored = _pg_fingerprint(credentials(dst)), _redis_snapshot(f"t:{dst}:")
    restored_kv = _kv(dst)
    assert {t: n for t, (n, _) in restored_tables.items()} == {t: n for t, (n, _) in tables.items()}, (trial, restore_kill)
    assert set(restored) == set(keys) and restored_kv == kv, (trial, restore_kill)
    passed["nothing lost"] += 1
    assert restored_tables == tables, (trial, restore_kill)  # same counts and checksums: no row twice
    assert {k: v[:2] for k, v in restored.items()} == {k: v[:2] for k, v in keys.items()}, (trial, restore_kill)
    assert _archives_of_uid(uid) == made, (trial, restore_kill)
    passed["nothing doubled"] += 1
    archives_after = sorted(p.name for p in ARCHIVE_DIR.iterdir() if not p.name.startswith("."))
    assert _orphans(src, dst) == [] and set(archives_after) <= set(archives_before), \
        (trial, restore_kill, _orphans(src, dst), sorted(set(archives_after) - set(archives_before)))
    passed["no orphan folder"] += 1
    print(f"\ntrial {trial}: killed the archive {archive_kill:.2f} s and the restore {restore_kill:.2f} s into the job: ok")
    for name in (dst, src):
        _delete_and_wait(name)


def test_sigkill_during_archive_and_restore(backends, operator, cleanup_tenants):
    seed = int(os.environ.get("TENANCY_KILL_SEED") or time.time())
    print(f"\nseed {seed}, {TRIALS} trials")
    rng = random.Random(seed)
    passed = dict.fromkeys(CHECKS, 0)
    failures = []
    for trial in range(TRIALS):
        try:
            _trial(operator, rng, trial, cleanup_tenants, passed)
        except AssertionError as exc:
            failures.append(f"trial {trial}: {exc}")
            print(f"\ntrial {trial} FAILED: {exc}")
    print(f"\nSIGKILL trials {TRIALS} (seed {seed}): " + ", ".join(f"{c} {passed[c]}/{TRIALS}" for c in CHECKS))
    assert not failures, failures
