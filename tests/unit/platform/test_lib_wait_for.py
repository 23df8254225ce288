"""platform/lib.sh's wait_for, run by bash: a part that execs late is not called dead, one that died is.

A part is started as `( ... exec CMD ) &` with its pid file written at once; until the subshell has
exec'd, its command line is the starting script's. CI failed twice on a loaded machine with "<part>
exited during start-up" and an empty log, because wait_for asked pid_alive (which looks for the part's
name in the command line) instead of whether the process is there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[3] / "platform" / "lib.sh"

SCRIPT = """
set -euo pipefail
source "$LIB"
RUN=$WORK/run LOGS=$WORK/logs
mkdir -p "$RUN" "$LOGS"
ready() { [[ -e $WORK/ready ]]; }
case $MODE in
  late)  # execs after 1 s; healthy after 2 s
    (sleep 1; exec python3 -c 'import time; time.sleep(8)' latepart) >/dev/null 2>&1 &
    echo $! >"$RUN/latepart.pid"
    (sleep 2; touch "$WORK/ready") >/dev/null 2>&1 &
    wait_for latepart 10 ready
    kill "$(<"$RUN/latepart.pid")"
    echo started ;;
  dead)  # exits at once, never healthy
    (exit 3) &
    echo $! >"$RUN/latepart.pid"
    sleep 0.3
    wait_for latepart 10 ready
    echo started ;;
esac
"""


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "start.sh"  # a file, so the name "latepart" is not in the starter's command line
    script.write_text(SCRIPT)
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LIB": str(LIB), "WORK": str(tmp_path), "MODE": mode})


def test_a_part_that_execs_late_is_waited_for(tmp_path):
    result = _run(tmp_path, "late")
    assert result.returncode == 0 and result.stdout.strip() == "started", result.stderr


def test_a_part_that_died_fails_at_once_naming_it(tmp_path):
    result = _run(tmp_path, "dead")
    assert result.returncode != 0 and "latepart exited during start-up" in result.stderr, result.stderr
