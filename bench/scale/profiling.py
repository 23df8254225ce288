"""py-spy on the operator process during a batch, and where its time went (self and inclusive).

py-spy (`pip install py-spy`) samples the running process from outside: no code change, no restart;
`--gil` keeps the samples of the thread holding the GIL, so the counts are where Python CPU time goes.
Without it (or without ptrace rights) the bench says so and goes on unprofiled.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def start(pid: int, out: Path) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  py-spy is not installed (pip install py-spy): no profile")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "-p", str(pid), "--format", "raw", "--rate", "100", "--gil",
                             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen | None) -> None:
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def summary(collapsed: Path, top: int = 15) -> str:
    """The functions holding the most samples: self (the frame on top) and inclusive (anywhere in the stack)."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples"]
    for label, counts in (("self", own), ("inclusive", inclusive)):
        lines.append(f"{label}:")
        lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in counts.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py:123)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name
