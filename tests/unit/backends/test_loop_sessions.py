"""LoopSessions: one aiohttp session per running loop, a fresh one on a new loop, closed at close()."""

import asyncio

import aiohttp
from tenancy_operator.backends.loop_sessions import LoopSessions


def test_one_session_per_loop_and_a_new_one_on_the_next_loop():
    made: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:
        made.append(aiohttp.ClientSession())
        return made[-1]

    sessions = LoopSessions(factory)

    async def twice() -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
        pair = sessions.get(), sessions.get()
        await pair[0].close()
        return pair

    first_a, first_b = asyncio.run(twice())
    assert first_a is first_b  # one per loop, kept between calls

    async def on_second_loop() -> aiohttp.ClientSession:
        session = sessions.get()
        await sessions.close()
        return session

    second = asyncio.run(on_second_loop())
    assert second is not first_a  # the first loop ended (and its session closed): not reused
    assert second.closed  # close() closed the current loop's session
    assert len(made) == 2

    async def after_close() -> bool:
        session = sessions.get()
        fresh = session is not second and not session.closed
        await sessions.close()
        return fresh

    assert asyncio.run(after_close())  # a closed session is replaced, not handed out
