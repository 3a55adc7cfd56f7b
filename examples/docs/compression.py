"""Compression and memory: what is negotiated, how to turn it off, and max_size."""

import asyncio

import wsio
from wsio.protocol.deflate import ServerPerMessageDeflateFactory


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    # Compression is on by default: permessage-deflate is offered and accepted.
    async with wsio.serve(echo, "127.0.0.1", 0, max_size=2**16) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

        async with wsio.connect(uri) as websocket:
            extensions = websocket.response_headers.get("Sec-WebSocket-Extensions")
            print(f"negotiated: {extensions}")
            assert extensions.startswith("permessage-deflate")
            await websocket.send("a" * 10_000)  # compressed: above compression_threshold
            assert await websocket.recv() == "a" * 10_000
            await websocket.send("a" * 10_000, compress=False)  # this one goes as is
            assert await websocket.recv() == "a" * 10_000

        # compression=None: nothing is offered, so nothing is negotiated.
        async with wsio.connect(uri, compression=None) as websocket:
            extensions = websocket.response_headers.get("Sec-WebSocket-Extensions")
            print(f"with compression=None: {extensions}")
            assert extensions is None

        # max_size bounds a message after decompression: 1009 "message too big".
        async with wsio.connect(uri) as websocket:
            await websocket.send("a" * 100_000)  # compresses to about 100 bytes
            try:
                await websocket.recv()
            except wsio.ConnectionClosedError as exc:
                print(f"over max_size: closed with {exc.code}")
                assert exc.code == 1009

    # Less memory per connection: no context kept between messages, so nothing
    # is held by an idle connection, at the cost of a worse compression ratio.
    frugal = ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        compress_settings={"memLevel": 4},
    )
    async with wsio.serve(echo, "127.0.0.1", 0, extensions=[frugal]) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with wsio.connect(uri) as websocket:
            extensions = websocket.response_headers["Sec-WebSocket-Extensions"]
            print(f"frugal server: {extensions}")
            assert "server_no_context_takeover" in extensions
            await websocket.send("b" * 1_000)
            assert await websocket.recv() == "b" * 1_000


asyncio.run(main())
