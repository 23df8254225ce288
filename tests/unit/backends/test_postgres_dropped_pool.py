"""A call queued on a pool that another call's failure dropped runs on the new pool.

At N=500 on a loaded machine (bench/scale/RESULTS.md, 2026-12-04) one query timeout dropped the
Backend's pool, and every call waiting for a connection of it failed with asyncpg's "pool is closing":
thousands of failed passes, DatabaseReady=False and back on healthy tenants. The failed call still
reports the backend unavailable; the ones queued behind it take the next pool.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from tenancy_operator.backends import postgres_pool
from tenancy_operator.backends.base import BackendUnavailable, Target


class OneConnectionPool:
    """asyncpg.Pool's acquire/release/close with one connection; a closing pool refuses waiters as asyncpg's does."""

    made = 0

    def __init__(self) -> None:
        OneConnectionPool.made += 1
        self._free = asyncio.Semaphore(1)
        self._closing = False
        self._waiters: set[asyncio.Future] = set()

    def is_closing(self) -> bool:
        return self._closing

    async def acquire(self, timeout: float) -> object:
        if self._closing:
            raise asyncpg.exceptions.InterfaceError("pool is closing")
        await asyncio.wait_for(self._free.acquire(), timeout)
        if self._closing:
            self._free.release()
            raise asyncpg.exceptions.InterfaceError("pool is closing")
        return object()

    async def release(self, conn: object) -> None:
        self._free.release()

    async def close(self) -> None:
        self._closing = True

    def terminate(self) -> None:
        self._closing = True


def target() -> Target:
    return Target(name="pg-main", type="postgres", host="127.0.0.1", port=5432, username="admin", password="x")


@pytest.fixture(autouse=True)
def pools(monkeypatch: pytest.MonkeyPatch) -> dict:
    made: dict = {}

    async def _pool(t: Target) -> OneConnectionPool:
        key = (t.name, t.host, t.port, t.username)
        if key not in made:
            made[key] = OneConnectionPool()
        return made[key]

    monkeypatch.setattr(postgres_pool, "_pool", _pool)
    monkeypatch.setattr(postgres_pool, "_pools", made)
    OneConnectionPool.made = 0
    return made


async def test_calls_queued_on_a_dropped_pool_run_on_the_next_one() -> None:
    async def times_out(conn: object) -> str:
        await asyncio.sleep(0.05)
        raise TimeoutError  # asyncpg's command timeout: the pool is dropped

    async def quick(conn: object) -> str:
        return "ok"

    failing = asyncio.create_task(postgres_pool.run(target(), times_out))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(postgres_pool.run(target(), quick)) for _ in range(5)]
    with pytest.raises(BackendUnavailable):
        await failing
    assert await asyncio.gather(*queued) == ["ok"] * 5
    assert OneConnectionPool.made == 2


async def test_a_second_drop_fails_the_call() -> None:
    async def times_out(conn: object) -> str:
        await asyncio.sleep(0.05)
        raise TimeoutError

    first = asyncio.create_task(postgres_pool.run(target(), times_out))
    await asyncio.sleep(0)
    second = asyncio.create_task(postgres_pool.run(target(), times_out))
    with pytest.raises(BackendUnavailable):
        await first
    with pytest.raises(BackendUnavailable):  # ran once more on the new pool, and failed there too
        await second
