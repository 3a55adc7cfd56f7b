"""FAQ: How do I run a HTTP server and WebSocket server on the same port?"""

# The websockets FAQ answers "you don't". wsio's answer: for a small page next
# to a WebSocket endpoint, answer plain HTTP requests in process_request.

import asyncio
import http

import wsio as websockets

PAGE = b"""<!doctype html>
<title>echo</title>
<script>
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => ws.send("hello");
  ws.onmessage = (event) => document.body.textContent = event.data;
</script>
"""


async def process_request(path, request_headers):
    if "websocket" not in request_headers.get("Upgrade", "").lower():
        if path == "/":
            return http.HTTPStatus.OK, [("Content-Type", "text/html; charset=utf-8")], PAGE
        return http.HTTPStatus.NOT_FOUND, [], b"Not Found\n"
    return None  # a WebSocket handshake: go on


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def http_get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]

        status_line, headers, body = await http_get(port, "/")
        assert status_line == "HTTP/1.1 200 OK", status_line
        assert headers["Content-Type"] == "text/html; charset=utf-8", headers
        assert body == PAGE, body
        print(f"GET / -> {status_line}, {len(body)} bytes of HTML")

        status_line, _, _ = await http_get(port, "/missing")
        assert status_line == "HTTP/1.1 404 Not Found", status_line

        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as websocket:
            await websocket.send("hello")
            reply = await websocket.recv()
        assert reply == "hello", reply
        print(f"WebSocket on /ws, same port {port} -> echoed {reply!r}")


asyncio.run(main())
