"""A small pub/sub server for the multi-process tests, run as ``python -m tests.pubsub.app``.

Each client sends JSON commands and gets a JSON answer (``{"ok": ...}``);
what the hub delivers comes as is, in between (str or bytes)::

    {"sub": "room:1"}                      -> {"ok": "sub", "pid": 1234}
    {"sub_prefix": "room:"}                -> {"ok": "sub_prefix", "pid": 1234}
    {"unsub": "room:1"}                    -> {"ok": "unsub"}
    {"pub": "room:1", "text": "hi"}        -> {"ok": "pub", "n": 3}   (n: local connections reached)
    {"pub": "room:1", "hex": "00ff"}       -> binary message
    {"whoami": true}                       -> {"ok": "whoami", "pid": 1234, "worker": "0"}

A publish while Redis is down answers ``{"error": "HubUnavailable", "delivered": n}``.

On the path ``/json``, the hub's own JSON protocol (:mod:`wsio.pubsub.json_protocol`)
instead, every topic open to subscribe and publish, with the path's query as presence.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

import wsio
from wsio.pubsub.json_protocol import handle


class App:
    """A wsio.run() app: one hub per worker, opened in startup() and closed in shutdown()."""

    def __init__(self, redis_url: str | None, prefix: str = "wsio-test:", history: int = 0, presence_ttl: float = 60.0) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.history = history
        self.presence_ttl = presence_ttl
        self.hub: wsio.Hub | None = None

    async def startup(self) -> None:
        self.hub = wsio.Hub(
            self.redis_url,
            channel_prefix=self.prefix,
            reconnect_initial=0.05,
            reconnect_max=0.3,
            history_size=self.history,
            presence_ttl=self.presence_ttl,
        )
        await self.hub.start()

    async def shutdown(self) -> None:
        if self.hub is not None:
            await self.hub.close()

    async def __call__(self, ws: wsio.ServerConnection) -> None:
        hub = self.hub
        assert hub is not None
        path, _, query = ws.request.path.partition("?")  # type: ignore[union-attr]
        if path == "/json":
            anyone = lambda ws, topic: True  # noqa: E731
            await handle(hub, ws, can_subscribe=anyone, can_publish=anyone, presence=lambda ws, topic: query or None)
            return
        async for message in ws:
            command: dict[str, Any] = json.loads(message)
            if "sub" in command:
                await hub.subscribe(ws, command["sub"])
                await ws.send(json.dumps({"ok": "sub", "pid": os.getpid()}))
            elif "sub_prefix" in command:
                await hub.subscribe_prefix(ws, command["sub_prefix"])
                await ws.send(json.dumps({"ok": "sub_prefix", "pid": os.getpid()}))
            elif "unsub" in command:
                await hub.unsubscribe(ws, command["unsub"])
                await ws.send(json.dumps({"ok": "unsub"}))
            elif "pub" in command:
                data: str | bytes = command["text"] if "text" in command else bytes.fromhex(command["hex"])
                try:
                    n = await hub.publish(command["pub"], data)
                except wsio.HubUnavailable as exc:
                    await ws.send(json.dumps({"error": "HubUnavailable", "delivered": exc.delivered, "why": str(exc)}))
                else:
                    await ws.send(json.dumps({"ok": "pub", "n": n}))
            elif "whoami" in command:
                await ws.send(json.dumps({"ok": "whoami", "pid": os.getpid(), "worker": os.environ.get("WSIO_WORKER")}))


async def echo(ws: wsio.ServerConnection) -> None:
    """A plain handler, for ``wsio.run("tests.pubsub.app:echo", ...)``."""
    async for message in ws:
        await ws.send(f"{os.getpid()}:{message}")


class Crash:
    """An app whose workers die as they start (exit code 3), for wsio.run()'s give-up test."""

    async def startup(self) -> None:
        os._exit(3)

    async def __call__(self, ws: wsio.ServerConnection) -> None:
        pass


crash = Crash()


def ready(port: int, pids: list[int]) -> None:
    print(f"ready {port} {' '.join(map(str, pids))}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--presence-ttl", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    wsio.run(
        App(args.redis, history=args.history, presence_ttl=args.presence_ttl),
        "127.0.0.1",
        args.port,
        workers=args.workers,
        on_ready=ready,
        compression=None,
        close_timeout=2,
    )


if __name__ == "__main__":
    main()
