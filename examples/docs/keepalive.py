"""Keepalive and timeouts: ping/pong, a peer that stops answering, recv(timeout=...)."""

import asyncio
import base64
import os

import wsio

CLOSED = asyncio.Event()
WHY = []


async def handler(websocket):
    try:
        async for message in websocket:
            await websocket.send(message)
    except wsio.ConnectionClosed as exc:
        sent = exc.sent.code if exc.sent else None
        WHY.append(f"sent {sent}, received {exc.code}: {exc.why}")
        CLOSED.set()


async def silent_peer(port):
    """A client that completes the handshake, then never reads again (no pong)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")  # 101 Switching Protocols
    return writer


async def main():
    # Short intervals to run quickly; the defaults are 20 s and 20 s.
    async with wsio.serve(handler, "127.0.0.1", 0, ping_interval=0.5, ping_timeout=0.5) as server:
        port = server.sockets[0].getsockname()[1]

        async with wsio.connect(f"ws://127.0.0.1:{port}") as websocket:
            # wsio answers pings by itself; ping() waits for the pong.
            latency = await (await websocket.ping())
            print(f"pong after {latency * 1000:.1f} ms")
            # A timeout on recv(): TimeoutError, and the connection stays open.
            try:
                await websocket.recv(timeout=0.1)
            except TimeoutError:
                print("no message within 0.1 s; connection still open:", websocket.state.name)
            await asyncio.sleep(1.5)  # several pings went by: answered automatically
            await websocket.send("still here")
            assert await websocket.recv(timeout=5) == "still here"

        writer = await silent_peer(port)
        await asyncio.wait_for(CLOSED.wait(), timeout=5)
        writer.close()
    # 1011 sent; 1006 because the peer never sent a close frame back.
    print(f"silent peer: {WHY[0]}")
    assert WHY[0].startswith("sent 1011, received 1006: no pong"), WHY


asyncio.run(main())
