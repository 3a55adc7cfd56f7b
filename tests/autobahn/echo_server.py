"""A wsio echo server for the Autobahn TestSuite (kosoku in fuzzingclient mode).

Usage: python tests/autobahn/echo_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import wsio
from wsio.protocol.deflate import ServerPerMessageDeflateFactory

# The default permessage-deflate settings, at level 1 (fastest; the default is 6):
# the cases check what is negotiated and that every message comes back intact,
# not how small it got, and at level 6 compressing 12.x/13.x's 128 MB per case
# was most of this run's CPU time.
DEFLATE = ServerPerMessageDeflateFactory(
    server_max_window_bits=12, client_max_window_bits=12, compress_settings={"level": 1, "memLevel": 5}
)


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
        extensions=[DEFLATE],
    ) as server:
        print("listening", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
