"""Progress of a running archive or restore in the Tenant's status (see handlers/archive_part.py)."""

from __future__ import annotations

import asyncio
import logging
import os

from ..backends import archive, kube, postgres_export
from ..backends.base import BackendRefused, BackendUnavailable, Target

__all__ = ["ProgressWriter", "estimates", "progress_interval"]


def progress_interval() -> float:
    return float(os.environ.get("TENANCY_ARCHIVE_PROGRESS_INTERVAL") or 5)


class ProgressWriter:
    """Writes `status.<field>.bytesDone/bytesTotal` of Tenant `name` from `progress` while the job
    runs: at most one write per `every` seconds, none when nothing changed; an async context manager.
    A failed write is skipped (progress is advisory; the job goes on)."""

    def __init__(self, name: str, field: str, progress: archive.Progress, every: float | None = None) -> None:
        self.name, self.field, self.progress = name, field, progress
        self.every = progress_interval() if every is None else every
        self.writes = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last: tuple[int, int] | None = None
        while True:
            await asyncio.sleep(self.every)
            now = self.progress.snapshot()
            if now == last:
                continue
            try:
                await kube.merge_patch("Tenant", self.name, None, {"status": {self.field: {
                    "bytesDone": now[0], "bytesTotal": now[1]}}}, "status")
                self.writes += 1
                last = now
            except Exception:  # noqa: BLE001 - advisory; retried next tick
                logging.getLogger("tenancy.archive").debug("progress of %s not written", self.name, exc_info=True)

    async def __aenter__(self) -> ProgressWriter:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def estimates(targets: dict[str, Target], tenant: str) -> dict[str, int]:
    if "postgres" not in targets:
        return {}
    try:
        return {"postgres": await postgres_export.database_size(targets["postgres"], tenant)}
    except (BackendUnavailable, BackendRefused):
        return {}  # progress only: the dump itself reports the real failure
