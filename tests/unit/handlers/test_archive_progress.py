"""Progress of an archive or restore in status: throttled, and silent when nothing moves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tenancy_operator.backends import archive
from tenancy_operator.handlers import archive_progress


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, dict[str, Any]]]:
    out: list[tuple[float, dict[str, Any]]] = []

    async def merge_patch(kind, name, namespace, patch, subresource=None):
        assert (kind, name, namespace, subresource) == ("Tenant", "acme", None, "status")
        out.append((asyncio.get_running_loop().time(), patch))

    monkeypatch.setattr(archive_progress.kube, "merge_patch", merge_patch)
    return out


def test_progress_is_written_at_most_once_per_interval(writes):
    progress = archive.Progress(total=1000)

    async def job() -> None:
        async with archive_progress.ProgressWriter("acme", "restore", progress, every=0.2):
            for _ in range(50):  # a chunk every 20 ms for 1 s
                progress.add(10)
                await asyncio.sleep(0.02)

    asyncio.run(job())
    assert 3 <= len(writes) <= 5, writes  # ~1 s at one write per 0.2 s, not one per chunk (50)
    gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:], strict=False)]
    assert all(g >= 0.19 for g in gaps), gaps
    done = [w[1]["status"]["restore"] for w in writes]
    assert all(d["bytesTotal"] == 1000 and 0 < d["bytesDone"] <= 500 for d in done), done
    assert [d["bytesDone"] for d in done] == sorted(d["bytesDone"] for d in done)


def test_nothing_is_written_while_nothing_moves(writes):
    progress = archive.Progress(done=5, total=10)

    async def idle() -> None:
        async with archive_progress.ProgressWriter("acme", "archive", progress, every=0.05):
            await asyncio.sleep(0.5)

    asyncio.run(idle())
    assert len(writes) == 1  # the first snapshot, then no change: no more writes


def test_an_export_counts_the_file_being_dumped(tmp_path: Path):
    progress = archive.Progress(total=100)
    progress.dumping = tmp_path / "part"
    assert progress.snapshot() == (0, 100)
    progress.dumping.write_bytes(b"x" * 40)
    assert progress.snapshot() == (40, 100)
    progress.dumping.write_bytes(b"x" * 150)  # the estimate was low: total follows what is done
    assert progress.snapshot() == (150, 150)
