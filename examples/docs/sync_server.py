"""Getting started: an echo server on threads, without asyncio.

python examples/docs/sync_server.py --port 8765
"""

import argparse

from wsio import sync


def echo(websocket):
    # Runs in a thread of its own for each connection: blocking calls are fine.
    for message in websocket:
        websocket.send(message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    with sync.serve(echo, "127.0.0.1", port) as server:
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        server.serve_forever()
