"""FAQ: How do I set HTTP headers?"""

import asyncio

import wsio as websockets


async def handler(websocket):
    await websocket.send("hello")


async def response_headers(**kwargs):
    """Serve with kwargs; return the client's view of the handshake response."""
    async with websockets.serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["chat"]) as websocket:
            assert await websocket.recv() == "hello"
            return websocket.subprotocol, websocket.response_headers


async def main():
    # Sec-WebSocket-Protocol: the subprotocols argument; Server: server_header;
    # anything else: extra_headers.
    subprotocol, headers = await response_headers(
        subprotocols=["chat"],
        server_header="faq-server/1.0",
        extra_headers={"X-Clacks-Overhead": "GNU Terry Pratchett"},
    )
    assert subprotocol == "chat", subprotocol
    assert headers["Sec-WebSocket-Protocol"] == "chat", headers
    assert headers["Server"] == "faq-server/1.0", headers
    assert headers["X-Clacks-Overhead"] == "GNU Terry Pratchett", headers
    print(
        f"subprotocols, server_header, extra_headers: Server: {headers['Server']}, X-Clacks-Overhead: {headers['X-Clacks-Overhead']}"
    )

    # server_header=None removes the Server header.
    _, headers = await response_headers(server_header=None)
    assert "Server" not in headers, headers
    print("server_header=None: no Server header")

    # Sec-WebSocket-Extensions comes from compression (permessage-deflate by default).
    _, headers = await response_headers()
    assert headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate"), headers
    _, headers = await response_headers(compression=None)
    assert "Sec-WebSocket-Extensions" not in headers, headers
    print("compression=None: no Sec-WebSocket-Extensions header")


asyncio.run(main())
