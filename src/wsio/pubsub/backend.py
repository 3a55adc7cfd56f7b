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

**History** (when the hub is given ``history_size``): the hub calls
:meth:`Backend.keep_history` once, then publishes with :meth:`Backend.append`
instead of :meth:`Backend.publish`, and reads with :meth:`Backend.history`.
The backend gives each message an offset in its topic (1, 2, 3... without
gaps) within an epoch (a random id that changes whenever the topic's offsets
start over: its history was lost), and delivers it everywhere, *this process
included*, through :meth:`Sink.deliver` with its :class:`Position`: so that
every process sees a topic's messages in the order of their offsets.

**Presence**: who is subscribed to a topic, in every process. The hub adds
its connections' entries (:meth:`Backend.presence_add`; again every third of
``ttl``, so that the entries of a process that died go away), removes them
when they leave (:meth:`Backend.presence_remove`), and reads them
(:meth:`Backend.presence`). Each entry added, changed or removed (expired
included, when the backend finds it so) is announced once to every process
subscribed to the topic, through :meth:`Sink.presence_event`.
"""

from __future__ import annotations

import abc
import collections
import json
import logging
import os
import time
from typing import Collection, Mapping, NamedTuple, Protocol

__all__ = ["Backend", "History", "MemoryBackend", "Position", "Publication", "Sink", "new_epoch"]


class Position(NamedTuple):
    """Where a message stands in its topic's history: its offset, in an epoch."""

    offset: int
    epoch: str


class Publication(NamedTuple):
    """A message read from a topic's history."""

    offset: int
    text: bool
    payload: bytes


class History(NamedTuple):
    """What :meth:`Backend.history` read from a topic's history.

    ``epoch`` and ``offset`` are the topic's current epoch and last offset (0:
    nothing published in this epoch yet); ``publications`` are the messages
    after the offset asked for, oldest first, without those older than the
    history's age bound, at most as many as asked for.
    """

    epoch: str
    offset: int
    publications: list[Publication]


def new_epoch() -> str:
    """A fresh epoch: 16 random hexadecimal digits."""
    return os.urandom(8).hex()


class Sink(Protocol):
    """What a hub offers its backend: where messages from elsewhere go, and what this process wants."""

    @property
    def logger(self) -> logging.Logger:
        """The hub's logger."""

    def deliver(self, topic: str, text: bool, payload: bytes, position: Position | None = None) -> int:
        """Send a message that came from another process to this process's subscribers of ``topic``.

        ``text``: ``payload`` is UTF-8 (a text message), else binary. Returns
        how many connections it was written to. A text payload that isn't
        valid UTF-8 is logged and dropped. ``position``: where the message
        stands in the topic's history (with history, for every message,
        those published in this process included).
        """

    def presence_event(self, topic: str, event: bytes) -> None:
        """A connection joined or left the topic's presence, in any process (this one included).

        ``event``: a JSON object, ``{"type": "join" or "leave", "client": id,
        "info": ..., "count": n}``, ``info`` being the entry's JSON and
        ``count`` how many entries the topic's presence holds after it.
        """

    def reconnected(self) -> None:
        """The backend is connected (again): the hub writes its presence entries, and fills from history what it may have missed."""

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
    #: Whether :meth:`subscribe` takes prefixes (``is_prefix``); when false, ``Hub.subscribe_prefix()`` refuses them.
    prefixes = True

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

    # -- history: only for a hub given history_size ----------------------------------------

    def keep_history(self, size: int, ttl: float, meta_ttl: float) -> None:
        """Keep the last ``size`` messages of each topic for ``ttl`` seconds, and its epoch and offset ``meta_ttl`` seconds.

        Called once, after :meth:`bind`, by a hub given ``history_size``. A
        backend that can't keep history doesn't override this.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no history")

    async def append(self, topic: str, text: bool, payload: bytes) -> tuple[Position, int]:
        """Add a message to the topic's history, and deliver it everywhere, this process included.

        This process's subscribers get it through :meth:`Sink.deliver`, with
        its position, in the order of offsets. Returns its position and how
        many connections of this process it reached, once they have it (or
        once waiting for that is pointless). Raises
        :exc:`~wsio.pubsub.HubUnavailable` when the message couldn't be added.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no history")

    async def history(self, topic: str, since: int | None, limit: int) -> History:
        """The topic's epoch and last offset, and (unless ``since`` is ``None``) up to ``limit`` messages after ``since``.

        Creates the topic's epoch if it has none, so that a subscriber who
        came before the first message can recover from offset 0. Raises
        :exc:`~wsio.pubsub.HubUnavailable` when the history can't be read.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no history")

    # -- presence ------------------------------------------------------------------------------

    async def presence_add(self, topic: str, entries: Mapping[str, str], ttl: float) -> None:
        """Add or refresh these entries (client id -> JSON) of the topic's presence, for ``ttl`` seconds.

        Raises :exc:`~wsio.pubsub.HubUnavailable` when they couldn't be written.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    def presence_remove(self, topic: str, client_ids: Collection[str]) -> None:
        """Remove these entries of the topic's presence (in the background if it takes I/O; never raises)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    async def presence(self, topic: str) -> dict[str, str]:
        """Every entry of the topic's presence (client id -> JSON), without expired ones.

        Raises :exc:`~wsio.pubsub.HubUnavailable` when it can't be read.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")


class _Topic:
    """A topic's history in memory: its epoch, last offset, and last messages with the time they came."""

    __slots__ = ("epoch", "offset", "entries", "touched")

    def __init__(self, now: float) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.entries: collections.deque[tuple[int, float, bool, bytes]] = collections.deque()
        self.touched = now


class MemoryBackend(Backend):
    """One process: nothing to relay, always up; history in this process's memory.

    The epoch of a topic is drawn when the topic is first used: it changes when
    the process restarts, and when a topic left alone for ``meta_ttl`` is
    forgotten.
    """

    _size = 0
    _ttl = 0.0
    _meta_ttl = 0.0

    def __init__(self) -> None:
        self._presence: dict[str, dict[str, str]] = {}

    def keep_history(self, size: int, ttl: float, meta_ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._meta_ttl = meta_ttl
        # Least recently used first, so that forgetting idle topics is cheap.
        self._topics: collections.OrderedDict[str, _Topic] = collections.OrderedDict()

    def _topic(self, name: str) -> _Topic:
        now = time.monotonic()
        topics = self._topics
        # Forget topics untouched for meta_ttl (oldest first; stop at the first recent one).
        while topics:
            oldest = next(iter(topics.values()))
            if now - oldest.touched <= self._meta_ttl:
                break
            topics.popitem(last=False)
        topic = topics.get(name)
        if topic is None:
            topic = topics[name] = _Topic(now)
        else:
            topic.touched = now
            topics.move_to_end(name)
        entries = topic.entries
        while entries and (len(entries) > self._size or now - entries[0][1] > self._ttl):
            entries.popleft()
        return topic

    async def append(self, topic: str, text: bool, payload: bytes) -> tuple[Position, int]:
        entry = self._topic(topic)
        entry.offset += 1
        entry.entries.append((entry.offset, entry.touched, text, payload))
        if len(entry.entries) > self._size:
            entry.entries.popleft()
        position = Position(entry.offset, entry.epoch)
        return position, self.sink.deliver(topic, text, payload, position)

    async def history(self, topic: str, since: int | None, limit: int) -> History:
        entry = self._topic(topic)
        publications: list[Publication] = []
        if since is not None:
            for offset, _, text, payload in entry.entries:
                if offset > since:
                    publications.append(Publication(offset, text, payload))
                    if len(publications) >= limit:
                        break
        return History(entry.epoch, entry.offset, publications)

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

    # One process: a connection's entry lives as long as its subscription (the hub removes it).

    async def presence_add(self, topic: str, entries: Mapping[str, str], ttl: float) -> None:
        present = self._presence.setdefault(topic, {})
        for client_id, info in entries.items():
            if present.get(client_id) != info:
                present[client_id] = info
                self._announce(topic, "join", client_id, info, len(present))

    def presence_remove(self, topic: str, client_ids: Collection[str]) -> None:
        present = self._presence.get(topic)
        if present is None:
            return
        for client_id in client_ids:
            info = present.pop(client_id, None)
            if info is not None:
                self._announce(topic, "leave", client_id, info, len(present))
        if not present:
            del self._presence[topic]

    def _announce(self, topic: str, kind: str, client_id: str, info: str, count: int) -> None:
        event = f'{{"type":"{kind}","client":{json.dumps(client_id)},"info":{info},"count":{count}}}'
        self.sink.presence_event(topic, event.encode())

    async def presence(self, topic: str) -> dict[str, str]:
        return dict(self._presence.get(topic, {}))
