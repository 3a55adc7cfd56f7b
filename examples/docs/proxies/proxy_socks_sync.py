"""Proxies: the thread client through a SOCKS proxy (needs python-socks).

python proxy_socks_sync.py PROXY_URI SERVER_URI
python proxy_socks_sync.py socks5h://proxy.corp:1080 wss://example.com/feed
"""

import sys

from wsio.sync import connect


def main(proxy_uri, server_uri):
    # socks5h:// and socks4a://: the proxy resolves the server's host name.
    with connect(server_uri, proxy=proxy_uri) as websocket:
        websocket.send("hello")
        print(f"through the proxy: {websocket.recv(timeout=5)!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
