#!/usr/bin/env python3
"""A TCP relay: accepts on LISTEN (host:port) and pipes each connection to TARGET (host:port), bytes as
they are (TLS passes through untouched). platform/node-apiserver.sh runs it on the node's bridge address
so pods reach the API server, which listens on 127.0.0.1 only.

Usage: tcp-relay.py --name NAME LISTEN TARGET   (NAME only marks the process for pid_alive)
"""

from __future__ import annotations

import argparse
import asyncio
import signal


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, tw), _pipe(tr, cw))
        for w in (cw, tw):
            w.close()

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"relay {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}", flush=True)
    async with server:
        await stop.wait()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("listen", type=_addr)
    p.add_argument("target", type=_addr)
    a = p.parse_args()
    asyncio.run(_serve(a.listen, a.target))


if __name__ == "__main__":
    main()
