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

:class:`UvicornProtocol` *is* a :class:`wsio.asyncio.Connection`, the class
wsio's own asyncio server runs each connection with (it extends the hooks of
:class:`wsio.asyncio.connection.BaseConnection`: ``_handle_events``,
``_no_pong``, ``_close_timed_out``): the same write batching
and flow control, read pausing, keepalive, and the core's decisions on when
to end the TCP connection. So a :class:`wsio.Hub` or :func:`wsio.broadcast`
can write to it: :func:`wsio_connection` gives an app the connection under its
ASGI WebSocket.

uvicorn's settings are honoured: ``ws_max_size`` (a larger message fails the
connection with 1009), ``ws_max_queue`` (messages held for an app that doesn't
receive before reading pauses), ``ws_ping_interval`` and ``ws_ping_timeout``
(keepalive; an unanswered ping closes with 1011), ``ws_per_message_deflate``,
``limit_concurrency`` (503 past it, for WebSocket handshakes too),
``root_path``, the server's default headers (``server``, ``date``) and the
lifespan ``state``. On shutdown each open connection is closed with 1012.

The ASGI WebSocket spec 2.4 is implemented, including the
``websocket.http.response`` extension (denial responses, streamed).
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
from typing import Any
from urllib.parse import unquote

from ._server_common import OVER_CAPACITY_RETRY_AFTER
from .asyncio.connection import Connection
from .asyncio.timers import Timer, call_later
from .exceptions import ConnectionClosed, InvalidState
from .options import ConnectionOptions
from .protocol import ServerProtocol, State
from .protocol.deflate import ServerPerMessageDeflateFactory
from .protocol.events import Pong
from .protocol.http11 import Request, Response
from .protocol.datastructures import Headers

try:  # uvicorn's own error type, so that its code (and the app's) recognise it.
    from uvicorn.protocols.utils import ClientDisconnected
except ImportError:  # pragma: no cover - only used under uvicorn

    class ClientDisconnected(OSError):  # type: ignore[no-redef]
        """The client went away; the ASGI message could not be sent."""


__all__ = ["UvicornProtocol", "ClientDisconnected", "wsio_connection"]

#: Bytes of frames a client may send behind its request while the app decides
#: whether to accept; past this, reading pauses until it does.
HANDSHAKE_BUFFER_LIMIT = 1 << 20

#: The key of ``scope["extensions"]`` under which the engine gives the app its connection.
EXTENSION = "wsio"

#: The permessage-deflate offer, one for every connection (as wsio's own servers
#: share theirs): a factory holds only its settings, each connection's
#: compressor and decompressor are made when it negotiates.
_DEFLATE = ServerPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5})

_DISCONNECT = "websocket.disconnect"
_OPEN = State.OPEN
_CONNECTING = State.CONNECTING


def wsio_connection(websocket: Any) -> Connection:
    """The wsio connection under an ASGI WebSocket, for :class:`wsio.Hub` and :func:`wsio.broadcast`.

    ``websocket`` is a Starlette or FastAPI ``WebSocket`` (anything with a
    ``scope``) or an ASGI scope. The connection is the :class:`UvicornProtocol`
    serving it, a :class:`wsio.asyncio.Connection`::

        await websocket.accept()
        await hub.subscribe(wsio_connection(websocket), "room:lobby")

    What the hub writes to it goes straight to the client, with the app's own
    ``send()`` messages, in order. Raises :exc:`LookupError` when the
    connection isn't served by wsio's engine (uvicorn started without
    ``--ws wsio.asgi:UvicornProtocol``, or another server).
    """
    scope = getattr(websocket, "scope", websocket)
    try:
        connection = scope["extensions"][EXTENSION]["connection"]
    except (KeyError, TypeError):
        raise LookupError(
            "this WebSocket isn't served by wsio's engine: run uvicorn with --ws wsio.asgi:UvicornProtocol "
            '(or uvicorn.run(app, ws="wsio.asgi:UvicornProtocol"))'
        ) from None
    return connection  # type: ignore[no-any-return]


def _status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class _Denial:
    """A ``websocket.http.response`` in progress: the status and headers, and whether they are written."""

    __slots__ = ("status", "headers", "head_sent", "chunked")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.head_sent = False
        self.chunked = False


class UvicornProtocol(Connection):
    """The :class:`asyncio.Protocol` that uvicorn runs one WebSocket connection with.

    uvicorn builds it; applications never do (they may reach it with
    :func:`wsio_connection`). The arguments are uvicorn's.

    Args:
        config: the server's ``uvicorn.Config``: the app, ``root_path``,
            ``limit_concurrency`` and the ``ws_*`` settings.
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
        per_message_deflate: the permessage-deflate settings offered when
            uvicorn's ``ws_per_message_deflate`` is on (the default of
            :func:`wsio.serve`: 12-bit windows, memLevel 5, zlib level 6); a
            :class:`~wsio.protocol.deflate.ServerPerMessageDeflateFactory`.
        ping_sent_at: loop time of the last keepalive ping (0.0 before any).
        latency: round-trip time of the last answered ping, in seconds.
    """

    # The defaults of serve() and connect(), from where they are declared.
    compression_threshold: int = ConnectionOptions.compression_threshold
    max_fragments: int | None = ConnectionOptions.max_fragments
    close_timeout: float = 10.0
    per_message_deflate: ServerPerMessageDeflateFactory = _DEFLATE

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        protocol = ServerProtocol(
            extensions=[self.per_message_deflate] if config.ws_per_message_deflate else [],
            server_header=None,  # uvicorn's default headers carry it
            max_size=config.ws_max_size,
            max_fragments=self.max_fragments,
            compression_threshold=self.compression_threshold,
            logger=logging.getLogger("wsio.asgi"),
        )
        super().__init__(
            protocol,
            ping_interval=config.ws_ping_interval or None,  # 0 turns pings off, as None does
            ping_timeout=config.ws_ping_timeout,
            close_timeout=self.close_timeout,
            max_queue=config.ws_max_queue,
            logger=logging.getLogger("uvicorn.error"),
        )
        if _loop is not None:
            self.loop = _loop
        self.config = config
        self.app = config.loaded_app
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}
        self._response: Response | None = None  # the 101 waiting for websocket.accept

        self.handshake_complete = False  # accepted, refused, or given up on
        self._connect_pending = False  # websocket.connect not received by the app yet
        self._app_closed = False  # the app sent websocket.close (or a refusal); no more sends
        #: What receive() answers once the engine decided the end (app close,
        #: shutdown, refusal); otherwise it is read from the core when the time comes.
        self._disconnect: dict[str, Any] | None = None
        self._closed_by = ""  # who ended it, for the log line, when not the client or the core
        self._denial: _Denial | None = None
        self._handshake_paused = False
        self.ping_sent_at = 0.0

    # -- uvicorn's view ------------------------------------------------------

    @property
    def close_timer(self) -> Timer | None:
        """The timer that drops TCP if the client doesn't answer our close frame; ``None`` when not waiting for it."""
        handle = self._close_handle
        if handle is None or self.transport is None or self.transport.is_closing():
            return None
        return handle

    @property
    def ping_timer(self) -> Timer | None:
        """The timer of the next keepalive ping; ``None`` when keepalive is off or over."""
        return self._keepalive_handle

    @property
    def last_ping_rtt(self) -> float:
        """Round-trip time of the last answered keepalive ping (the name uvicorn's engines use)."""
        return self.latency

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The base's: uvicorn's transport is asyncio's or uvloop's for a plain socket, as
        # serve()'s, so large frames go out whole and wake the connection once.
        super().connection_made(transport)
        self.server = _address(self.local_address)
        self.client = _address(self.remote_address)
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"
        self.connections.add(self)

    def data_received(self, data: bytes | memoryview) -> None:
        protocol = self.protocol
        state = protocol.state
        if state is _CONNECTING:
            if protocol.request is None:  # type: ignore[attr-defined]
                # The request, as uvicorn's HTTP protocol rebuilt it.
                events = protocol.receive_data(data)
                if protocol.state is State.CLOSED:
                    response = protocol.response  # type: ignore[attr-defined]
                    status = response.status_code if response is not None else 400
                    self.logger.info('%s - "WebSocket %s" %d: %s', self._peer(), self._path(), status, protocol.handshake_exc)
                    self._refused()
                elif events:
                    request = events[0]
                    assert isinstance(request, Request)  # the handshake's one event
                    self._request(request)
                return
            # Frames the client sent behind its request, while the app decides.
            protocol.receive_data(data)
            if protocol.buffered > HANDSHAKE_BUFFER_LIMIT and not self._handshake_paused:
                self._handshake_paused = True
                self.transport.pause_reading()
            return
        denial = self._denial
        if denial is not None and denial.head_sent:
            return  # a client sending while its refusal streams: nothing to do with it
        super().data_received(data)

    def eof_received(self) -> bool | None:
        denial = self._denial
        if denial is not None and denial.head_sent:
            return True  # the client's half-close: finish the response, then close
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        super().connection_lost(exc)
        response = self.protocol.response  # type: ignore[attr-defined]
        if response is not None and response.status_code == 101:
            self._log_close(self._close_cause())

    def shutdown(self) -> None:
        """Called by uvicorn on server shutdown: close with 1012 (or 500 before accepting)."""
        denial = self._denial
        if denial is not None and denial.head_sent:
            self._end_denial(complete=False)  # cut short: the client sees it is incomplete
            return
        if not self.handshake_complete:
            self._denial = None
            self._send_500()
            return
        if self.protocol.state is _OPEN:
            self._end_by("server shutting down", 1012)
            self._write(self.protocol.send_close(1012))
        self._close_transport()

    # -- connection events -----------------------------------------------------

    def _request(self, request: Request) -> None:
        protocol: ServerProtocol = self.protocol  # type: ignore[assignment]
        self._response = response = protocol.accept(request)
        if response.status_code != 101:
            # Not a valid WebSocket handshake: the core's error response, and done.
            self.logger.info(
                '%s - "WebSocket %s" %d: %s', self._peer(), request.path, response.status_code, protocol.handshake_exc
            )
            protocol.send_response(response)
            self._refused()
            return
        limit = self.config.limit_concurrency
        # uvicorn's HTTP protocols check limit_concurrency for plain requests only;
        # a WebSocket is a connection too. This one is in self.connections already.
        if limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            self.logger.info(
                '%s - "WebSocket %s" 503: %d connections open, limit_concurrency=%d',
                self._peer(), request.path, len(self.connections) - 1, limit,
            )  # fmt: skip
            headers = _decoded(self.default_headers)
            headers["Retry-After"] = str(OVER_CAPACITY_RETRY_AFTER)
            protocol.send_response(Response.from_status(503, "Too many connections; try again later.\n", headers))
            self._refused()
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
            "extensions": {"websocket.http.response": {}, EXTENSION: {"connection": self}},
        }
        self._connect_pending = True
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _handle_events(self, events: list[Any]) -> None:
        if self._app_closed:
            # The app closed: it won't read what the client still sends. Keep
            # reading (the client's close frame is on its way) and drop it.
            events = [event for event in events if type(event) is Pong]
        super()._handle_events(events)

    def _keepalive_ping_sent(self) -> None:
        self.ping_sent_at = self.loop.time()

    def _no_pong(self) -> None:
        # The close reason uvicorn's engines send, which its tests check; the
        # log line (see _close_cause) says what the timeout was.
        self._why = f"no pong within ping_timeout={self.ping_timeout}s"
        self.fail(1011, "keepalive ping timeout")

    def _close_timed_out(self) -> None:
        if not self._why and self.protocol.close_rcvd is None:
            self._why = f"no close frame within close_timeout={self.close_timeout}s"
        # abort(): close() waits for the write buffer to drain, forever if the
        # client doesn't read. (uvicorn's tests drive this class over a test
        # double that only has close().)
        abort = getattr(self.transport, "abort", None)
        (abort or self.transport.close)()

    # -- the application -------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.asgi_receive, self.asgi_send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            if self._denial is not None:
                self._end_denial(complete=False)
            elif not self.handshake_complete:
                self._send_500()
            elif self.protocol.state is _OPEN:
                # As uvicorn's own engines do: drop the TCP connection, and the
                # client sees 1006 (no close frame), a sign the server failed.
                self._end_by("the ASGI application raised an exception", 1006)
                self._close_transport()
        else:
            if self._denial is not None:
                self._end_denial(complete=True)
            elif not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            else:
                if result is not None:
                    self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                if self.protocol.state is _OPEN:
                    # Returned without closing: the TCP connection ends, as with uvicorn's engines.
                    self._end_by("the ASGI application returned without closing", 1006)
                    self._close_transport()

    async def asgi_receive(self) -> dict[str, Any]:
        """The ASGI ``receive`` callable: the next event for the application."""
        if self._connect_pending:
            self._connect_pending = False
            return {"type": "websocket.connect"}
        while True:
            if self._messages or self._finished or self.protocol.state is State.CLOSED:
                try:
                    data = self.recv_nowait()
                except ConnectionClosed:  # closed, and nothing left
                    return self._disconnect_message()
                if type(data) is str:
                    return {"type": "websocket.receive", "text": data}
                return {"type": "websocket.receive", "bytes": data}
            # Nothing queued and still open (where recv_nowait() raises QueueEmpty): wait
            # here, without raising an exception for each message of an app that answers
            # each one, or keeping one and its traceback alive while the connection is idle.
            if self._disconnect is not None:
                return self._disconnect
            waiter = self._recv_waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None

    async def asgi_send(self, message: dict[str, Any]) -> None:
        """The ASGI ``send`` callable: accept, send, close, or a denial response."""
        if self._write_paused:
            await self._writable()
        kind = message["type"]
        if self._app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")
        denial = self._denial
        if denial is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            if self.transport.is_closing():
                raise ClientDisconnected(f"can't send '{kind}': the client closed the connection")
            self._denial_body(denial, message.get("body", b""), message.get("more_body", False))
        elif not self.handshake_complete:
            if self._finished or self.transport.is_closing():
                raise ClientDisconnected(f"can't send '{kind}': the client closed the connection ({self._close_cause()})")
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
                self._denial = _Denial(status, list(message.get("headers", [])))
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif self.protocol.state is not _OPEN:
            raise ClientDisconnected(f"can't send '{kind}': the WebSocket connection is closed ({self._close_cause()})")
        elif kind == "websocket.send":
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    raise RuntimeError("ASGI message 'websocket.send' needs 'bytes' or 'text'.")
            try:
                self._send_message(data, None)
            except InvalidState:
                raise ClientDisconnected(f"can't send: the WebSocket connection is closed ({self._close_cause()})") from None
        elif kind == "websocket.close":
            self._app_close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")

    async def _writable(self) -> None:
        """Wait while the transport's buffer is over the high-water mark (or until the connection is lost)."""
        while self._write_paused and not self._finished:
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)

    def _accept(self, message: dict[str, Any]) -> None:
        response = self._response
        assert response is not None
        self.logger.info('%s - "WebSocket %s" [accepted]', self._peer(), self._path())
        headers = response.headers
        for name, value in list(self.default_headers) + list(message.get("headers", [])):
            headers[name.decode("latin-1")] = value.decode("latin-1")
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        protocol = self.protocol
        self.handshake_complete = True
        protocol.send_response(response)  # type: ignore[attr-defined]
        protocol.subprotocol = subprotocol or None
        self._write(protocol.data_to_send())
        self.start_keepalive()
        if self._handshake_paused:
            self._handshake_paused = False
            if not self._reading_paused and not self._reading_paused_for_writes:
                self.transport.resume_reading()
        self.data_received(b"")  # frames the client sent right behind its request

    def _app_close(self, code: int, reason: str) -> None:
        """websocket.close after accepting: send the close frame; the client's answer ends TCP."""
        self._write(self.protocol.send_close(code, reason))  # ValueError for a code that can't be sent
        self._end_by(f"app closed with {code} {reason!r}" if reason else f"app closed with {code}", code, reason)
        self._app_closed = True
        if self.close_timeout is not None:
            self._close_handle = call_later(self.loop, self.close_timeout, self._close_timed_out)
        if self._reading_paused:
            # The client's close frame may be behind messages the app won't read.
            self._reading_paused = False
            if not self._reading_paused_for_writes:
                self.transport.resume_reading()

    def _end_by(self, why: str, code: int, reason: str | None = None) -> None:
        """The engine ends the connection: say why in the log, and what the app receives."""
        if not self._closed_by:
            self._closed_by = why
        if self._disconnect is None:
            self._disconnect = {"type": _DISCONNECT, "code": code}
            if reason is not None:
                self._disconnect["reason"] = reason
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _disconnect_message(self) -> dict[str, Any]:
        """``websocket.disconnect`` once the connection is closed: the code of the close frame
        received, of the failure, or 1006 for a connection lost without one."""
        message = self._disconnect
        if message is None:
            protocol = self.protocol
            if protocol.failure is not None:
                message = {"type": _DISCONNECT, "code": protocol.failure.code, "reason": str(protocol.failure)}
            elif protocol.close_rcvd is not None:
                message = {"type": _DISCONNECT, "code": protocol.close_rcvd.code, "reason": protocol.close_rcvd.reason}
            else:
                message = {"type": _DISCONNECT, "code": 1006}
            self._disconnect = message
        return message

    # -- refusals ----------------------------------------------------------------

    def _refused(self) -> None:
        """The core holds a refusal (its own, or one made here): write it and end TCP."""
        self.handshake_complete = True
        self._app_closed = True
        self._end_by("", 1006)
        self._after_closed()

    def _refuse(self, response: Response) -> None:
        if not self.transport.is_closing():
            self.protocol.send_response(response)  # type: ignore[attr-defined]
        self._refused()

    def _send_500(self) -> None:
        if self.handshake_complete or self.transport.is_closing():
            return
        self._refuse(Response.from_status(500, "Internal Server Error", _decoded(self.default_headers)))

    def _denial_headers(self, denial: _Denial, body: bytes | None) -> Headers:
        """The denial's headers with the server's defaults; ``body`` is the whole body, ``None`` if it streams."""
        headers = _decoded(denial.headers)
        for name, value in self.default_headers:
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        if "Date" not in headers:
            headers["Date"] = email.utils.formatdate(usegmt=True)
        if "Connection" not in headers:
            headers["Connection"] = "close"
        if body is not None:
            if "Content-Length" not in headers:
                headers["Content-Length"] = str(len(body))
        elif "Content-Length" not in headers and _may_have_body(denial.status):
            # The length isn't known: chunks (unless the app framed it as chunked already).
            if "Transfer-Encoding" not in headers:
                headers["Transfer-Encoding"] = "chunked"
            denial.chunked = headers["Transfer-Encoding"].lower().endswith("chunked")
        if body != b"" and "Content-Type" not in headers:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return headers

    def _denial_body(self, denial: _Denial, body: bytes, more: bool) -> None:
        if not denial.head_sent:
            if not more:
                # The whole body in one message: one write, with its Content-Length.
                self._denial = None
                headers = self._denial_headers(denial, body)
                self._refuse(Response(denial.status, _status_phrase(denial.status), headers, body))
                return
            # More to come: the head now, then each part as the app sends it.
            headers = self._denial_headers(denial, None)
            denial.head_sent = True
            self.protocol.send_response(Response(denial.status, _status_phrase(denial.status), headers))  # type: ignore[attr-defined]
            self._write(self.protocol.data_to_send())
        if body and _may_have_body(denial.status):
            self._write(b"%x\r\n%b\r\n" % (len(body), body) if denial.chunked else body)
        if not more:
            self._end_denial(complete=True)

    def _end_denial(self, complete: bool) -> None:
        """The app finished its denial response (``complete``), or failed in the middle of it."""
        denial = self._denial
        assert denial is not None
        if not denial.head_sent:
            # Only the start was sent: the response it announced, without a body.
            self._denial_body(denial, b"", False)
            return
        self._denial = None
        if complete and denial.chunked:
            self._write(b"0\r\n\r\n")
        # Without the last chunk (or short of Content-Length), the client sees the body is cut.
        self._refused()

    # -- helpers ---------------------------------------------------------------

    def _close_transport(self) -> None:
        """End TCP now (after what is buffered), and drop it after ``close_timeout`` if the client doesn't read."""
        transport = self.transport
        if not transport.is_closing():
            self._flush_backlog()
            self._flush_held()
            transport.close()
        if self._close_handle is None and self.close_timeout is not None:
            self._close_handle = call_later(self.loop, self.close_timeout, self._close_timed_out)

    def _path(self) -> str:
        request = self.protocol.request  # type: ignore[attr-defined]
        return request.path if request is not None else "-"

    def _peer(self) -> str:
        client = self.client
        return "%s:%d" % client if client else "-"

    def _close_cause(self) -> str:
        """Why the connection closed, in words, for the log and errors."""
        protocol = self.protocol
        why = self._why
        if self._closed_by:
            cause = self._closed_by
        elif protocol.failure is not None:
            cause = f"failed with {protocol.failure.code}: {protocol.failure}"
            if why == str(protocol.failure):
                why = ""
        elif protocol.close_rcvd is not None:
            close = protocol.close_rcvd
            cause = f"client closed with {close.code} {close.reason!r}" if close.reason else f"client closed with {close.code}"
        else:
            return why or protocol.why or "connection lost"
        return f"{cause} ({why})" if why else cause

    def _log_close(self, why: str) -> None:
        self.logger.info('%s - "WebSocket %s" closed: %s', self._peer(), self._path(), why)


def _may_have_body(status: int) -> bool:
    # RFC 9110 6.4.1: 1xx, 204 and 304 responses have no body.
    return status >= 200 and status != 204 and status != 304


def _decoded(pairs: list[tuple[bytes, bytes]]) -> Headers:
    return Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs])


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def __getattr__(name: str) -> Any:
    """``UvicornWorker``: gunicorn's uvicorn worker with wsio as the WebSocket engine, made on first use.

    ::

        gunicorn app:app -k wsio.asgi.UvicornWorker --workers 4

    It is the ``UvicornWorker`` of the ``uvicorn-worker`` package (or, without
    it, uvicorn's own older ``uvicorn.workers``) with ``ws`` set to
    :class:`UvicornProtocol`; every other setting is gunicorn's, as there.
    Made on first use so that importing this module needs neither gunicorn
    nor uvicorn-worker: ``pip install wsio[gunicorn]`` installs both.
    """
    if name != "UvicornWorker":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from uvicorn_worker import UvicornWorker as Base  # type: ignore[import-untyped,unused-ignore]  # no py.typed
    except ImportError:
        try:
            import warnings

            with warnings.catch_warnings():  # deprecated in favour of uvicorn-worker, still shipped by uvicorn
                warnings.simplefilter("ignore", DeprecationWarning)
                from uvicorn.workers import UvicornWorker as Base
        except ImportError:
            raise ImportError("wsio.asgi.UvicornWorker needs gunicorn and uvicorn-worker: pip install 'wsio[gunicorn]'") from None

    class UvicornWorker(Base):  # type: ignore[misc]  # Base is Any to mypy
        """gunicorn's uvicorn worker, with wsio's engine for WebSocket connections."""

        CONFIG_KWARGS = {**Base.CONFIG_KWARGS, "ws": "wsio.asgi:UvicornProtocol"}

    UvicornWorker.__module__ = __name__
    UvicornWorker.__qualname__ = "UvicornWorker"
    globals()["UvicornWorker"] = UvicornWorker  # made once: later lookups find it without this function
    return UvicornWorker
