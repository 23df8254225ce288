"""The e2e tests' and the scale bench's audit log reader across the API server's log rotation.

The API server renames audit.log to audit-<time>.log at 200 MB and starts a new one; a scale bench at
N=500 passed that mid-batch (2026-12-04), and a mark taken before it must still count what came
after, in both files, not nothing.
"""

from __future__ import annotations

import pytest

from e2e import audit


def _rotate(log, stamp: str) -> None:
    log.rename(log.parent / f"audit-{stamp}.log")
    log.write_bytes(b"")


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    monkeypatch.setattr(audit, "LOG", path)
    return path


def _append(log, *lines: str) -> None:
    with log.open("ab") as f:
        for line in lines:
            f.write(line.encode() + b"\n")


def test_lines_after_a_mark_follow_one_rotation(log):
    _append(log, "before")
    since = audit.mark()
    _append(log, "a1", "a2")
    _rotate(log, "2026-12-04T21-02-38.964")
    _append(log, "b1")
    until = audit.mark()
    _append(log, "after")
    assert list(audit.lines(since, until)) == [b"a1", b"a2", b"b1"]
    assert list(audit.lines(since)) == [b"a1", b"a2", b"b1", b"after"]


def test_lines_without_rotation_stop_at_until(log):
    since = audit.mark()
    _append(log, "x", "y")
    until = audit.mark()
    _append(log, "z")
    assert list(audit.lines(since, until)) == [b"x", b"y"]


def test_a_mark_rotated_away_twice_fails_instead_of_counting_nothing(log):
    _append(log, "before")
    since = audit.mark()
    _rotate(log, "2026-12-04T21-00-00.000")
    _rotate(log, "2026-12-04T21-10-00.000")
    (log.parent / "audit-2026-12-04T21-00-00.000.log").unlink()  # the API server keeps one backup
    with pytest.raises(AssertionError, match="rotated more than once"):
        list(audit.lines(since))
