"""The sans-I/O core of wsio: bytes in, events out; calls in, bytes out.

No sockets, no asyncio, no threads, no clock. The asyncio, thread and callback
APIs all sit on :class:`ServerProtocol` and :class:`ClientProtocol`.
"""

from .machine import ClientProtocol, Protocol, ServerProtocol, Side, State
from .events import Event, Fragment, Ping, Pong
from .frames import Close, CloseCode, Opcode

#: The name of :class:`Protocol` in wsio 0.1, kept so that existing imports work.
Connection = Protocol

__all__ = [
    "Protocol",
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
