"""A wsio echo server for the Autobahn TestSuite (kosoku in fuzzingclient mode).

Usage: python tests/autobahn/echo_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import wsio


async def echo(websocket: wsio.ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    # The suite sends messages up to 16 MiB in up to 64 Ki fragments.
    # compression_threshold=0: kosoku's 12.x/13.x case code can only check an
    # echoed text message that comes back compressed; leaving small messages
    # uncompressed (our default below 128 bytes) is valid RFC 7692 but trips it.
    async with wsio.serve(
        echo,
        "127.0.0.1",
        port,
        max_size=None,
        max_fragments=None,
        max_queue=None,
        ping_interval=None,
        compression_threshold=0,
    ) as server:
        print("listening", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
