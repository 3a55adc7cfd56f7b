"""The peers of the interop tests: echo servers and session clients of every library.

A server is a context manager yielding a :class:`Server` (its ``url`` and the
events its echo logged); a client is a function ``(url, sessions) -> events of
each session``. Python libraries run :mod:`plan`'s logic through an adapter;
Node's ``ws`` and Chromium run ``node/driver.js``. Everything listens on
127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from typing import Any, Callable, Iterator

import pytest

from tests.browser.chromium import launch_chromium

from .plan import (
    DEFLATE_PARAMS,
    MAX_SIZE,
    STEP_TIMEOUT,
    SUBPROTOCOL,
    SUBPROTOCOLS,
    Session,
    client_logic,
    echo_logic,
    run_async,
    run_sync,
)

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
Events = list[dict[str, Any]]


def node() -> str:
    """The ``node`` binary, once ``ws`` is installed; fails (never skips) otherwise."""
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not installed: the interop tests need Node.js 18+")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        pytest.fail("Node's ws package is missing: run `npm ci --prefix tests/interop/node` (make test does)")
    return path


# -- adapters: one library's connection, as plan.py's operations see it ---------------------


def _closed_errors() -> tuple[type[BaseException], ...]:
    import websockets.exceptions

    import wsio

    return (wsio.ConnectionClosed, websockets.exceptions.ConnectionClosed)


def _info(ws: Any) -> dict[str, Any]:
    """What a wsio or websockets connection negotiated, in its response headers and its core."""
    info = {
        "subprotocol": ws.subprotocol,
        "extensions": ws.response.headers.get("Sec-WebSocket-Extensions", ""),
        "core_extensions": [type(e).__name__ for e in ws.protocol.extensions],
    }
    if hasattr(ws.protocol, "deflate"):  # wsio's own flag
        info["deflate"] = ws.protocol.deflate is not None
    return info


class SyncAdapter:
    """wsio.sync and websockets.sync connections (the same API)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def info(self) -> dict[str, Any]:
        return _info(self.ws)

    def recv(self, timeout: float | None) -> Any:
        try:
            return self.ws.recv(timeout)
        except _closed_errors():
            return None

    def send(self, message: Any) -> None:
        self.ws.send(message)

    def send_fragments(self, pieces: list[Any]) -> None:
        self.ws.send(pieces)

    def ping(self) -> bool:
        return bool(self.ws.ping().wait(STEP_TIMEOUT))

    def close(self, code: int, reason: str) -> None:
        self.ws.close(code, reason)

    def closed(self) -> tuple[int | None, str | None]:
        return self.ws.close_code, self.ws.close_reason


class AsyncAdapter:
    """wsio and websockets.asyncio connections (the same API)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def info(self) -> dict[str, Any]:
        return _info(self.ws)

    async def recv(self, timeout: float | None) -> Any:
        try:
            return await asyncio.wait_for(self.ws.recv(), timeout)
        except _closed_errors():
            return None

    async def send(self, message: Any) -> None:
        await self.ws.send(message)

    async def send_fragments(self, pieces: list[Any]) -> None:
        await self.ws.send(pieces)

    async def ping(self) -> bool:
        pong = await self.ws.ping()
        try:
            await asyncio.wait_for(pong, STEP_TIMEOUT)
        except TimeoutError:
            return False
        return True

    async def close(self, code: int, reason: str) -> None:
        await asyncio.wait_for(self.ws.close(code, reason), STEP_TIMEOUT)

    async def closed(self) -> tuple[int | None, str | None]:
        await asyncio.wait_for(self.ws.wait_closed(), STEP_TIMEOUT)
        return self.ws.close_code, self.ws.close_reason


class WebSocketClientAdapter:
    """websocket-client's ``WebSocket``: no permessage-deflate; fragments with ``send_frame``."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.close_frame: bytes | None = None  # the payload of the close frame received

    def info(self) -> dict[str, Any]:
        headers = self.ws.getheaders() or {}
        return {"subprotocol": self.ws.getsubprotocol(), "extensions": headers.get("sec-websocket-extensions", "")}

    def recv(self, timeout: float | None) -> Any:
        import websocket

        self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:  # answered with 1000 by websocket-client
            self.close_frame = data
            return None
        return data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data

    def send(self, message: Any) -> None:
        import websocket

        self.ws.send(message, websocket.ABNF.OPCODE_TEXT if isinstance(message, str) else websocket.ABNF.OPCODE_BINARY)

    def send_fragments(self, pieces: list[Any]) -> None:
        import websocket

        opcode = websocket.ABNF.OPCODE_TEXT if isinstance(pieces[0], str) else websocket.ABNF.OPCODE_BINARY
        for i, piece in enumerate(pieces):
            data = piece.encode() if isinstance(piece, str) else piece  # create_frame encodes str as latin-1 but in a text frame
            frame = websocket.ABNF.create_frame(data, opcode if i == 0 else websocket.ABNF.OPCODE_CONT, int(i == len(pieces) - 1))
            self.ws.send_frame(frame)

    def ping(self) -> bool:
        """websocket-client doesn't wait for pongs: read the next frame, which must be it."""
        import websocket

        self.ws.settimeout(STEP_TIMEOUT)
        self.ws.ping("wsio-interop")
        opcode, frame = self.ws.recv_data_frame(control_frame=True)
        return opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"wsio-interop"

    def close(self, code: int, reason: str) -> None:
        self.ws.close(status=code, reason=reason.encode(), timeout=STEP_TIMEOUT)
        self.close_frame = self.ws.close_frame.data if self.ws.close_frame is not None else None

    def closed(self) -> tuple[int | None, str | None]:
        self.ws.shutdown()
        payload = self.close_frame
        if payload is None or len(payload) < 2:
            return (None, None) if payload is None else (1005, "")
        return int.from_bytes(payload[:2], "big"), payload[2:].decode()


# -- the wsio side's frames, from its DEBUG log ---------------------------------------------

WIRE_LINE = re.compile(r"([<>]) (TEXT|BINARY|CONT)( fin)?( rsv1)? \[(\d+) bytes\]")


class WireLog(logging.Handler):
    """The data frames wsio sends (``>``) and receives (``<``), as its core logs them at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.frames: list[tuple[str, str, bool]] = []  # (direction, opcode, rsv1)

    def emit(self, record: logging.LogRecord) -> None:
        match = WIRE_LINE.match(record.getMessage())
        if match:
            self.frames.append((match[1], match[2], bool(match[4])))

    def count(self, direction: str, opcode: str | None = None, rsv1: bool | None = None) -> int:
        return sum(1 for d, o, r in self.frames if d == direction and opcode in (None, o) and rsv1 in (None, r))


@contextlib.contextmanager
def wire_log() -> Iterator[WireLog]:
    """Turn on wsio's frame-level DEBUG lines (read when a connection starts) and collect them."""
    logger = logging.getLogger("wsio")
    handler = WireLog()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)


# -- servers ----------------------------------------------------------------------------------


class Server:
    """An echo server's address and what its echo logged, by connection."""

    def __init__(self) -> None:
        self.url = ""
        self.port = 0
        self._events: dict[int, Events] = {}
        self._cond = threading.Condition()

    def log(self, conn: int, event: dict[str, Any]) -> None:
        with self._cond:
            self._events.setdefault(conn, []).append(event)
            self._cond.notify_all()

    def logger(self) -> Callable[[dict[str, Any]], None]:
        """A log function for one new connection."""
        with self._cond:
            conn = len(self._events) + 1
            self._events[conn] = []
        return lambda event: self.log(conn, event)

    def sessions(self, count: int, timeout: float = STEP_TIMEOUT) -> list[Events]:
        """The events of the first ``count`` connections, once each has logged its close."""

        def done() -> bool:
            return len(self._events) >= count and all(
                any(e["event"] in ("close", "error") for e in self._events.get(conn, [])) for conn in range(1, count + 1)
            )

        with self._cond:
            self._cond.wait_for(done, timeout)
            return [list(self._events.get(conn, [])) for conn in range(1, count + 1)]


class LoopThread:
    """An event loop in a thread of its own, for the asyncio servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="interop-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(STEP_TIMEOUT)
        self.loop.close()


def _page() -> bytes:
    """The page Chromium opens: the payloads and the driver, served by the wsio server."""
    scripts = "".join(f"<script>{open(os.path.join(NODE_DIR, name)).read()}</script>" for name in ("payload.js", "driver.js"))
    return f"<!doctype html><meta charset=utf-8><title>wsio interop</title>{scripts}".encode()


def _process_request(connection: Any, request: Any) -> Any:
    """wsio servers also serve the page of the Chromium test, at ``/``."""
    import wsio

    if "upgrade" in request.headers.get("Connection", "").lower():
        return None
    if request.path == "/":
        return wsio.basic_response(200, {"Content-Type": "text/html; charset=utf-8"}, _page())
    return wsio.basic_response(404, {"Content-Type": "text/plain"}, b"not found\n")


def _deflate_options(library: str, role: str, compression: str) -> dict[str, Any]:
    """``compression=`` and ``extensions=`` for "on", "off" or "params" (plan.DEFLATE_PARAMS)."""
    if compression != "params":
        return {"compression": "deflate" if compression == "on" else None}
    if library.startswith("wsio"):
        from wsio.protocol import deflate
    else:
        from websockets.extensions import permessage_deflate as deflate
    factory = deflate.ServerPerMessageDeflateFactory if role == "server" else deflate.ClientPerMessageDeflateFactory
    return {"compression": None, "extensions": [factory(**DEFLATE_PARAMS)]}


def _server_options(library: str, compression: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "subprotocols": [SUBPROTOCOL],
        "max_size": MAX_SIZE,
        **_deflate_options(library, "server", compression),
    }
    if library.startswith("wsio"):
        options["process_request"] = _process_request
    return options


@contextlib.contextmanager
def asyncio_server(library: str, compression: str) -> Iterator[Server]:
    """``wsio.serve`` or ``websockets.asyncio.server.serve`` on a loop thread."""
    if library == "wsio.asyncio":
        from wsio import serve
    else:
        from websockets.asyncio.server import serve
    server = Server()

    async def handler(ws: Any) -> None:
        await run_async(echo_logic(server.logger()), AsyncAdapter(ws))

    loop = LoopThread()
    try:

        async def start() -> Any:
            return await serve(handler, "127.0.0.1", 0, **_server_options(library, compression))

        listening = loop.run(start())
        try:
            server.port = listening.sockets[0].getsockname()[1]
            yield server
        finally:

            async def stop() -> None:
                listening.close()
                await listening.wait_closed()

            loop.run(stop())
    finally:
        loop.stop()


@contextlib.contextmanager
def sync_server(library: str, compression: str) -> Iterator[Server]:
    """``wsio.sync.serve`` or ``websockets.sync.server.serve``: serve_forever in a thread."""
    if library == "wsio.sync":
        from wsio.sync import serve
    else:
        from websockets.sync.server import serve
    server = Server()

    def handler(ws: Any) -> None:
        run_sync(echo_logic(server.logger()), SyncAdapter(ws))

    listening = serve(handler, "127.0.0.1", 0, **_server_options(library, compression))
    thread = threading.Thread(target=listening.serve_forever, name="interop-server", daemon=True)
    thread.start()
    try:
        server.port = listening.socket.getsockname()[1]
        yield server
    finally:
        listening.shutdown()
        thread.join(STEP_TIMEOUT)
        assert not thread.is_alive(), f"{library} serve_forever() didn't return after shutdown()"


@contextlib.contextmanager
def node_server(compression: str) -> Iterator[Server]:
    """``node/server.js`` (Node's ``ws``); its stdout lines become the events."""
    process = subprocess.Popen(
        [node(), os.path.join(NODE_DIR, "server.js"), compression],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip
    server = Server()
    listening = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "listening":
                server.port = event["port"]
                listening.set()
            else:
                server.log(event.pop("conn"), event)

    reader = threading.Thread(target=read, name="node-server-reader", daemon=True)
    reader.start()
    try:
        if not listening.wait(STEP_TIMEOUT):
            process.kill()
            raise AssertionError(f"node server.js didn't start: {process.communicate(timeout=5)[1][-2000:]}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(STEP_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()


@contextlib.contextmanager
def start_server(name: str, compression: str) -> Iterator[Server]:
    if name == "node-ws":
        manager = node_server(compression)
    elif name.endswith("asyncio"):
        manager = asyncio_server(name, compression)
    else:
        manager = sync_server(name, compression)
    with manager as server:
        server.url = f"ws://127.0.0.1:{server.port}/"
        yield server


# -- clients ----------------------------------------------------------------------------------


def _client_options(library: str, compression: str) -> dict[str, Any]:
    return {
        "subprotocols": SUBPROTOCOLS,
        "max_size": MAX_SIZE,
        "open_timeout": STEP_TIMEOUT,
        **_deflate_options(library, "client", compression),
    }


def asyncio_client(library: str, url: str, sessions: list[Session]) -> list[Events]:
    if library == "wsio.asyncio":
        from wsio import connect
    else:
        from websockets.asyncio.client import connect

    async def main() -> list[Events]:
        results = []
        for session in sessions:
            async with connect(url, **_client_options(library, session.compression)) as ws:
                results.append(await run_async(client_logic(session), AsyncAdapter(ws)))
        return results

    # A thread of its own: playwright's sync API keeps a loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, main()).result()


def sync_client(library: str, url: str, sessions: list[Session]) -> list[Events]:
    if library == "wsio.sync":
        from wsio.sync import connect
    else:
        from websockets.sync.client import connect
    results = []
    for session in sessions:
        with connect(url, **_client_options(library, session.compression)) as ws:
            results.append(run_sync(client_logic(session), SyncAdapter(ws)))
    return results


def websocket_client(url: str, sessions: list[Session]) -> list[Events]:
    import websocket

    results = []
    for session in sessions:
        assert session.compression == "off", "websocket-client has no permessage-deflate"
        ws = websocket.create_connection(url, subprotocols=SUBPROTOCOLS, timeout=STEP_TIMEOUT)
        try:
            results.append(run_sync(client_logic(session), WebSocketClientAdapter(ws)))
        finally:
            ws.shutdown()
    return results


def _group(lines: list[dict[str, Any]], count: int) -> list[Events]:
    results: list[Events] = [[] for _ in range(count)]
    for event in lines:
        results[event.pop("session")].append(event)
    return results


def node_client(url: str, sessions: list[Session]) -> list[Events]:
    plan = json.dumps({"sessions": [session.as_json(url) for session in sessions]})
    done = subprocess.run(
        [node(), os.path.join(NODE_DIR, "client.js")],
        input=plan, capture_output=True, text=True, encoding="utf-8", timeout=STEP_TIMEOUT * 4,
    )  # fmt: skip
    assert done.returncode in (0, 1) and not done.stderr, f"node client.js: exit {done.returncode}: {done.stderr[-2000:]}"
    return _group([json.loads(line) for line in done.stdout.splitlines()], len(sessions))


# The browser: one launcher for every Chromium test (throwaway profile, Debian's chromium).
chromium = launch_chromium


RUN_IN_PAGE = """async (sessions) => {
  const events = [];
  const env = {
    open: (url, subprotocols) => new WebSocket(url, subprotocols),  // always offers permessage-deflate
    sha256: async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)),
                                        (b) => b.toString(16).padStart(2, '0')).join(''),
    sendFragments: null,  // the browser's WebSocket API sends whole messages only
    ping: null,  // and can't ping (it answers pings)
  };
  await wsioDriver.runSessions(sessions, env, (event) => events.push(event));
  return events;
}"""


def chromium_client(browser: Any, url: str, sessions: list[Session]) -> list[Events]:
    """Sessions run by the page the wsio server serves (a secure context: crypto.subtle works)."""
    page = browser.new_page()
    try:
        page.set_default_timeout(STEP_TIMEOUT * 1000)
        page.goto(url.replace("ws://", "http://", 1))
        events = page.evaluate(RUN_IN_PAGE, [session.as_json(url) for session in sessions])
    finally:
        page.close()
    return _group(events, len(sessions))
