"""Getting started: a client on threads, without asyncio.

python examples/docs/sync_client.py ws://127.0.0.1:8765
"""

import sys

from wsio import sync


def main(uri):
    with sync.connect(uri) as websocket:
        websocket.send("hello")
        print(f"received {websocket.recv(timeout=5)!r}")
    print(f"closed with {websocket.close_code}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765")
