"""Getting started: an echo server on asyncio.

python examples/docs/asyncio_server.py --port 8765
"""

import argparse
import asyncio

import wsio


async def echo(websocket):
    # One call per connection; when it returns, the connection closes with 1000.
    async for message in websocket:  # str for text, bytes for binary
        await websocket.send(message)


async def main(port):
    async with wsio.serve(echo, "127.0.0.1", port) as server:
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args().port))
