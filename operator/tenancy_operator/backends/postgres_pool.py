"""PostgreSQL connection pools of the adapter: one per Backend (and admin login), four connections each.

Why this is its own module: what a failed call means for the pool is the subtle part. A dead
connection drops the pool for the next call without cutting the calls still running on it, a call
queued on a dropped pool moves to the new one once, and a busy pool is a queue, not an unavailable
backend, while the server keeps answering (bench/scale, N=500). The SQL is in :mod:`.postgres`.
"""

from __future__ import annotations

import asyncio

import asyncpg

from . import postgres_admin as admin
from . import postgres_sql as sql
from .base import BackendRefused, BackendUnavailable, Target

__all__ = ["ACQUIRE_TIMEOUT", "close_all", "run"]

_pools: dict[tuple[str, str, int, str], asyncpg.Pool] = {}
_pool_lock = asyncio.Lock()
_closing: set[asyncio.Task] = set()  # pools being closed after a failure (held so they are not collected)
ACQUIRE_TIMEOUT = 30.0
"""Seconds a call waits for a connection (4 per Backend) with no answer from the server to any call
on that pool in the meantime before it reports the backend unavailable (see `_acquire`)."""
_answered: dict[tuple[str, str, int, str], float] = {}
"""When the server last answered a call on each pool (loop time): waiting while it answers is a queue."""


async def _pool(target: Target) -> asyncpg.Pool:
    key = (target.name, target.host, target.port, target.username)
    async with _pool_lock:
        pool = _pools.get(key)
        if pool is None:
            try:
                pool = await asyncpg.create_pool(
                    host=target.host, port=target.port, user=target.username, password=target.password,
                    database=target.extra.get("database", "postgres"), min_size=0, max_size=4,
                    timeout=5, command_timeout=30, ssl="require" if target.tls else None,
                )
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise BackendUnavailable(f"cannot connect to postgres backend {target.name}: {exc}") from exc
            _pools[key] = pool
        return pool


async def close_all() -> None:
    for pool in list(_pools.values()):
        await pool.close()
    _pools.clear()


async def _acquire(target: Target, pool: asyncpg.Pool) -> asyncpg.Connection:
    """A connection of `pool`; BackendUnavailable only when the server answered none of this pool's
    calls for ACQUIRE_TIMEOUT.

    Every connection busy while the server keeps answering is this process's own queue (a verify
    pass of each of 500 tenants at once waited over a minute behind the others' calls), not an
    unavailable backend: reporting it as one flipped Ready to False and back on tenants whose
    databases were fine, with a status patch and Events each way (bench/scale/RESULTS.md, N=500).
    """
    key = (target.name, target.host, target.port, target.username)
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except TimeoutError as exc:
            # Every connection busy or the server not answering a connect: the pool's other
            # connections may be fine, so it stays.
            if loop.time() - _answered.get(key, float("-inf")) < ACQUIRE_TIMEOUT:
                continue  # the server answered one of the calls ahead of this one: wait on
            raise BackendUnavailable(f"postgres backend {target.name}: no connection within {ACQUIRE_TIMEOUT:g}s "
                                     "and no answer to any call meanwhile (the server does not answer, or "
                                     "every connection is stuck)") from exc


def _answer(target: Target) -> None:
    _answered[(target.name, target.host, target.port, target.username)] = asyncio.get_running_loop().time()


async def run(target: Target, work, again: bool = True):
    """``await work(conn)`` on a connection of the target's pool, and its result.

    Raises BackendUnavailable when the server cannot be reached or the connection died (the pool is
    then dropped, so the next call connects afresh), BackendRefused when the server refused a
    statement, and AdminPrivilegeMissing when the admin may not connect to its database.
    """
    pool = await _pool(target)
    try:
        conn = await _acquire(target, pool)
    except asyncpg.exceptions.InterfaceError as exc:
        if again and pool.is_closing():
            # Another call's failure dropped this pool while this one waited for a connection: take the
            # new pool, once. One failed call must not fail every call queued on the pool ("pool is
            # closing"; at N=500 on a loaded machine one query timeout failed thousands of passes).
            return await run(target, work, again=False)
        _drop(target, pool)
        raise BackendUnavailable(f"postgres backend {target.name} failed: {exc}") from exc
    except (OSError, asyncpg.exceptions.CannotConnectNowError) as exc:
        _drop(target, pool)
        raise BackendUnavailable(f"postgres backend {target.name} failed: {exc}") from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        # The admin logs in but may not connect to its database (no CONNECT there): a privilege to
        # grant, said on the Backend, not a failure to retry.
        _drop(target, pool)
        database = target.extra.get("database", "postgres")
        raise admin.AdminPrivilegeMissing(
            f"postgres backend {target.name}: admin role {target.username} lacks CONNECT on database {database} "
            f"({str(exc).splitlines()[0]}; grant it: GRANT CONNECT ON DATABASE {sql.ident(database)} TO "
            f"{sql.ident(target.username)})") from exc
    return await _work(target, pool, conn, work)


async def _work(target: Target, pool: asyncpg.Pool, conn: asyncpg.Connection, work):
    try:
        result = await work(conn)
        _answer(target)
        return result
    except (TimeoutError, OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.InterfaceError) as exc:
        # The pool may hold dead connections after a restart: the next try gets a new pool.
        _drop(target, pool)
        raise BackendUnavailable(f"postgres backend {target.name} failed: {exc}") from exc
    except asyncpg.PostgresError as exc:
        _answer(target)  # a refusal is an answer
        # Anything else the server refused (a privilege, a database its owner made a template, ...):
        # retrying alone will not fix it, and the caller must see it as a refusal, not a crash.
        raise BackendRefused(f"postgres backend {target.name} refused: {exc}") from exc
    finally:
        try:
            await pool.release(conn)
        except (OSError, asyncpg.exceptions.InterfaceError):
            pass  # the pool was terminated meanwhile; the connection went with it


def _drop(target: Target, pool: asyncpg.Pool) -> None:
    """Stop handing out `pool`, and close it once the others' work on it is done.

    Terminating it here would cut every other task's query on it ("pool is closing"), and each of
    those would drop the next pool in turn: under load one dead connection cascaded into dozens of
    failed deletions. The current pool only is dropped; a newer one made meanwhile stays.
    """
    key = (target.name, target.host, target.port, target.username)
    if _pools.get(key) is pool:
        del _pools[key]
        task = asyncio.get_running_loop().create_task(_close_quietly(pool))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


async def _close_quietly(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), timeout=60)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.exceptions.InterfaceError):
        pool.terminate()
