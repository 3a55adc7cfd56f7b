"""How a :class:`~wsio.pubsub.Hub` talks to what carries its messages between processes.

The hub keeps the subscriptions and writes to the connections; a backend only
relays. The hub gives its backend a :class:`Sink` (:meth:`Backend.bind`), tells
it which topics and prefixes this process has subscribers for
(:meth:`Backend.subscribe` when the first one comes, :meth:`Backend.unsubscribe`
when the last one leaves), and hands it every message published here
(:meth:`Backend.publish`, after delivering it locally). What the backend
receives from other processes goes back through :meth:`Sink.deliver`.

:class:`MemoryBackend` relays nothing (one process); the Redis backend lives in
``wsio/pubsub/redis_link.py``, and is loaded only when a hub is given a Redis URL.
"""

from __future__ import annotations

import abc
import logging
from typing import Protocol

__all__ = ["Backend", "MemoryBackend", "Sink"]


class Sink(Protocol):
    """What a hub offers its backend: where messages from elsewhere go, and what this process wants."""

    @property
    def logger(self) -> logging.Logger:
        """The hub's logger."""

    def deliver(self, topic: str, text: bool, payload: bytes) -> int:
        """Send a message that came from another process to this process's subscribers of ``topic``.

        ``text``: ``payload`` is UTF-8 (a text message), else binary. Returns
        how many connections it was written to. A text payload that isn't
        valid UTF-8 is logged and dropped.
        """

    def has_subscribers(self, is_prefix: bool, name: str) -> bool:
        """Whether this process has subscribers to the prefix (``is_prefix``) or the topic ``name``."""

    def names(self) -> list[tuple[bool, str]]:
        """Every topic and prefix that this process has subscribers for, as ``(is_prefix, name)``."""


class Backend(abc.ABC):
    """What carries a hub's messages to the hubs of other processes.

    A backend serves one hub. Its methods are called from the hub's event
    loop. A subscription is ``(is_prefix, name)``: the topic ``"a*"`` and the
    prefix ``"a"`` are two different things.
    """

    sink: Sink

    def bind(self, sink: Sink) -> None:
        """Called once, by the hub that takes this backend, before any other method."""
        if getattr(self, "sink", None) is not None:
            raise RuntimeError(f"{self!r} already serves a hub")
        self.sink = sink

    @property
    def where(self) -> str:
        """Where messages go, for ``repr(hub)`` and log lines; never shows a password."""
        return type(self).__name__

    @property
    @abc.abstractmethod
    def up(self) -> bool:
        """True when what is published here reaches the other processes (:attr:`wsio.Hub.connected`)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start if needed (without failing when the other side is away), and wait for a first attempt."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop relaying and let go of every resource."""

    @abc.abstractmethod
    async def subscribe(self, is_prefix: bool, name: str) -> None:
        """This process has a subscriber to the prefix or the topic ``name``: receive its messages.

        Called at every subscription, not only the first for ``name``. Returns
        once messages published elsewhere reach this process, or once waiting
        for that is pointless (disconnected, or too long): never raises for an
        unreachable broker.
        """

    @abc.abstractmethod
    def unsubscribe(self, is_prefix: bool, name: str) -> None:
        """The last subscriber to the prefix or topic ``name`` left this process (maybe; ask :meth:`Sink.has_subscribers`).

        Not a coroutine: the hub calls it when a connection closes.
        """

    @abc.abstractmethod
    async def publish(self, topic: str, text: bool, payload: bytes | bytearray | memoryview) -> None:
        """Send a message, already delivered in this process, to the other processes.

        Raises :exc:`~wsio.pubsub.HubUnavailable` when they can't get it.
        """


class MemoryBackend(Backend):
    """One process: nothing to relay, always up."""

    @property
    def where(self) -> str:
        return "memory"

    @property
    def up(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def subscribe(self, is_prefix: bool, name: str) -> None:
        pass

    def unsubscribe(self, is_prefix: bool, name: str) -> None:
        pass

    async def publish(self, topic: str, text: bool, payload: bytes | bytearray | memoryview) -> None:
        pass
