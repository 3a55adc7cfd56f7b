"""What :meth:`Connection.receive_data` returns, in a list, in the order it happened.

- ``str``: a whole text message; ``bytes``: a whole binary message. Messages are
  the common case, so they are delivered as themselves, with no wrapper.
- :class:`Fragment`: a piece of a message that arrived in several frames or in
  several reads; the pieces of one message come in order and the last one has
  ``last=True``. Text pieces are ``str`` (already validated UTF-8), binary
  pieces ``bytes``. Joining them gives the message.
- :class:`Ping`, :class:`Pong`: control frames (pongs to pings are already queued).
- :class:`~wsio.protocol.frames.Close`: the peer's close frame.
- :class:`~wsio.protocol.http11.Request` (server) or
  :class:`~wsio.protocol.http11.Response` (client): the opening handshake.

:data:`Event` is their union: ``receive_data`` returns a ``list[Event]``.
"""

from __future__ import annotations

from typing import TypeAlias, Union

from .frames import Close
from .http11 import Request, Response

__all__ = ["Event", "Fragment", "Ping", "Pong"]


class Fragment:
    """A piece of a message: ``data`` is ``str`` for text, ``bytes`` for binary."""

    __slots__ = ("data", "last")

    def __init__(self, data: str | bytes, last: bool) -> None:
        self.data = data
        self.last = last

    def __repr__(self) -> str:
        return f"Fragment({self.data!r}, last={self.last})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fragment) and (self.data, self.last) == (other.data, other.last)


class _ControlFrame:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.data == other.data


class Ping(_ControlFrame):
    """A ping frame received; a pong with the same payload is already queued."""

    __slots__ = ()


class Pong(_ControlFrame):
    """A pong frame received."""

    __slots__ = ()


#: What :meth:`~wsio.protocol.machine.Connection.receive_data` and
#: :meth:`~wsio.protocol.machine.Connection.receive_eof` return a list of:
#: a whole text (``str``) or binary (``bytes``) message, a :class:`Fragment`
#: of one, a :class:`Ping` or :class:`Pong`, the peer's
#: :class:`~wsio.protocol.frames.Close`, or the opening handshake's
#: :class:`~wsio.protocol.http11.Request` (server side) or
#: :class:`~wsio.protocol.http11.Response` (client side).
Event: TypeAlias = Union[str, bytes, Fragment, Ping, Pong, Close, Request, Response]
