"""Getting started: a client with callbacks.

python examples/docs/listener_client.py ws://127.0.0.1:8765
"""

import asyncio
import sys

import wsio


class Greeter(wsio.Listener):
    def __init__(self):
        self.done = asyncio.get_running_loop().create_future()

    def on_open(self, connection):
        connection.send("hello")

    def on_message(self, connection, message):
        print(f"received {message!r}")
        connection.close()  # starts the closing handshake; doesn't wait

    def on_close(self, connection, exc):
        self.done.set_result(exc.code)


async def main(uri):
    greeter = Greeter()
    await wsio.connect_listener(lambda: greeter, uri)
    print(f"closed with {await greeter.done}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765"))
