"""Proxies: websocket-client's proxy options, in wsio's copy of its API.

python proxy_websocket_client.py PROXY_URI SERVER_URI
python proxy_websocket_client.py http://alice:s3cret@proxy.corp:3128 wss://example.com/feed
"""

import sys
import urllib.parse

from wsio import sync as websocket


def main(proxy_uri, server_uri):
    proxy = urllib.parse.urlsplit(proxy_uri)  # split into the options below
    ws = websocket.create_connection(
        server_uri,
        http_proxy_host=proxy.hostname,
        http_proxy_port=proxy.port,
        http_proxy_auth=(proxy.username, proxy.password),
        timeout=5,
    )
    ws.send("hello")
    print(f"through the proxy: {ws.recv()!r}")
    ws.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
