"""wsio as uvicorn's WebSocket engine.

Serve an ASGI application's WebSocket endpoints (FastAPI, Starlette, plain
ASGI) through wsio's sans-I/O core by naming this module's class as uvicorn's
``ws`` protocol::

    uvicorn app:app --ws wsio.asgi:UvicornProtocol

or ``uvicorn.run(app, ws="wsio.asgi:UvicornProtocol")``. uvicorn's HTTP
protocol (h11 or httptools) parses the upgrade request and hands the
connection over; from then on every byte goes through
:class:`wsio.protocol.ServerProtocol`: the handshake, permessage-deflate,
size limits, control frames and the closing handshake.

uvicorn's settings are honoured: ``ws_max_size`` (a larger message fails the
connection with 1009), ``ws_ping_interval`` and ``ws_ping_timeout``
(keepalive; an unanswered ping closes with 1011), ``ws_per_message_deflate``,
``root_path``, the server's default headers (``server``, ``date``) and the
lifespan ``state``. On shutdown each open connection is closed with 1012.

The ASGI WebSocket spec 2.4 is implemented, including the
``websocket.http.response`` extension (denial responses).
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import logging
import random
import struct
from typing import Any
from urllib.parse import unquote

from .exceptions import InvalidState
from .protocol import ServerProtocol, State
from .protocol.connection import DEFAULT_MAX_FRAGMENTS
from .protocol.deflate import ServerPerMessageDeflateFactory
from .protocol.events import Fragment, Ping, Pong
from .protocol.frames import Close
from .protocol.http11 import Headers, Request, Response

try:  # uvicorn's own error type, so that its code (and the app's) recognise it.
    from uvicorn.protocols.utils import ClientDisconnected
except ImportError:  # pragma: no cover - only used under uvicorn

    class ClientDisconnected(OSError):  # type: ignore[no-redef]
        """The client went away; the ASGI message could not be sent."""


__all__ = ["UvicornProtocol", "ClientDisconnected"]

#: Bytes of frames a client may send behind its request while the app decides
#: whether to accept; past this, reading pauses until it does.
HANDSHAKE_BUFFER_LIMIT = 1 << 20

_DISCONNECT = "websocket.disconnect"


def _status_phrase(status: int) -> str:
    import http

    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class UvicornProtocol(asyncio.Protocol):
    """An :class:`asyncio.Protocol` that uvicorn runs one WebSocket connection with.

    uvicorn builds it; applications never do. The arguments are uvicorn's.

    Args:
        config: the server's ``uvicorn.Config``: the app, ``root_path`` and the
            ``ws_*`` settings.
        server_state: the server's ``ServerState``: the set of open connections
            (for shutdown), the set of running app tasks (the server waits for
            them) and the default response headers.
        app_state: the lifespan state; each connection's scope gets a shallow copy.
        _loop: the event loop; the running loop by default.

    Settings uvicorn has no option for are class attributes; set them on a
    subclass and name that class with ``--ws``:

    Attributes:
        compression_threshold: messages shorter than this many bytes are sent
            uncompressed even when permessage-deflate is on (default 128).
        max_fragments: the most frames one incoming message may come in; more
            fail the connection with 1009 (default 4096; ``None``: no limit).
        close_timeout: seconds to wait for the client's close frame after the
            app closed, before dropping the TCP connection (default 10).
        ping_sent_at: loop time of the last keepalive ping (0.0 before any).
        last_ping_rtt: round-trip time of the last answered keepalive ping.
    """

    compression_threshold: int = 128
    max_fragments: int | None = DEFAULT_MAX_FRAGMENTS
    close_timeout: float = 10.0

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        extensions = []
        if config.ws_per_message_deflate:
            extensions.append(
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
                )
            )
        self.conn = ServerProtocol(
            extensions=extensions,
            server_header=None,  # uvicorn's default headers carry it
            max_size=config.ws_max_size,
            max_fragments=self.max_fragments,
            compression_threshold=self.compression_threshold,
            logger=logging.getLogger("wsio.asgi"),
        )

        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}
        self.request: Request | None = None
        self._response: Response | None = None  # the 101 waiting for websocket.accept

        # What the app receives: a queue with at most one waiting receive().
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.read_paused = False
        self._writable = asyncio.Event()
        self._writable.set()

        self.handshake_complete = False  # accepted, refused, or given up on
        self.close_sent = False  # the app (or the server) closed; no more sends
        self._app_closed = False  # the app sent websocket.close (or a refusal)
        self.disconnected = False  # the app was told the connection is gone
        self.close_timer: asyncio.TimerHandle | None = None
        self._denial: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None
        self._fragments: list[Any] = []
        self._failure_handled = False
        self._fail_when_drained = False

        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        self._cancel_close_timer()
        self.connections.discard(self)
        if not self.disconnected:
            self.conn.receive_eof()
            self._log_close(self.conn.why or "connection lost")
            self._disconnect(1006)  # no close frame: abnormal closure
        self.handshake_complete = True
        self.close_sent = True
        self._writable.set()  # a send() blocked on a full buffer must not wait forever
        if exc is None and not self.transport.is_closing():
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost follows

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        events = conn.receive_data(data)
        if conn.failure_pending and not self._fail_when_drained:
            # A protocol error behind complete messages: the app gets those
            # first (and may answer them); the connection fails when it asks
            # for more (see receive()). The core ignores what arrives meanwhile.
            self._fail_when_drained = True
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
        # type(event) is read once, for speed; mypy doesn't narrow on `kind is ...`.
        for event in events:
            kind = type(event)
            if kind is str:
                self._message({"type": "websocket.receive", "text": event})
            elif kind is bytes:
                self._message({"type": "websocket.receive", "bytes": event})
            elif kind is Fragment:
                self._fragments.append(event.data)  # type: ignore[union-attr]
                if event.last:  # type: ignore[union-attr]
                    pieces, self._fragments = self._fragments, []
                    if isinstance(pieces[0], str):
                        self._message({"type": "websocket.receive", "text": "".join(pieces)})
                    else:
                        self._message({"type": "websocket.receive", "bytes": b"".join(pieces)})
            elif kind is Ping:
                pass  # the core queued the pong
            elif kind is Pong:
                self._pong(event.data)  # type: ignore[union-attr, arg-type]
            elif kind is Close:
                self._peer_closed(event)  # type: ignore[arg-type]
            elif kind is Request:
                self._request(event)  # type: ignore[arg-type]
        if conn.failure is not None or (conn.state is State.CLOSED and not self.handshake_complete):
            if not self._failure_handled:
                self._failure_handled = True
                self._failed()
            return
        out = conn.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(out)
        if conn.state is State.CONNECTING and len(conn._buf) > HANDSHAKE_BUFFER_LIMIT and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def shutdown(self) -> None:
        """Called by uvicorn on server shutdown: close with 1012 (or 500 before accepting)."""
        self._stop_keepalive()
        if self.close_sent:
            self._cancel_close_timer()
            self.transport.close()
            return
        if self.handshake_complete:
            self._log_close("server shutting down")
            self._disconnect(1012)
            self._write(self.conn.send_close(1012))
            self.close_sent = True
        else:
            self._send_500()
        self.transport.close()

    # -- receiving -----------------------------------------------------------

    def _request(self, request: Request) -> None:
        self.request = request
        self._response = response = self.conn.accept(request)
        if response.status_code != 101:
            # Not a valid WebSocket handshake: the core's error response, and done.
            self.conn.send_response(response)
            self.logger.info('%s - "WebSocket %s" %d', self._peer(), request.path, response.status_code)
            self.handshake_complete = True
            self.close_sent = True
            self.disconnected = True
            self._write(self.conn.data_to_send())
            self.transport.close()
            return
        path, _, query = request.path.partition("?")
        subprotocols: list[str] = []
        for value in request.headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend(token.strip() for token in value.split(",") if token.strip())
        root_path = self.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(path),
            "raw_path": root_path.encode("ascii") + path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.raw_items()],
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._queue.append({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _message(self, message: dict[str, Any]) -> None:
        if self.close_sent:
            return  # the app closed: discard, and keep reading until the client's close frame
        self._put(message)
        waiter = self._waiter
        # A receive() already woken takes the first message; any other waits.
        if len(self._queue) > (1 if waiter is not None and waiter.done() else 0) and not self.read_paused:
            # A message waits that the app hasn't asked for: stop reading from
            # the socket until it has, so a slow app doesn't buffer without bound.
            self.read_paused = True
            self.transport.pause_reading()

    def _put(self, message: dict[str, Any]) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._queue:
            waiter.set_result(None)
        self._queue.append(message)

    def _disconnect(self, code: int, reason: str | None = None) -> None:
        """Tell the app the connection is gone; ``reason`` only when a close frame carried one."""
        if not self.disconnected:
            self.disconnected = True
            message: dict[str, Any] = {"type": _DISCONNECT, "code": code}
            if reason is not None:
                message["reason"] = reason
            self._put(message)

    def _peer_closed(self, close: Close) -> None:
        if self.close_sent:
            # The client answered our close frame: the closing handshake is done.
            self._cancel_close_timer()
            self.transport.close()
            return
        self._log_close(f"client closed with {close.code} {close.reason!r}" if close.reason else f"client closed with {close.code}")
        self._disconnect(close.code, close.reason)
        self.close_sent = True
        self._stop_keepalive()
        self._write(self.conn.data_to_send())  # the echo
        self.transport.close()

    def _failed(self) -> None:
        """The core failed the connection (protocol error, too big) or the handshake."""
        conn = self.conn
        self._stop_keepalive()
        self._write(conn.data_to_send())
        if conn.failure is not None:
            self._log_close(f"failed with {conn.failure.code}: {conn.why}")
            self._disconnect(conn.failure.code, str(conn.failure))
        else:
            self.logger.info("%s - WebSocket handshake failed: %s", self._peer(), conn.why)
            self.disconnected = True
        self.handshake_complete = True
        self.close_sent = True
        self.transport.close()

    def _pong(self, data: bytes) -> None:
        if self._ping_payload is None or data != self._ping_payload:
            return  # unsolicited, or answering an older ping
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    # -- keepalive -----------------------------------------------------------

    def _schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_timer = self.loop.call_later(delay, self._send_ping)

    def _send_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self._write(self.conn.send_ping(self._ping_payload))
        if self.ping_timeout is not None:
            self._pong_timer = self.loop.call_later(self.ping_timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.fail(1011, "keepalive ping timeout")
        self._failure_handled = True
        self._failed()

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self._pong_timer = None
        self._ping_payload = None

    # -- the application -------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            if self._denial is not None:
                self._finish_denial()
            elif not self.handshake_complete:
                self._send_500()
            elif not self.close_sent:
                # As uvicorn's own engines do: drop the TCP connection, and the
                # client sees 1006 (no close frame), a sign the server failed.
                self._log_close("the ASGI application raised an exception")
                self._disconnect(1006)
                self.close_sent = True
        else:
            if self._denial is not None:
                self._finish_denial()
            elif not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.transport.is_closing():
            self.transport.close()

    async def receive(self) -> dict[str, Any]:
        """The ASGI ``receive`` callable: the next event for the application."""
        queue = self._queue
        while not queue:
            if self._fail_when_drained:
                self._fail_when_drained = False
                if not self._failure_handled and not self.transport.is_closing():
                    self.conn.receive_data(b"")  # the deferred protocol error fails the connection now
                    self._failure_handled = True
                    self._failed()
                    continue
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = queue.popleft()
        if self.read_paused and not queue and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        """The ASGI ``send`` callable: accept, send, close, or a denial response."""
        await self._writable.wait()
        kind = message["type"]
        if self._app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")
        if self.disconnected and self._denial is None and (self.handshake_complete or self.transport.is_closing()):
            raise ClientDisconnected(f"can't send '{kind}': the WebSocket connection is closed ({self.conn.why or 'closed'})")
        if not self.handshake_complete and self._denial is None:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self.logger.info('%s - "WebSocket %s" 403', self._peer(), self._path())
                self._refuse(Response.from_status(403, b"", _decoded(self.default_headers)))
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError("Invalid HTTP status code '%d' in response." % status)
                self.logger.info('%s - "WebSocket %s" %d', self._peer(), self._path(), status)
                self._denial = (status, list(message.get("headers", [])), [])
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif self._denial is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            self._denial[2].append(message.get("body", b""))
            if not message.get("more_body", False):
                self._finish_denial()
        elif not self.close_sent:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                    if data is None:
                        raise RuntimeError("ASGI message 'websocket.send' needs 'bytes' or 'text'.")
                try:
                    parts = self.conn.send_message_parts(data)
                except InvalidState:
                    raise ClientDisconnected() from None
                if len(parts) == 1:
                    self.transport.write(parts[0])
                else:
                    self.transport.writelines(parts)
            elif kind == "websocket.close":
                code = message.get("code") or 1000
                reason = message.get("reason") or ""
                self._app_close(code, reason)
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    def _accept(self, message: dict[str, Any]) -> None:
        response = self._response
        assert response is not None
        self.logger.info('%s - "WebSocket %s" [accepted]', self._peer(), self._path())
        headers = response.headers
        for name, value in self._default_headers() + list(message.get("headers", [])):
            headers[name.decode("latin-1")] = value.decode("latin-1")
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        if self.transport.is_closing():
            return
        self.handshake_complete = True
        self.conn.send_response(response)
        self.conn.subprotocol = subprotocol or None
        self._write(self.conn.data_to_send())
        if self.ping_interval is not None and self.ping_interval > 0:
            self._schedule_ping()
        if self.read_paused and len(self._queue) == 0:
            self.read_paused = False
            self.transport.resume_reading()
        self.data_received(b"")  # frames the client sent right behind its request

    def _app_close(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self._log_close(f"app closed with {code} {reason!r}" if reason else f"app closed with {code}")
        self._disconnect(code, reason)
        self.close_sent = True
        self._app_closed = True
        self._stop_keepalive()
        try:
            self._write(self.conn.send_close(code, reason))
        except InvalidState:
            raise ClientDisconnected() from None
        if self.read_paused:
            # The client's close frame may be behind messages the app won't read.
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self.close_timer = None
        self.logger.info("%s - WebSocket client didn't answer the close frame in %gs", self._peer(), self.close_timeout)
        self.transport.close()

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    def _refuse(self, response: Response) -> None:
        self._disconnect(1006)
        self._app_closed = True
        self.handshake_complete = True
        self.close_sent = True
        self.conn.send_response(response)
        self._write(self.conn.data_to_send())
        self.transport.close()

    def _finish_denial(self) -> None:
        assert self._denial is not None
        status, raw_headers, chunks = self._denial
        self._denial = None
        body = b"".join(chunks)
        headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers])
        for name, value in self._default_headers():
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        if "Date" not in headers:
            headers["Date"] = email.utils.formatdate(usegmt=True)
        if "Connection" not in headers:
            headers["Connection"] = "close"
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        if body and "Content-Type" not in headers:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        self._refuse(Response(status, _status_phrase(status), headers, body))

    def _send_500(self) -> None:
        if self.handshake_complete or self.transport.is_closing():
            return
        self._refuse(Response.from_status(500, "Internal Server Error", _decoded(self.default_headers)))

    # -- helpers ---------------------------------------------------------------

    def _default_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.default_headers)

    def _write(self, data: bytes) -> None:
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def _peer(self) -> str:
        return "%s:%d" % self.client if self.client else "-"

    def _path(self) -> str:
        request = self.request
        return request.path if request is not None else "-"

    def _log_close(self, why: str) -> None:
        self.logger.info('%s - "WebSocket %s" closed: %s', self._peer(), self._path(), why)


def _decoded(pairs: list[tuple[bytes, bytes]]) -> Headers:
    return Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs])


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
