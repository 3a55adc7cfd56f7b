"""FAQ: How do I access HTTP headers, for example cookies?"""

import asyncio

import wsio as websockets

SEEN_IN_PROCESS_REQUEST = []

# A server that trusts cookies (or HTTP authentication the browser caches) must
# check Origin: browsers send cookies with a WebSocket handshake whatever page
# opens it, a page of another site too (cross-site WebSocket hijacking; see
# "Security" in the docs). origins= lists the sites whose pages may connect:
# any other Origin gets 403.
ORIGINS = ["https://app.example"]


# During the handshake: override process_request. (The older FAQ writes
# `request_header["Cookie"]`, a typo for the parameter `request_headers`.)
class ServerProtocol(websockets.WebSocketServerProtocol):
    async def process_request(self, path, request_headers):
        cookies = request_headers["Cookie"]
        authorization = request_headers["Authorization"]
        SEEN_IN_PROCESS_REQUEST.append((cookies, authorization))


# Once the connection is established, older FAQ: handler(websocket, path).
async def handler_with_path(websocket, path):
    cookies = websocket.request_headers["Cookie"]
    await websocket.send(cookies)


# Newer FAQ: handler(websocket), with request_headers and response_headers.
async def handler(websocket):
    authorization = websocket.request_headers["Authorization"]
    await websocket.send(authorization)
    await websocket.send(websocket.response_headers["Upgrade"])


async def main():
    headers = {"Cookie": "session=1234", "Authorization": "Bearer s3cr3t"}
    for server_handler, expected in [
        (handler_with_path, ["session=1234"]),
        (handler, ["Bearer s3cr3t", "websocket"]),
    ]:
        async with websockets.serve(server_handler, "127.0.0.1", 0, create_protocol=ServerProtocol, origins=ORIGINS) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(
                f"ws://127.0.0.1:{port}", extra_headers=headers, origin="https://app.example"
            ) as websocket:
                replies = [await websocket.recv() for _ in expected]
            # The same cookie from a page of another site: 403, the handler never runs.
            # (origins= is checked after process_request, which sees the request.)
            try:
                await websockets.connect(f"ws://127.0.0.1:{port}", extra_headers=headers, origin="https://evil.example")
            except websockets.InvalidStatus as exc:
                assert exc.status_code == 403, exc
            else:
                raise AssertionError("a foreign Origin was let in")
        assert replies == expected, replies
        print(f"{server_handler.__name__} read from the headers: {replies}")
    assert SEEN_IN_PROCESS_REQUEST == [("session=1234", "Bearer s3cr3t")] * 4, SEEN_IN_PROCESS_REQUEST
    print(f"process_request saw Cookie and Authorization: {SEEN_IN_PROCESS_REQUEST[0]}")
    print("a page of https://evil.example with the same cookie got 403")


asyncio.run(main())
