"""Proxies: TLS to an HTTPS proxy whose certificate a private CA signed.

python proxy_https.py PROXY_URI SERVER_URI PROXY_CA_FILE
python proxy_https.py https://proxy.corp:8443 wss://example.com/feed corp-proxy-ca.pem
"""

import asyncio
import ssl
import sys

import wsio


async def main(proxy_uri, server_uri, proxy_ca_file):
    # The proxy's certificate is checked against this CA (and the proxy's
    # host name); the server's, against the default trust store.
    proxy_context = ssl.create_default_context(cafile=proxy_ca_file)
    async with wsio.connect(server_uri, proxy=proxy_uri, proxy_ssl=proxy_context) as websocket:
        await websocket.send("hello")
        print(f"through the proxy: {await websocket.recv(timeout=5)!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
