"""Several processes joined by Redis: a chat room served by N workers on one port.

    python examples/docs/redis_app.py --workers 4 --redis redis://127.0.0.1:6379/0

or, with the command line (run from this directory, so that the module imports):

    REDIS_URL=redis://127.0.0.1:6379/0 wsio serve redis_app:app --workers 4

Every message a client sends reaches every client, whichever worker each is on.
"""
# requires: redis

import argparse
import os

import wsio


class ChatApp:
    """An app for wsio.run(): startup() and shutdown() run in each worker."""

    async def startup(self):
        # One Hub per worker process, opened in the worker (not before the spawn).
        self.hub = wsio.Hub(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        await self.hub.start()

    async def shutdown(self):
        await self.hub.close()

    async def __call__(self, websocket):
        await self.hub.subscribe(websocket, "chat")
        await websocket.send(f"worker {os.environ.get('WSIO_WORKER', '0')}")
        async for message in websocket:
            await self.hub.publish("chat", message)


app = ChatApp()


def ready(port, pids):
    print(f"listening on ws://127.0.0.1:{port} with {len(pids)} workers", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    os.environ["REDIS_URL"] = args.redis  # the workers inherit the environment
    # "redis_app:app" rather than app: the spawned workers import it by name.
    wsio.run("redis_app:app", "127.0.0.1", args.port, workers=args.workers, on_ready=ready)
