"""Proxies: the asyncio client through an HTTP proxy, and around it.

python proxy_http.py PROXY_URI SERVER_URI
python proxy_http.py http://alice:s3cret@proxy.corp:3128 wss://example.com/feed
"""

import asyncio
import sys

import wsio


async def main(proxy_uri, server_uri):
    # Explicit HTTP proxy, with credentials in its URI.
    async with wsio.connect(server_uri, proxy=proxy_uri) as websocket:
        await websocket.send("hello")
        print(f"through the proxy: {await websocket.recv(timeout=5)!r}")

    # No proxy for this connection, whatever HTTP_PROXY / HTTPS_PROXY say.
    async with wsio.connect(server_uri, proxy=None) as websocket:
        await websocket.send("hello")
        print(f"without a proxy: {await websocket.recv(timeout=5)!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
