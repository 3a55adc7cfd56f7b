"""The chat demo (examples/chat/server.py) as a hostile client sees it: Origin, rooms, names, bad input.

Each test starts the demo in a child process on a free port and talks to it
with wsio clients; the browser test (tests/browser/) covers the page itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from typing import Any, AsyncIterator

import pytest

import wsio

from .processes import ROOT
from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(90)


class Demo:
    """``examples/chat/server.py`` in a child process; its log (stderr) in a file."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="wsio-chat-", suffix=".log", delete=False)
        self.banner = ""

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "examples/chat/server.py", "--port", str(self.port), *self.args,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=self.log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert self.process.stdout is not None
        self.banner = (await asyncio.wait_for(self.process.stdout.readline(), 20)).decode()
        assert self.banner.startswith("chat on http://"), f"the demo didn't start: {self.banner!r}; see {self.log.name}"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.log.close()

    def logged(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as log:
            return log.read()

    async def client(self, **options: Any) -> wsio.ClientConnection:
        ws = await wsio.connect(self.url, open_timeout=5, **options)
        hello = json.loads(await ws.recv(timeout=5))  # type: ignore[arg-type]
        assert hello["type"] == "hello"
        return ws


@contextlib.asynccontextmanager
async def demo(*args: str) -> AsyncIterator[Demo]:
    server = Demo(*args)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        os.unlink(server.log.name)


async def ask(ws: wsio.ClientConnection, request: Any, expect: str) -> dict[str, Any]:
    """Send ``request`` (JSON, or a raw str / bytes); return the first answer of type ``expect``, skipping notices."""
    await ws.send(request if isinstance(request, (str, bytes)) else json.dumps(request))
    while True:
        answer = json.loads(await ws.recv(timeout=5))  # type: ignore[arg-type]
        if answer["type"] == expect:
            return answer  # type: ignore[no-any-return]
        assert answer["type"] in ("notice", "renamed"), answer


async def join(ws: wsio.ClientConnection, name: str, room: str) -> None:
    await ask(ws, {"type": "join", "name": name, "room": room}, "joined")


async def heard(ws: wsio.ClientConnection, wait: float = 0.3) -> list[dict[str, Any]]:
    """Everything ``ws`` receives within ``wait`` seconds."""
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(json.loads(await ws.recv(timeout=wait)))  # type: ignore[arg-type]
    return got


async def test_a_page_of_another_site_is_refused_and_logged() -> None:
    async with demo("--origin", "https://friend.example") as server:
        with pytest.raises(wsio.InvalidStatus) as raised:
            await wsio.connect(server.url, origin="https://evil.example", open_timeout=5)
        assert raised.value.status_code == 403
        # A page the chat served, by its address or by the Host it is reached by;
        # a site given with --origin; a client that isn't a browser (no Origin).
        for options in (
            {"origin": f"http://127.0.0.1:{server.port}"},
            {"origin": "http://chat.test:8080", "extra_headers": {"Host": "chat.test:8080"}},
            {"origin": "https://friend.example"},
            {},
        ):
            ws = await server.client(**options)
            await join(ws, "alice", "lobby")
            await ws.close()
        # The Host trick works for its own name only.
        with pytest.raises(wsio.InvalidStatus):
            await wsio.connect(server.url, origin="https://evil.example", extra_headers={"Host": "chat.test"}, open_timeout=5)
        await asyncio.sleep(0.2)
        log = server.logged()
    refusals = [line for line in log.splitlines() if "refused: Origin" in line]
    assert len(refusals) == 2, log
    assert " INFO chat: 127.0.0.1:" in refusals[0]
    assert "refused: Origin 'https://evil.example' isn't one of the chat's (" in refusals[0]
    assert "--origin" in refusals[0]
    assert "Traceback" not in log


async def test_no_room_name_reaches_another_room() -> None:
    async with demo() as server:
        bob = await server.client()
        mallory = await server.client()
        await join(bob, "bob", "secret")
        for room in ("*", "s*", "secret*", "room:*", "", " ", ["secret"]):
            answer = await ask(mallory, {"type": "join", "name": "mallory", "room": room}, "error")
            assert "a room has 1 to 32 letters" in answer["text"]
        await join(mallory, "mallory", "lobby")
        await ask(bob, {"type": "say", "text": "the password is hunter2"}, "message")
        assert not any("hunter2" in json.dumps(event) for event in await heard(mallory))


async def test_names_are_unique_in_a_room_and_visible() -> None:
    async with demo() as server:
        alice = await server.client()
        mallory = await server.client()
        await join(alice, "alice", "lobby")
        for taken in ("alice", "Alice", " ALICE ", "\uff41\uff4c\uff49\uff43\uff45"):  # the last: fullwidth
            answer = await ask(mallory, {"type": "join", "name": taken, "room": "lobby"}, "error")
            assert "already called" in answer["text"], answer
        invisible = {
            "alice\u200b": "U+200B",  # zero-width space
            "\u202eecila": "U+202E",  # right-to-left override
            "bob\u2066 left": "U+2066",  # isolate: "bob left" in a notice
            "ali\u00adce": "U+00AD",  # soft hyphen
            "al\x00ice": "U+0000",
            "ali\u3000ce": "U+3000",  # ideographic space
            "ali\u2028ce": "U+2028",  # line separator
        }
        for name, code in invisible.items():
            answer = await ask(mallory, {"type": "join", "name": name, "room": "lobby"}, "error")
            assert code in answer["text"], answer
        answer = await ask(mallory, {"type": "join", "name": "x" * 33, "room": "lobby"}, "error")
        assert "1 to 32 characters" in answer["text"]
        answer = await ask(mallory, {"type": "join", "name": 42, "room": "lobby"}, "error")
        assert answer["text"] == "a name is a string"
        # A name is free in another room, and in this one once its holder leaves it.
        await join(mallory, "alice", "elsewhere")
        await ask(mallory, {"type": "name", "name": "mallory"}, "renamed")
        await join(mallory, "mallory", "lobby")
        answer = await ask(mallory, {"type": "name", "name": "ALICE"}, "error")
        assert "already called" in answer["text"]
        await alice.close()
        await asyncio.sleep(0.2)
        await ask(mallory, {"type": "name", "name": "Alice"}, "renamed")
        # Renaming to one's own name with other case is not a clash.
        await ask(mallory, {"type": "name", "name": "alice"}, "renamed")


async def test_names_are_unique_across_processes_through_redis(redis_server: RedisServer) -> None:
    async with demo("--redis", redis_server.url) as one, demo("--redis", redis_server.url) as two:
        alice = await one.client()
        mallory = await two.client()
        await join(alice, "alice", "lobby")
        answer = await ask(mallory, {"type": "join", "name": "Alice", "room": "lobby"}, "error")
        assert "already called Alice" in answer["text"]
        await join(mallory, "mallory", "lobby")
        await alice.close()
        await asyncio.sleep(0.3)
        await ask(mallory, {"type": "name", "name": "alice"}, "renamed")


async def test_bad_input_gets_an_error_and_no_traceback() -> None:
    async with demo() as server:
        ws = await server.client()
        bad = [
            ("[" * 16_000, "expected a JSON object with a type"),  # RecursionError in json, within max_size
            ('{"type": "say", "text": ' * 600, "expected a JSON object with a type"),
            ("not json", "expected a JSON object with a type"),
            ("null", "expected a JSON object with a type"),
            ('["join"]', "expected a JSON object with a type"),
            ('{"type": 1}', "expected a JSON object with a type"),
            (b'{"type": "say", "text": "hi"}', "send JSON in text messages"),
            ({"type": "dance"}, "expected a type of join, name or say"),
            ({"type": "say", "text": "hi"}, "join a room to talk"),
            ({"type": "join", "room": {"name": "lobby"}}, "a room has 1 to 32 letters, digits, - or _"),
        ]
        for request, error in bad:
            assert (await ask(ws, request, "error"))["text"] == error
        await join(ws, "alice", "lobby")
        for text, error in [
            (["hi"], "a message is a string"),
            ("x" * 1001, "a message has at most 1000 characters"),
            ("hi \u202egnp.exe", "U+202E"),
            ("bell\x07", "U+0007"),
        ]:
            assert error in (await ask(ws, {"type": "say", "text": text}, "error"))["text"]
        # Still open, still working.
        message = await ask(ws, {"type": "say", "text": "still here 👋"}, "message")
        assert message == {"type": "message", "room": "lobby", "name": "alice", "text": "still here 👋"}
        # A message beyond the demo's max_size ends the connection with 1009, as wsio does.
        await ws.send("x" * 20_000)
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1009
        await asyncio.sleep(0.2)
        log = server.logged()
    assert "Traceback" not in log and " ERROR " not in log, log
