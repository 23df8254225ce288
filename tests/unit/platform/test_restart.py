"""platform/restart.sh, run by bash on a copy of the platform scripts: a part that is not running is refused.

Restarting a stopped part used to "succeed" (stop_pid found nothing to stop, up.sh started it), so a fault
test counted a restart that never happened. restart.sh, lib.sh and versions.env are copied into a
folder of their own, so .platform (and its run/ pid files) is a temporary one and never the real
platform's; up.sh there is a stub that records its call. The part is a dummy process named like
redis-server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[3] / "platform"
PART = "redis-server"


def _platform(tmp_path: Path) -> Path:
    """A repository folder with the copied scripts and an empty .platform/run; returns its .platform."""
    (tmp_path / "platform").mkdir()
    for name in ("restart.sh", "lib.sh", "versions.env"):
        shutil.copy(PLATFORM / name, tmp_path / "platform" / name)
    (tmp_path / "platform" / "up.sh").write_text('echo "up.sh TENANCY_RESTARTING=$TENANCY_RESTARTING" >>"$(dirname "$0")/../up.calls"\n')
    state = tmp_path / ".platform"
    (state / "run").mkdir(parents=True)
    return state


def _restart(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(tmp_path / "platform" / "restart.sh"), PART], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def _up_calls(tmp_path: Path) -> str:
    calls = tmp_path / "up.calls"
    return calls.read_text() if calls.exists() else ""


def test_a_running_part_is_stopped_and_started_again(tmp_path):
    state = _platform(tmp_path)
    part = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", PART])
    try:
        (state / "run" / f"{PART}.pid").write_text(f"{part.pid}\n")
        result = _restart(tmp_path)
        assert result.returncode == 0, result.stderr
        assert part.wait(timeout=10) != 0  # stopped by restart.sh's SIGTERM
        assert f"restarted {PART}" in result.stderr
        assert _up_calls(tmp_path) == "up.sh TENANCY_RESTARTING=1\n"
    finally:
        part.kill()
        part.wait()


def test_a_part_without_a_pid_file_is_refused_naming_it(tmp_path):
    _platform(tmp_path)
    result = _restart(tmp_path)
    assert result.returncode != 0
    assert f"{PART} is not running" in result.stderr, result.stderr
    assert "restarted" not in result.stderr
    assert _up_calls(tmp_path) == ""  # nothing was started in its place


def test_a_pid_file_naming_another_process_is_refused_and_that_process_left_alone(tmp_path):
    state = _platform(tmp_path)
    other = subprocess.Popen(["sleep", "60"])  # a stale pid file whose pid now names something else
    try:
        (state / "run" / f"{PART}.pid").write_text(f"{other.pid}\n")
        result = _restart(tmp_path)
        assert result.returncode != 0
        assert f"{PART} is not running" in result.stderr, result.stderr
        assert other.poll() is None
        assert _up_calls(tmp_path) == ""
    finally:
        other.kill()
        other.wait()
