"""The sans-I/O core of wsio: bytes in, events out; calls in, bytes out.

No sockets, no asyncio, no threads, no clock. The asyncio, thread and callback
APIs all sit on :class:`ServerProtocol` and :class:`ClientProtocol`.
"""

from .connection import ClientProtocol, Connection, ServerProtocol, Side, State
from .events import Event, Fragment, Ping, Pong
from .frames import Close, CloseCode, Opcode

__all__ = [
    "Connection",
    "ServerProtocol",
    "ClientProtocol",
    "Side",
    "State",
    "Event",
    "Fragment",
    "Ping",
    "Pong",
    "Close",
    "CloseCode",
    "Opcode",
]
