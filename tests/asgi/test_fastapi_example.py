"""examples/asgi/fastapi_app.py run as its docstring says: uvicorn's command line with wsio's engine.

One uvicorn process for the module (httptools and uvloop, uvicorn's defaults
when installed), on 127.0.0.1 and a port the kernel picks. wsio's asyncio
clients check the echo and the rooms (several clients in a room get each
other's messages, in order; a client that leaves gets no more); headless
Chromium (tests/browser/chromium.py) chats from the example's page.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

import fastapi  # noqa: F401  (the test extra has it and uvicorn: missing, these tests fail)
import uvicorn  # noqa: F401

from tests.browser.chromium import REPORTS, launch_chromium  # noqa: E402
from tests.helpers import logged_server  # noqa: E402
from wsio.asyncio.client import ClientConnection, connect  # noqa: E402
from wsio.exceptions import InvalidStatus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [
    "-m", "uvicorn", "fastapi_app:app", "--ws", "wsio.asgi:UvicornProtocol",
    "--app-dir", str(ROOT / "examples" / "asgi"), "--host", "127.0.0.1", "--port", "0",
]  # fmt: skip


def _running(output: str) -> str | None:
    found = re.search(r"running on http://127\.0\.0\.1:(\d+)", output)
    return None if found is None else f"http://127.0.0.1:{found.group(1)}"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """The example under uvicorn in a subprocess; yields ``http://127.0.0.1:PORT``."""
    with logged_server(COMMAND, _running, cwd=ROOT) as address:
        yield address


def ws(base: str) -> str:
    return base.replace("http://", "ws://")


async def join(base: str, room: str, name: str) -> ClientConnection:
    client = await connect(f"{ws(base)}/rooms/{room}?name={name}")
    assert await client.recv(timeout=5) == f"{name} joined"
    return client


def room_size(base: str, room: str) -> int:
    """GET /rooms/{room}: how many connections the hub has in the room."""
    with urllib.request.urlopen(f"{base}/rooms/{room}", timeout=5) as response:
        info: dict[str, Any] = json.loads(response.read())
    assert info["room"] == room
    return int(info["connections"])


async def members(base: str, room: str) -> int:
    return await asyncio.to_thread(room_size, base, room)


async def test_echo(base: str) -> None:
    async with connect(ws(base) + "/echo") as client:
        await client.send("héllo")
        assert await client.recv(timeout=5) == "héllo"
        await client.send(b"\x00\xff" * 1000)
        assert await client.recv(timeout=5) == b"\x00\xff" * 1000


async def test_everyone_in_a_room_gets_each_message_and_no_one_else_does(base: str) -> None:
    alice = await join(base, "blue", "alice")
    bob = await join(base, "blue", "bob")
    carol = await join(base, "blue", "carol")
    dave = await join(base, "green", "dave")
    assert [await alice.recv(timeout=5) for _ in range(2)] == ["bob joined", "carol joined"]
    assert await bob.recv(timeout=5) == "carol joined"
    assert await members(base, "blue") == 3

    await alice.send("hello, blue")
    await bob.send("hi alice")
    for client in (alice, bob, carol):
        assert await client.recv(timeout=5) == "alice: hello, blue"
        assert await client.recv(timeout=5) == "bob: hi alice"
    # Nothing from blue reached dave: the next message he gets is his own.
    await dave.send("anyone in green?")
    assert await dave.recv(timeout=5) == "dave: anyone in green?"
    for client in (alice, bob, carol, dave):
        await client.close()


async def test_many_senders_at_once_every_message_arrives_in_order(base: str) -> None:
    """Six clients each send 50 messages at the same time; each client gets all 300, each sender's in order."""
    names = [f"user{i}" for i in range(6)]
    clients = [await join(base, "busy", name) for name in names]
    count = 50

    async def send_all(client: ClientConnection, name: str) -> None:
        for i in range(count):
            await client.send(f"{i:03d}")

    async def receive_all(client: ClientConnection) -> list[str]:
        lines: list[str] = []
        while len(lines) < count * len(names):
            line = await client.recv(timeout=5)
            if not line.endswith(" joined"):
                lines.append(line)
        return lines

    receivers = [asyncio.create_task(receive_all(client)) for client in clients]
    await asyncio.gather(*(send_all(client, name) for client, name in zip(clients, names)))
    for received in await asyncio.gather(*receivers):
        for name in names:
            assert [line.split(": ")[1] for line in received if line.startswith(f"{name}: ")] == [
                f"{i:03d}" for i in range(count)
            ]
    for client in clients:
        await client.close()


async def test_a_client_that_leaves_gets_no_more_messages(base: str) -> None:
    alice = await join(base, "red", "alice")
    bob = await join(base, "red", "bob")
    assert await alice.recv(timeout=5) == "bob joined"
    assert await members(base, "red") == 2

    await bob.close()
    assert await alice.recv(timeout=5) == "bob left"
    for _ in range(100):  # the hub forgets bob's connection once its TCP connection has ended
        if await members(base, "red") == 1:
            break
        await asyncio.sleep(0.02)
    assert await members(base, "red") == 1

    # Bob comes back in another room: red's messages don't reach him there.
    bob = await join(base, "orange", "bob")
    await alice.send("red only")
    assert await alice.recv(timeout=5) == "alice: red only"
    await bob.send("orange here")
    assert await bob.recv(timeout=5) == "bob: orange here"
    await alice.close()
    await bob.close()


@pytest.mark.parametrize("path", ["/rooms/no%20spaces?name=ada", "/rooms/lobby", "/rooms/lobby?name="])
async def test_a_bad_room_or_name_is_refused(base: str, path: str) -> None:
    """FastAPI's validation closes before accepting: the handshake gets 403."""
    with pytest.raises(InvalidStatus) as caught:
        await connect(ws(base) + path)
    assert caught.value.response.status_code == 403


@pytest.mark.timeout(120)
def test_two_browser_pages_chat_in_a_room(base: str) -> None:
    def open_page(browser: Any, name: str, room: str) -> Any:
        page = browser.new_context(viewport={"width": 800, "height": 600}).new_page()
        page.goto(base + "/")
        page.fill("#name", name)
        page.fill("#room", room)
        page.click("#join button")
        page.wait_for_selector("#status.open", timeout=10_000)
        return page

    def wait_for_line(page: Any, text: str) -> None:
        page.wait_for_function(
            "text => [...document.querySelectorAll('#log div')].some(d => d.textContent === text)",
            arg=text,
            timeout=10_000,
        )

    def say(page: Any, text: str) -> None:
        page.fill("#text", text)
        page.press("#text", "Enter")

    with launch_chromium() as browser:
        ada = open_page(browser, "ada", "browsers")
        grace = open_page(browser, "grace", "browsers")
        wait_for_line(ada, "grace joined")
        say(ada, "hello from ada")
        wait_for_line(grace, "ada: hello from ada")
        wait_for_line(ada, "ada: hello from ada")
        say(grace, "<b>not bold</b>")  # shown as text
        wait_for_line(ada, "grace: <b>not bold</b>")
        assert ada.eval_on_selector_all("#log b", "elements => elements.length") == 0
        assert room_size(base, "browsers") == 2

        os.makedirs(REPORTS, exist_ok=True)
        ada.screenshot(path=os.path.join(REPORTS, "fastapi-rooms-ada.png"))
        grace.context.close()  # the page goes away: its WebSocket closes
        wait_for_line(ada, "grace left")
        deadline = time.monotonic() + 5
        while room_size(base, "browsers") != 1:
            assert time.monotonic() < deadline, "the hub kept the closed page's connection"
            time.sleep(0.05)


def test_the_example_as_a_script() -> None:
    """``python examples/asgi/fastapi_app.py --port N``: uvicorn.run() with wsio's engine."""
    from tests.helpers import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "asgi" / "fastapi_app.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    async def talk() -> None:
        for _ in range(200):
            try:
                client = await connect(f"ws://127.0.0.1:{port}/echo")
            except OSError:
                await asyncio.sleep(0.05)
                continue
            await client.send("as a script")
            assert await client.recv(timeout=5) == "as a script"
            assert client.response.headers["Server"] == "uvicorn"
            await client.close()
            return
        raise AssertionError("the script didn't start serving")

    try:
        asyncio.run(talk())
    finally:
        process.terminate()
        process.wait(10)
