"""The chat demo's page (hub-client.js) through a server restart: no gap, nothing twice.

The chat runs on Redis with history, so that what is published while it is
down is there when it comes back; a hub in the test publishes into the room
all along, straight through Redis.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.pubsub.conftest import redis_server  # noqa: F401  (a fixture: a fresh redis-server)
from tests.pubsub.redis_server import RedisServer, free_port
from wsio.pubsub import Hub

from .chromium import REPORTS, ROOT, launch_chromium
from .test_chat import join, lines, open_chat, wait_for_line

pytestmark = pytest.mark.timeout(180)

COUNT = 150


class ChatProcess:
    """examples/chat/server.py on a port, started and stopped by PID."""

    def __init__(self, port: int, redis_url: str, workers: int) -> None:
        self.port = port
        self.redis_url = redis_url
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        os.makedirs(REPORTS, exist_ok=True)
        self.log = open(os.path.join(REPORTS, "chat-reconnect-server.log"), "ab")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "examples/chat/server.py",
                "--port",
                str(self.port),
                "--redis",
                self.redis_url,
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        assert line.startswith("chat on http://"), f"the chat didn't start: {line!r}; see {self.log.name}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


def publish(redis_url: str, room: str, count: int, every: float) -> None:
    """Publish ``count`` chat messages into ``room`` through a hub of the test's own, as the chat's workers do."""

    async def main() -> None:
        async with Hub(redis_url, channel_prefix="wsio-chat:", history_size=500, reconnect_initial=0.05) as hub:
            for i in range(count):
                text = f'{{"type": "message", "room": "{room}", "name": "bot", "text": "n{i}"}}'
                await hub.publish(f"room:{room}", text)
                await asyncio.sleep(every)

    asyncio.run(main())


@pytest.mark.parametrize("how", ["restart", "worker-killed"])
def test_the_page_misses_nothing_through_a_server_restart(redis_server: RedisServer, how: str) -> None:
    # restart: SIGTERM, the page's connection closes (1001), and the chat starts again.
    # worker-killed: 2 workers, the page's own worker gets SIGKILL; wsio.run replaces it
    # while the other serves on, and the page reconnects by itself (to either); the names
    # the dead worker held stay in Redis, and the page takes its own back with its token.
    chat = ChatProcess(free_port(), redis_server.url, 1 if how == "restart" else 2)
    chat.start()
    try:
        with launch_chromium() as browser:
            page, worker = open_chat(browser, f"http://127.0.0.1:{chat.port}/")
            join(page, "alice", "lobby")
            wait_for_line(page, "is now alice")  # the notice came through the room's subscription
            publisher = threading.Thread(target=publish, args=(redis_server.url, "lobby", COUNT, 0.02))
            publisher.start()
            time.sleep(0.8)
            if how == "restart":
                chat.stop()
                page.wait_for_function("!document.getElementById('status').classList.contains('connected')", timeout=10_000)
                time.sleep(0.5)
                chat.start()  # on the same port; the page comes back by itself
            else:
                os.kill(int(worker), signal.SIGKILL)
                page.wait_for_function(  # its new connection's hello names another worker
                    "pid => document.getElementById('worker').textContent !== pid", arg=worker, timeout=20_000
                )
                assert chat.process is not None and chat.process.poll() is None, "wsio.run serves on"
            publisher.join(60)
            assert not publisher.is_alive()
            page.wait_for_function(
                "n => [...document.querySelectorAll('#log div')].filter(d => / n\\d+$/.test(d.textContent)).length >= n",
                arg=COUNT,
                timeout=30_000,
            )
            time.sleep(0.5)  # time enough for a duplicate to show
            shown = lines(page)
            page.screenshot(path=os.path.join(REPORTS, f"chat-reconnect-{how}.png"))
            assert page.get_attribute("#status", "class") == "connected"
    finally:
        chat.stop()
        chat.log.close()
    received = [match.group(1) for line in shown if (match := re.search(r"bot: (n\d+)$", line))]
    assert received == [f"n{i}" for i in range(COUNT)], shown
    assert not any("history lost" in line for line in shown)
    assert sum("you joined lobby" in line for line in shown) == 2, "joined again after the restart"
    assert not any("already called" in line for line in shown), shown
    assert "lobbyalice joined" in shown, "back in the room with its name"


def publish_in_a_thread(redis_url: str, room: str, count: int) -> None:
    """publish(), from outside playwright's event loop, until done."""
    thread = threading.Thread(target=publish, args=(redis_url, room, count, 0.01))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_the_page_says_when_history_is_lost(redis_server: RedisServer) -> None:
    chat = ChatProcess(free_port(), redis_server.url, 1)
    chat.start()
    try:
        with launch_chromium() as browser:
            page, _ = open_chat(browser, f"http://127.0.0.1:{chat.port}/")
            join(page, "alice", "lobby")
            wait_for_line(page, "is now alice")
            publish_in_a_thread(redis_server.url, "lobby", 5)
            wait_for_line(page, "bot: n4")
            chat.stop()
            assert redis_server.command("FLUSHALL") == b"OK"  # the rooms' history (and names) gone while the chat is down
            chat.start()
            wait_for_line(page, "history lost, reloading")
            publish_in_a_thread(redis_server.url, "lobby", 3)
            wait_for_line(page, "bot: n2")
            time.sleep(0.3)
            shown = lines(page)
            page.screenshot(path=os.path.join(REPORTS, "chat-history-lost.png"))
    finally:
        chat.stop()
        chat.log.close()
    lost = next(i for i, line in enumerate(shown) if "history lost, reloading" in line)
    received = [match.group(1) for line in shown if (match := re.search(r"bot: (n\d+)$", line))]
    assert received == ["n0", "n1", "n2", "n3", "n4", "n0", "n1", "n2"], shown
    said = [i for i, line in enumerate(shown) if "bot: n" in line]
    assert said[4] < lost < said[5], "the notice between the messages before and after"
    assert sum("history lost" in line for line in shown) == 1, shown
