"""What every wsio connection shows the application, whatever its I/O layer.

The asyncio and thread connections both inherit :class:`ConnectionAPI`: the
attributes the FAQs use (``path``, ``request_headers``, ``remote_address``,
``close_code``, ...) and the one rule that turns the core's closing state into
``ConnectionClosedOK`` or ``ConnectionClosedError``. Each layer only says
whether its transport is closed (:attr:`closed`).
"""

from __future__ import annotations

import codecs
import collections
import uuid
from typing import TYPE_CHECKING, Any, Callable

from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .protocol.machine import Protocol, State

if TYPE_CHECKING:  # pragma: no cover
    from .protocol.http11 import Request, Response
    from .protocol.datastructures import Headers

__all__ = ["ConnectionAPI", "piece_converter"]

#: Closing both ways with one of these counts as a normal closure (1005: no code given).
OK_CLOSE_CODES = (1000, 1001, 1005)


def piece_converter(text: bool, decode: bool) -> Callable[[Any, bool], Any] | None:
    """What converts each piece of a text (``text``) or binary message for
    ``recv_streaming(decode)``, called as ``convert(piece, last)``; ``None``:
    the pieces are already what ``decode`` asks for."""
    if decode:
        return None if text else codecs.getincrementaldecoder("utf-8")().decode
    return _encode_piece if text else None


def _encode_piece(piece: str, last: bool) -> bytes:
    return piece.encode()


class ConnectionAPI:
    """Attributes shared by every connection; needs ``protocol``, ``remote_address``,
    ``_id``, ``_queue``, ``_messages``, ``_why`` and ``_lost_exc`` on the instance, and :attr:`closed`."""

    if not TYPE_CHECKING:  # hidden from type checkers: the attributes are the subclasses' slots
        __slots__ = ()

    protocol: Protocol
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    max_queue: int | None
    write_limit: int
    latency: float
    remote_address: Any
    _id: uuid.UUID | None
    _queue: collections.deque[Any]  # messages and Fragments for recv(), in order
    _messages: int  # complete messages in _queue
    _why: str
    _lost_exc: BaseException | None

    def _init_settings(
        self,
        protocol: Protocol,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float | None,
        max_queue: int | None,
        write_limit: int,
    ) -> None:
        """Keep what every connection is built with (each layer's ``__init__`` documents it)."""
        self._take_protocol(protocol)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        self.write_limit = write_limit
        #: Round-trip time of the last ping that got its pong, in seconds.
        self.latency = 0.0
        self._id = None

    def _take_protocol(self, protocol: Protocol) -> None:
        """Run over ``protocol``: in ``__init__``, and in each copy a server makes of a prototype connection."""
        self.protocol = protocol
        # The application takes messages on its own schedule (a task, a thread):
        # a protocol error behind them waits until it has (see failure_pending).
        protocol.defer_failures = True

    def _drop_rest_of_message(self) -> None:
        """Take the queued pieces of a message being streamed that can't be finished.

        Each layer calls it where its queue is safe to touch (the event loop's
        thread; under the thread layer's lock).
        """
        queue = self._queue
        while queue:
            fragment = queue.popleft()
            if fragment.last:
                self._messages -= 1
                break

    @property
    def closed(self) -> bool:  # pragma: no cover - each layer defines it
        """Whether the TCP connection is closed."""
        raise NotImplementedError

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of the connection, for logs."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def state(self) -> State:
        """``State.CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED``."""
        state = self.protocol.state
        if state is State.CLOSED and not self.closed:
            return State.CLOSING  # close frames exchanged; TCP not closed yet
        return state

    @property
    def open(self) -> bool:
        """Whether the connection is open (``state`` is ``OPEN``), as in the legacy websockets API."""
        return self.protocol.state is State.OPEN

    # [attr-defined]: the core of either role (ServerProtocol, ClientProtocol) has
    # request and response; the Connection they share doesn't.
    @property
    def request(self) -> Request | None:
        """The opening handshake request (a :class:`~wsio.Request`)."""
        return self.protocol.request  # type: ignore[attr-defined, no-any-return]

    @property
    def response(self) -> Response | None:
        """The opening handshake response (a :class:`~wsio.Response`)."""
        return self.protocol.response  # type: ignore[attr-defined, no-any-return]

    @property
    def path(self) -> str:
        """The request path, with its query string."""
        request = self.request
        return request.path if request is not None else ""

    @property
    def request_headers(self) -> Headers | None:
        """The headers of the opening handshake request (a :class:`~wsio.Headers`)."""
        request = self.request
        return request.headers if request is not None else None

    @property
    def response_headers(self) -> Headers | None:
        """The headers of the opening handshake response (a :class:`~wsio.Headers`)."""
        response = self.response
        return response.headers if response is not None else None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol negotiated in the opening handshake, or ``None``."""
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 without one; ``None`` while the connection is open."""
        if not self.closed and self.protocol.state is not State.CLOSED:
            return None
        rcvd = self.protocol.close_rcvd
        return rcvd.code if rcvd is not None else 1006

    @property
    def close_reason(self) -> str | None:
        """The close reason received, ``""`` without one; ``None`` while the connection is open."""
        if self.close_code is None:
            return None
        rcvd = self.protocol.close_rcvd
        return rcvd.reason if rcvd is not None else ""

    @property
    def close_exc(self) -> ConnectionClosed:
        """The :exc:`~wsio.ConnectionClosed` that says how the connection closed, once it is closed.

        The exception that ``recv()`` and ``send()`` raise then, with the
        close frames sent and received (``ConnectionClosedOK`` for a normal
        closure, ``ConnectionClosedError`` otherwise). Before the connection
        is closed it raises :exc:`AssertionError`, as websockets' does: the
        close frames aren't known yet.
        """
        if self.protocol.state is not State.CLOSED and not self.closed:
            raise AssertionError("connection isn't closed yet")
        return self._closed_exc()

    def _peer(self) -> str:
        address = self.remote_address
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address or "?")

    def _closed_ok(self) -> bool:
        """Whether the close frames both ways say 1000 or 1001: then :meth:`_closed_exc` is a ConnectionClosedOK."""
        protocol = self.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        return rcvd is not None and sent is not None and rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES

    def _closed_exc(self) -> ConnectionClosed:
        """The exception that says how the connection closed."""
        protocol = self.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        why = self._why or protocol.why
        if protocol.failure is not None and not why:
            why = str(protocol.failure)
        if self._closed_ok():
            exc: ConnectionClosed = ConnectionClosedOK(rcvd, sent, protocol.close_rcvd_then_sent, why)
        else:
            exc = ConnectionClosedError(rcvd, sent, protocol.close_rcvd_then_sent, why)
        if protocol.failure is not None:
            exc.__cause__ = protocol.failure
        elif self._lost_exc is not None:
            exc.__cause__ = self._lost_exc
        return exc
