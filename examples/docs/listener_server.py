"""Getting started: an echo server with callbacks (the fastest API).

python examples/docs/listener_server.py --port 8765
"""

import argparse
import asyncio

import wsio


class Echo(wsio.Listener):
    # One instance per connection. Callbacks run in the event loop: don't block.
    def on_open(self, connection):
        print(f"open: {connection.remote_address[0]}", flush=True)

    def on_message(self, connection, message):
        connection.send(message)  # doesn't await: it buffers, up to write_limit

    def on_close(self, connection, exc):
        print(f"closed: {exc.code} {exc.why or ''}".rstrip(), flush=True)


async def main(port):
    async with wsio.serve_listener(Echo, "127.0.0.1", port) as server:
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args().port))
