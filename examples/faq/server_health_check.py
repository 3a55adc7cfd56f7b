"""FAQ: How do I implement a health check?"""

import asyncio
import http

import wsio as websockets


# The FAQ's example (health_check_server.py).
async def health_check(path, request_headers):
    if path == "/healthz":
        return http.HTTPStatus.OK, [], b"OK\n"


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def http_get(port, path):
    """A plain HTTP/1.1 GET, as a load balancer or curl sends it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    response = await reader.read()  # the server closes after answering
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, process_request=health_check) as server:
        port = server.sockets[0].getsockname()[1]

        status_line, body = await http_get(port, "/healthz")
        assert status_line == "HTTP/1.1 200 OK", status_line
        assert body == b"OK\n", body
        print(f"GET /healthz -> {status_line}, body {body!r}")

        # Other paths still get WebSocket connections.
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as websocket:
            await websocket.send("hello")
            reply = await websocket.recv()
        assert reply == "hello", reply
        print(f"WebSocket on / -> echoed {reply!r}")


asyncio.run(main())
