"""The chat demo in a real browser: headless Chromium, two pages, two worker processes joined by Redis.

Chromium as tests/browser/chromium.py launches it. Screenshots go to
``reports/browser/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from tests.pubsub.redis_server import REDIS_SERVER, RedisServer, free_port

from .chromium import REPORTS, ROOT, launch_chromium

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def chat_server() -> Iterator[str]:
    """examples/chat/server.py with 2 workers and Redis; yields the page's URL."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (make system-deps installs it)")
    redis = RedisServer()
    redis.start()
    port = free_port()
    os.makedirs(REPORTS, exist_ok=True)
    log = open(os.path.join(REPORTS, "chat-server.log"), "wb")
    process = subprocess.Popen(
        [sys.executable, "examples/chat/server.py", "--port", str(port), "--redis", redis.url, "--workers", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("chat on http://"), f"the chat didn't start: {line!r}; see reports/browser/chat-server.log"
        assert "2 worker(s)" in line
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        redis.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


def open_chat(browser: Any, url: str) -> tuple[Any, str]:
    """A page of its own (a fresh context: no shared cookies); returns ``(page, worker_pid)``."""
    page = browser.new_context(viewport={"width": 900, "height": 720}).new_page()
    page.goto(url)
    page.wait_for_selector("#status.connected", timeout=10_000)
    page.wait_for_function("document.getElementById('worker').textContent !== '?'", timeout=10_000)
    return page, page.text_content("#worker") or ""


def join(page: Any, name: str, room: str) -> None:
    page.fill("#name", name)
    page.fill("#room", room)
    page.click("#join")
    page.wait_for_function("room => document.getElementById('room-title').textContent === room", arg=room, timeout=10_000)


def say(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def wait_for_line(page: Any, text: str) -> None:
    page.wait_for_function(
        "text => [...document.querySelectorAll('#log div')].some(d => d.textContent.includes(text))",
        arg=text,
        timeout=10_000,
    )


def lines(page: Any) -> list[str]:
    return page.eval_on_selector_all("#log div", "divs => divs.map(d => d.textContent)")  # type: ignore[no-any-return]


def test_two_pages_two_workers_two_rooms(chat_server: str, browser: Any) -> None:
    alice, alice_worker = open_chat(browser, chat_server)
    # The kernel picks the worker of each connection: reload until bob is on the other one.
    for _ in range(40):
        bob, bob_worker = open_chat(browser, chat_server)
        if bob_worker != alice_worker:
            break
        bob.context.close()
    assert bob_worker != alice_worker, "the two pages are served by two worker processes"

    # Same room, different processes: each sees the other's messages, through Redis.
    join(alice, "alice", "blue")
    join(bob, "bob", "blue")
    wait_for_line(alice, "bob joined")
    say(alice, "hello from alice")
    wait_for_line(bob, "alice: hello from alice")
    say(bob, "hi alice, bob here")
    wait_for_line(alice, "bob: hi alice, bob here")
    wait_for_line(bob, "bob: hi alice, bob here")  # its own message comes back through the room

    # Different rooms: nothing crosses.
    join(bob, "bob", "green")
    wait_for_line(alice, "bob left")
    say(alice, "only blue hears this")
    say(bob, "only green hears this")
    wait_for_line(alice, "alice: only blue hears this")
    wait_for_line(bob, "bob: only green hears this")
    time.sleep(0.5)  # time enough for a stray message to arrive
    assert not any("only green" in line for line in lines(alice))
    assert not any("only blue" in line for line in lines(bob))

    os.makedirs(REPORTS, exist_ok=True)
    alice.screenshot(path=os.path.join(REPORTS, "chat-alice-blue.png"))
    bob.screenshot(path=os.path.join(REPORTS, "chat-bob-green.png"))
    assert os.path.getsize(os.path.join(REPORTS, "chat-alice-blue.png")) > 1000
