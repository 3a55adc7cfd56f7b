"""examples/chat/listen*.py, the reference clients on the chat: every message once, in order, through a chat restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from wsio.pubsub import Hub

from .processes import ROOT
from .redis_server import RedisServer
from .test_chat_demo import demo

pytestmark = pytest.mark.timeout(120)

COUNT = 100


async def publish(redis_url: str, count: int, every: float = 0.02) -> None:
    """Chat messages into the lobby, through a hub of the test's own on Redis (as the chat's workers publish)."""
    async with Hub(redis_url, channel_prefix="wsio-chat:", history_size=500, reconnect_initial=0.05) as hub:
        for i in range(count):
            event = {"type": "message", "room": "lobby", "name": "bot", "text": f"n{i}"}
            await hub.publish("room:lobby", json.dumps(event))
            await asyncio.sleep(every)


@pytest.mark.async_timeout(90)
@pytest.mark.parametrize("example", ["listen.py", "listen_websocket_client.py"])
async def test_a_listener_misses_nothing_through_a_chat_restart(redis_server: RedisServer, example: str) -> None:
    async with demo("--redis", redis_server.url) as server:
        listener = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join("examples", "chat", example), server.url, "lobby",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert listener.stdout is not None
        lines: list[str] = []

        async def read() -> None:
            assert listener.stdout is not None
            async for line in listener.stdout:
                lines.append(line.decode().rstrip("\n"))

        reading = asyncio.get_running_loop().create_task(read())
        try:
            publishing = asyncio.get_running_loop().create_task(publish(redis_server.url, COUNT))
            for _ in range(100):  # subscribed: the messages come
                if any(line.startswith("bot: ") for line in lines):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            # Restart the chat on its port (SIGTERM, by PID); the listener comes back by itself.
            assert server.process is not None and server.process.stdout is not None
            server.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(server.process.stdout.read(), 20)
            await asyncio.wait_for(server.process.wait(), 20)
            await asyncio.sleep(0.5)
            await server.start()
            await publishing
            for _ in range(200):
                if f"bot: n{COUNT - 1}" in lines:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
        finally:
            if listener.returncode is None:
                listener.kill()
            await asyncio.wait_for(listener.wait(), 10)
            await asyncio.wait_for(reading, 10)
    said = [line for line in lines if line.startswith("bot: ")]
    assert said, lines
    first = int(said[0].removeprefix("bot: n"))
    assert first < COUNT // 2, "the restart came after the listener was subscribed"
    assert said == [f"bot: n{i}" for i in range(first, COUNT)], lines
    assert not any("lost" in line for line in lines), lines
