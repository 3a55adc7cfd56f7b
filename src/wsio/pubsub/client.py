"""A reference client for :mod:`wsio.pubsub.json_protocol`: every publication once, in order, across reconnections.

::

    client = HubClient("ws://127.0.0.1:8765/", ["room:1"], on_message=show, on_lost=reload)
    await client.run()  # reconnects by itself; cancel it to stop

The client keeps, per topic, the position (offset and epoch) of the last
publication it handed to the application. After each reconnection it
subscribes again with that position, and the server sends what was missed
before the answer. The application's ``on_message`` gets each publication
once and in order: those that arrive twice (offset already seen) are dropped;
when one is missing (an offset skipped, or the epoch changed) the client sends
``recover`` and waits for what fills the gap. When the server can't fill it
(the answer says ``"recovered": false``: the history no longer reaches back,
or it was lost), ``on_lost(topic)`` tells the application to reload its state
from its own source, and delivery goes on from the server's current position.
On a hub without history, publications carry no offset: they are delivered as
they come, and what a reconnection loses goes unnoticed.

:class:`Tracker` is that logic without I/O: it turns what the server sends
into calls of the application's callbacks and commands to send back. On top
of it, :class:`HubClient` runs on :func:`wsio.connect` (asyncio) and
:class:`ThreadedHubClient` on :func:`wsio.sync.client.connect` with
``legacy=False`` (threads); both reconnect with backoff by themselves. Any
other WebSocket client can drive a :class:`Tracker`: call :meth:`~Tracker.opened`
on each new connection and :meth:`~Tracker.received` with each message, and
send the commands they return.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from ..exceptions import ConnectionClosed
from .hub import Position

__all__ = ["Message", "Tracker", "HubClient", "ThreadedHubClient"]


class Message(NamedTuple):
    """A publication handed to the application."""

    topic: str
    data: str | bytes
    #: Its offset and epoch; ``None`` on a hub without history.
    position: Position | None


OnMessage = Callable[[Message], None]
OnTopic = Callable[[str], None]
OnEvent = Callable[[dict[str, Any]], None]
OnOpen = Callable[[], Iterable[str]]


def _command(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _subscribe_command(kind: str, topic: str, position: Position | None) -> str:
    if position is None:
        return _command(type=kind, topic=topic)
    return _command(type=kind, topic=topic, offset=position.offset, epoch=position.epoch)


class Tracker:
    """Positions per topic, de-duplication and gap recovery, without I/O.

    Args:
        topics: the topics to subscribe to; a mapping gives the position to
            come back after for each (``None``: from now on), e.g. one saved
            along with the application's state.
        on_message: called with each publication, once, in order, per topic.
        on_lost: called with a topic whose missed publications couldn't be
            recovered: the application reloads what it shows of that topic.
            (Not called for the first subscription to a topic without a position.)
        on_event: called with any other message from the server (``join``,
            ``leave``, ``presence``, ``error``...), as a dict.
        on_open: called on each new connection; returns the commands (JSON
            texts) to send before the subscriptions: a server may want to
            hear who the client is first.

    The callbacks run in the caller of :meth:`received`; what they raise
    propagates.
    """

    def __init__(
        self,
        topics: Iterable[str] | Mapping[str, Position | None],
        *,
        on_message: OnMessage,
        on_lost: OnTopic | None = None,
        on_event: OnEvent | None = None,
        on_open: OnOpen | None = None,
    ) -> None:
        #: The position of the last publication handed over, per topic subscribed to.
        self.positions: dict[str, Position | None] = (
            dict(topics.items()) if isinstance(topics, Mapping) else dict.fromkeys(topics)
        )
        self.on_message = on_message
        self.on_lost = on_lost
        self.on_event = on_event
        self.on_open = on_open
        # Topics waiting for the answer to subscribe or recover, with the publications that came meanwhile.
        self._waiting: dict[str, list[Message]] = {}
        self._known: set[str] = {topic for topic, position in self.positions.items() if position is not None}

    def opened(self) -> list[str]:
        """A connection is open: the commands to send (``on_open``'s, then a subscription to every topic, from its position)."""
        commands = [] if self.on_open is None else list(self.on_open())
        self._waiting = {topic: [] for topic in self.positions}
        return commands + [_subscribe_command("subscribe", topic, position) for topic, position in self.positions.items()]

    def subscribe(self, topic: str, position: Position | None = None) -> str:
        """Add a topic: the command to send (now if connected; :meth:`opened` includes it from now on)."""
        self.positions[topic] = position
        if position is not None:
            self._known.add(topic)
        self._waiting[topic] = []
        return _subscribe_command("subscribe", topic, position)

    def unsubscribe(self, topic: str) -> str:
        """Forget a topic: the command to send."""
        self.positions.pop(topic, None)
        self._waiting.pop(topic, None)
        self._known.discard(topic)
        return _command(type="unsubscribe", topic=topic)

    def received(self, message: str | bytes) -> list[str]:
        """Handle a message from the server; return the commands to send back."""
        event = json.loads(message)
        if not isinstance(event, dict):
            return []
        kind, topic = event.get("type"), event.get("topic")
        if kind == "pub" and isinstance(topic, str) and topic in self.positions:
            data: str | bytes = event["data"] if "data" in event else base64.b64decode(event.get("b64", ""))
            offset, epoch = event.get("offset"), event.get("epoch")
            position = Position(offset, epoch) if isinstance(offset, int) and isinstance(epoch, str) else None
            publication = Message(topic, data, position)
            pending = self._waiting.get(topic)
            if pending is not None:
                pending.append(publication)
                return []
            return self._deliver(publication)
        if kind == "pub":
            return []  # a topic unsubscribed from: late
        if kind == "subscribed" and isinstance(topic, str) and topic in self._waiting:
            commands: list[str] = []
            pending = self._waiting.pop(topic)
            if not event.get("recovered"):
                offset, epoch = event.get("offset"), event.get("epoch")
                known = topic in self._known
                if isinstance(offset, int) and isinstance(epoch, str) and epoch:
                    self.positions[topic] = Position(offset, epoch)
                    self._known.add(topic)
                else:  # no history, or it couldn't be read: go on from the next publication
                    self.positions[topic] = None
                    self._known.discard(topic)
                if known and self.on_lost is not None:
                    self.on_lost(topic)
            # What came before the answer: recovered publications, then live ones.
            pending.sort(key=lambda waited: waited.position.offset if waited.position else 0)
            for waited in pending:
                commands += self._deliver(waited)
                if topic in self._waiting:  # another gap: the rest comes again after recover
                    break
            return commands
        if kind == "error" and isinstance(topic, str) and topic in self._waiting:
            del self._waiting[topic]  # not subscribed after all; the application hears why (below)
        if self.on_event is not None:
            self.on_event(event)
        return []

    def _deliver(self, message: Message) -> list[str]:
        topic, position = message.topic, message.position
        last = self.positions.get(topic)
        if position is not None and last is not None:
            if position.epoch == last.epoch and position.offset <= last.offset:
                return []  # seen already
            if position.epoch != last.epoch or position.offset != last.offset + 1:
                # A gap: ask for what follows the last one handed over. (This one is in the history too.)
                self._waiting[topic] = []
                return [_subscribe_command("recover", topic, last)]
        if position is not None:
            self.positions[topic] = position
            self._known.add(topic)
        self.on_message(message)
        return []


class _TrackedClient:
    """What both clients keep: the URI, the :class:`Tracker`, the options of ``connect()``, the current connection."""

    def __init__(
        self,
        uri: str,
        topics: Iterable[str] | Mapping[str, Position | None],
        *,
        on_message: OnMessage,
        on_lost: OnTopic | None = None,
        on_event: OnEvent | None = None,
        on_open: OnOpen | None = None,
        **connect_options: Any,
    ) -> None:
        self.uri = uri
        self.tracker = Tracker(topics, on_message=on_message, on_lost=on_lost, on_event=on_event, on_open=on_open)
        self.connect_options = connect_options
        self.connection: Any = None  # the current ClientConnection, while connected


class HubClient(_TrackedClient):
    """A :class:`Tracker` on :func:`wsio.connect`: subscribes, reconnects, recovers.

    Args:
        uri: the server's URI, as for :func:`wsio.connect`.
        topics, on_message, on_lost, on_event, on_open: as for :class:`Tracker`.
        connect_options: passed to :func:`wsio.connect` (``reconnect_delays``,
            ``origin``, ``additional_headers``...).

    The callbacks run in the event loop: they mustn't block.
    """

    async def run(self) -> None:
        """Connect, subscribe and deliver; reconnect when the connection drops. Runs until cancelled."""
        from ..asyncio.client import connect

        # aclosing: the last connection closes when run() ends (cancelled, or a callback raised).
        async with contextlib.aclosing(connect(self.uri, **self.connect_options).__aiter__()) as connections:  # type: ignore[type-var]
            async for connection in connections:
                self.connection = connection
                try:
                    for command in self.tracker.opened():
                        await connection.send(command)
                    async for message in connection:
                        for command in self.tracker.received(message):
                            await connection.send(command)
                except ConnectionClosed:
                    continue
                finally:
                    self.connection = None

    async def subscribe(self, topic: str, position: Position | None = None) -> None:
        """Subscribe to another topic (now if connected, and after each reconnection)."""
        await self._send(self.tracker.subscribe(topic, position))

    async def unsubscribe(self, topic: str) -> None:
        await self._send(self.tracker.unsubscribe(topic))

    async def publish(self, topic: str, data: str | bytes) -> None:
        """Send a publication; raises :exc:`~wsio.exceptions.ConnectionClosed` while disconnected."""
        if self.connection is None:
            raise ConnectionClosed(None, None)
        await self.connection.send(_publish_command(topic, data))

    async def _send(self, command: str) -> None:
        if self.connection is not None:
            try:
                await self.connection.send(command)
            except ConnectionClosed:
                pass  # sent again on reconnection


class ThreadedHubClient(_TrackedClient):
    """A :class:`Tracker` on :func:`wsio.sync.client.connect` (``legacy=False``), in threads.

    :meth:`run` blocks (run it in a thread of its own); :meth:`close` stops it
    from another thread. Arguments as for :class:`HubClient`; the callbacks run
    in the thread of :meth:`run`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()  # the tracker's state, between run() and subscribe()
        self._closing = threading.Event()

    def run(self) -> None:
        """Connect, subscribe and deliver; reconnect when the connection drops; return after :meth:`close`."""
        from ..sync.client import connect

        # closing: the last connection closes when run() ends.
        with contextlib.closing(iter(connect(self.uri, legacy=False, **self.connect_options))) as connections:  # type: ignore[type-var]
            for connection in connections:
                if self._closing.is_set():
                    return
                self.connection = connection
                try:
                    with self._lock:
                        commands = self.tracker.opened()
                    for command in commands:
                        connection.send(command)
                    for message in connection:
                        with self._lock:
                            commands = self.tracker.received(message)
                        for command in commands:
                            connection.send(command)
                except ConnectionClosed:
                    pass
                finally:
                    self.connection = None
                if self._closing.is_set():
                    return

    def close(self) -> None:
        """Stop :meth:`run` (after the backoff delay it may be waiting through)."""
        self._closing.set()
        connection = self.connection
        if connection is not None:
            connection.close()

    def subscribe(self, topic: str, position: Position | None = None) -> None:
        with self._lock:
            command = self.tracker.subscribe(topic, position)
        self._send(command)

    def unsubscribe(self, topic: str) -> None:
        with self._lock:
            command = self.tracker.unsubscribe(topic)
        self._send(command)

    def publish(self, topic: str, data: str | bytes) -> None:
        """Send a publication; raises :exc:`~wsio.exceptions.ConnectionClosed` while disconnected."""
        connection = self.connection
        if connection is None:
            raise ConnectionClosed(None, None)
        connection.send(_publish_command(topic, data))

    def _send(self, command: str) -> None:
        connection = self.connection
        if connection is not None:
            try:
                connection.send(command)
            except ConnectionClosed:
                pass


def _publish_command(topic: str, data: str | bytes) -> str:
    if isinstance(data, str):
        return _command(type="publish", topic=topic, data=data)
    return _command(type="publish", topic=topic, b64=base64.b64encode(data).decode())
