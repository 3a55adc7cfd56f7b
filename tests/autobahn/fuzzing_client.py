"""A wsio client that runs every Autobahn case against kosoku in fuzzingserver mode.

Usage: python tests/autobahn/fuzzing_client.py ws://127.0.0.1:PORT [AGENT]
"""

from __future__ import annotations

import asyncio
import sys

import wsio
from wsio.protocol.deflate import ClientPerMessageDeflateFactory

# Cases 13.2, 13.5 and 13.6 test a server that asks the client to drop its
# compression context; the suite's server only does so when the client's offer
# says it may (the client_no_context_takeover hint, RFC 7692 7.1.1.1). The
# default offer doesn't give that hint, to keep the better compression ratio.
# Level 1 (fastest; zlib's default is 6): the cases check what is negotiated and
# that every message comes back intact, not how small it got, and at level 6
# compressing 12.x/13.x's 128 MB per case was most of this run's CPU time.
OFFER = [
    ClientPerMessageDeflateFactory(
        client_no_context_takeover=True, client_max_window_bits=True, compress_settings={"level": 1, "memLevel": 5}
    )
]


async def run_case(uri: str) -> None:
    try:
        async with wsio.connect(
            uri,
            max_size=None,
            max_fragments=None,
            max_queue=None,
            ping_interval=None,
            open_timeout=30,
            compression_threshold=0,  # see echo_server.py
            extensions=OFFER,
        ) as websocket:
            async for message in websocket:
                await websocket.send(message)
    except (wsio.ConnectionClosed, wsio.InvalidHandshake, OSError):
        pass  # failing the connection is what many cases expect


async def main(server: str, agent: str) -> None:
    async with wsio.connect(f"{server}/getCaseCount") as websocket:
        count = int(await websocket.recv())
    for case in range(1, count + 1):
        await run_case(f"{server}/runCase?case={case}&agent={agent}")
    async with wsio.connect(f"{server}/updateReports?agent={agent}") as websocket:
        pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "wsio"))
