"""A wsio echo server for the Autobahn TestSuite (kosoku in fuzzingclient mode).

Usage: python tests/autobahn/echo_server.py PORT [asyncio|callback]

``asyncio`` (the default) echoes with ``async for`` and ``await send()``;
``callback`` with a :class:`wsio.Listener` (``serve_listener()``), whose reads
go through the C read path when the accelerator is built.
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


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: wsio.Data) -> None:
        try:
            connection.send(message)
        except wsio.ConnectionClosed:
            pass  # a message that arrived with the peer's close frame: too late to echo


async def main(port: int, api: str) -> None:
    # The suite sends messages up to 16 MiB in up to 64 Ki fragments.
    # compression_threshold=0: kosoku's 12.x/13.x case code can only check an
    # echoed text message that comes back compressed; leaving small messages
    # uncompressed (our default below 128 bytes) is valid RFC 7692 but trips it.
    serve = wsio.serve if api == "asyncio" else wsio.serve_listener
    async with serve(
        echo if api == "asyncio" else Echo,  # type: ignore[arg-type]
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
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "asyncio"))
