"""FAQ: How do I respond to pings?"""

# You don't: wsio answers every ping with a pong by itself, on both sides.

import asyncio
import base64
import os
import struct

import wsio as websockets

SERVER_PING_LATENCY = []


async def handler(websocket):
    # The server pings the client and waits for the pong the client sends by itself.
    pong_waiter = await websocket.ping(b"from the server")
    SERVER_PING_LATENCY.append(await asyncio.wait_for(pong_waiter, timeout=5))
    async for message in websocket:
        await websocket.send(message)


def masked_frame(opcode, payload):
    """A client frame (FIN set, masked), built by hand."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


async def raw_ping(port, payload):
    """Open a WebSocket connection by hand, send a ping frame; return the first control frame that comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET / HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    writer.write(masked_frame(0x9, payload))  # ping
    while True:
        first, second = await reader.readexactly(2)
        data = await reader.readexactly(second & 0x7F)  # server frames: unmasked, short here
        opcode = first & 0x0F
        if opcode == 0x9:  # the server's own ping: answer it, as a client must
            writer.write(masked_frame(0xA, data))
            continue
        writer.close()
        return opcode, data


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        # A ping sent by hand gets a pong with the same payload.
        opcode, data = await raw_ping(port, b"are you there?")
        assert (opcode, data) == (0xA, b"are you there?"), (opcode, data)
        print(f"raw ping {b'are you there?'!r} -> pong {data!r}")

        # The client answers the server's ping by itself, and the connection works.
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            await websocket.send("hello")
            assert await websocket.recv() == "hello"
            pong_waiter = await websocket.ping()
            latency = await asyncio.wait_for(pong_waiter, timeout=5)
    assert len(SERVER_PING_LATENCY) == 2, SERVER_PING_LATENCY
    print(f"server pinged, the clients answered by themselves; client ping round trip {latency * 1000:.2f} ms")


asyncio.run(main())
