"""A PostgreSQL call queued behind the operator's own calls is not a backend failure.

At N=500 (bench/scale/RESULTS.md) every tenant's verify pass ran at once; calls waited over 30 s for
one of the Backend's 4 connections while the server answered every call, and each such wait was
reported as BackendUnavailable: Ready went False and back on healthy tenants, with a status patch
and Events each way, in what should have been a window without writes. Now a wait fails only when
the server answered nothing on that pool for ACQUIRE_TIMEOUT.
"""

from __future__ import annotations

import asyncio

import pytest
from tenancy_operator.backends import postgres_pool
from tenancy_operator.backends.base import BackendUnavailable, Target

TICK = 0.2  # the acquire timeout in these tests (seconds)


class OneConnectionPool:
    """asyncpg.Pool's acquire/release with one connection: a waiter queues, and times out as asyncpg's does."""

    def __init__(self) -> None:
        self._free = asyncio.Semaphore(1)

    async def acquire(self, timeout: float) -> object:
        await asyncio.wait_for(self._free.acquire(), timeout)
        return object()

    async def release(self, conn: object) -> None:
        self._free.release()


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> OneConnectionPool:
    fake = OneConnectionPool()

    async def _pool(target: Target) -> OneConnectionPool:
        return fake

    monkeypatch.setattr(postgres_pool, "_pool", _pool)
    monkeypatch.setattr(postgres_pool, "ACQUIRE_TIMEOUT", TICK)
    monkeypatch.setattr(postgres_pool, "_answered", {}, raising=False)  # absent before the fix
    return fake


def target() -> Target:
    return Target(name="pg-main", type="postgres", host="127.0.0.1", port=5432, username="admin", password="x")


async def test_a_queue_behind_answered_calls_waits_longer_than_the_timeout(pool: OneConnectionPool) -> None:
    async def work(conn: object) -> str:
        await asyncio.sleep(TICK * 0.4)  # each call is answered well within the timeout
        return "ok"

    # Eight calls on one connection: the last waits ~7 x 0.4 = 2.8 timeouts for its turn.
    results = await asyncio.gather(*[postgres_pool.run(target(), work) for _ in range(8)], return_exceptions=True)
    assert results == ["ok"] * 8


async def test_no_answer_for_the_timeout_is_unavailable(pool: OneConnectionPool) -> None:
    async def stuck(conn: object) -> str:
        await asyncio.sleep(TICK * 4)  # holds the only connection, the server answering nothing
        return "late"

    async def quick(conn: object) -> str:
        return "ok"

    holder = asyncio.create_task(postgres_pool.run(target(), stuck))
    await asyncio.sleep(0)
    with pytest.raises(BackendUnavailable, match="no answer to any call"):
        await postgres_pool.run(target(), quick)
    assert await holder == "late"


async def test_an_old_answer_does_not_keep_a_waiter_waiting(pool: OneConnectionPool) -> None:
    async def quick(conn: object) -> str:
        return "ok"

    assert await postgres_pool.run(target(), quick) == "ok"  # answered once, then the server goes quiet
    await asyncio.sleep(TICK * 1.5)

    async def stuck(conn: object) -> str:
        await asyncio.sleep(TICK * 4)
        return "late"

    holder = asyncio.create_task(postgres_pool.run(target(), stuck))
    await asyncio.sleep(0)
    with pytest.raises(BackendUnavailable):
        await postgres_pool.run(target(), quick)
    await holder
