"""FAQ: How do I access HTTP headers, for example cookies?"""

import asyncio

import wsio as websockets

SEEN_IN_PROCESS_REQUEST = []


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
        async with websockets.serve(server_handler, "127.0.0.1", 0, create_protocol=ServerProtocol) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", extra_headers=headers) as websocket:
                replies = [await websocket.recv() for _ in expected]
        assert replies == expected, replies
        print(f"{server_handler.__name__} read from the headers: {replies}")
    assert SEEN_IN_PROCESS_REQUEST == [("session=1234", "Bearer s3cr3t")] * 2, SEEN_IN_PROCESS_REQUEST
    print(f"process_request saw Cookie and Authorization: {SEEN_IN_PROCESS_REQUEST[0]}")


asyncio.run(main())
