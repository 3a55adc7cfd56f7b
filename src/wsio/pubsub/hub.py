"""Topics that WebSocket connections subscribe to, and messages published to them: :class:`Hub`."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
from typing import Any, Collection, Iterable, Literal, Mapping, NamedTuple

from ..asyncio.broadcast import Framed
from ..asyncio.connection import BaseConnection
from ..protocol.machine import Side, State
from ..protocol.frames import OP_TEXT
from .backend import Backend, History, MemoryBackend, Position, Publication
from .errors import HubUnavailable
from .redact import redact_url

__all__ = ["Hub", "Position", "Recovery"]

logger = logging.getLogger("wsio.pubsub")

Message = str | bytes | bytearray | memoryview

_OPEN = State.OPEN
_SERVER = Side.SERVER

#: Close code for a subscriber that can't keep up under ``slow="close"``. 1008
#: (policy violation) rather than 1013 (try again later): the server isn't
#: overloaded, this one peer broke its rule of reading fast enough. 1013 tells a
#: client to come back soon, which a slow reader would do in a loop; 1008 says
#: the fault is on its side (a stalled tab, a saturated link).
SLOW_CLOSE_CODE = 1008


class Recovery(NamedTuple):
    """What :meth:`Hub.subscribe` returns on a hub with history.

    ``epoch`` and ``offset``: the topic's position when the subscription took
    effect; the connection gets every message after it. ``recovered``: the
    messages between the position asked for (``recover=``) and this one were
    all sent (``missed`` of them, before any newer one), so that nothing was
    lost; ``False`` when there was nothing to recover from, or when history no
    longer reaches back that far or was lost (another epoch): the application
    must then reload its state. ``epoch`` is ``""`` when the history couldn't be
    read (the broker is unreachable).
    """

    recovered: bool
    epoch: str
    offset: int
    missed: int = 0


class _Seam:
    """A subscription being joined to its topic's history: live messages wait, or are skipped if already sent."""

    __slots__ = ("buffer", "epoch", "after")

    def __init__(self) -> None:
        # While the history is read: live messages (text, payload, position).
        self.buffer: list[tuple[bool, bytes, Position | None]] | None = []
        # Then: live messages of this epoch at or below this offset were sent from history.
        self.epoch = ""
        self.after = 0


class _Read:
    """A history read that subscribers may still join (until it is issued)."""

    __slots__ = ("future", "issued")

    def __init__(self, future: asyncio.Future[History]) -> None:
        self.future = future
        self.issued = False


class _Subscriber:
    """What the hub keeps per connection: its subscriptions, what it missed, its close hook."""

    __slots__ = ("topics", "prefixes", "dropped", "callback")

    def __init__(self, callback: Any) -> None:
        self.topics: set[str] = set()
        self.prefixes: set[str] = set()
        self.dropped = 0
        self.callback = callback


class Hub:
    """Publish / subscribe for WebSocket connections, in one process or across many.

    ::

        hub = wsio.Hub()                        # or wsio.Hub("redis://localhost:6379/0")

        async def handler(ws):
            await hub.subscribe(ws, "room:42")
            async for message in ws:
                await hub.publish("room:42", message)

    **Topics** are strings, matched by exact name: :meth:`subscribe` takes its
    topic literally, whatever characters it holds (``"inbox:*"`` is a topic
    named so), so a topic built from a client's input,
    ``f"inbox:{name}"``, never reaches more than that one topic.
    **Prefixes** are asked for explicitly: :meth:`subscribe_prefix` with
    ``"room:"`` receives what is published to every topic that starts with
    ``room:`` (``""``: every topic). A connection subscribed to a topic by its
    name and by prefixes gets each message once. A connection leaves all its
    topics and prefixes when it closes (the hub hooks the connection's closed
    future; no task per connection).

    **Fan-out is cheap**: a message is framed once per process, and compressed
    once per distinct permessage-deflate setting without context takeover (the
    logic of :func:`wsio.broadcast`), then written to each subscriber's
    transport. ``publish`` never waits for a subscriber.

    **Slow subscribers**: each subscriber's outgoing buffer is bounded by
    ``max_buffer`` bytes (default: the connection's ``write_limit``, 64 KiB),
    counting what the transport holds, the frames the connection holds until
    the end of the loop turn, and large payloads waiting
    (:attr:`~wsio.Connection.buffered_amount`).
    A message that doesn't fit in what's left is not written: with
    ``slow="drop"`` (the default) it is skipped and counted (:attr:`dropped`,
    :meth:`dropped_for`), and the subscriber gets later messages once it has
    caught up; with ``slow="close"`` the connection is closed with 1008 (see
    :data:`wsio.pubsub.SLOW_CLOSE_CODE`) and a reason such as ``"subscriber too slow: 65000
    bytes buffered + 1054 > max_buffer=65536"``. Either way one stuck client
    never holds up the others nor grows memory: its buffer stays within the
    bound (a single message larger than the bound is written only to an empty
    buffer).

    **Across processes**, ``Hub("redis://host:port/db")`` (``pip install
    'wsio[redis]'``; redis-py's asyncio client, with hiredis when installed)
    relays messages through Redis: a message published in any process reaches
    subscribers in every process. Each process subscribes in Redis only to the
    topics (``SUBSCRIBE``) and patterns (``PSUBSCRIBE``) that it has local
    subscribers for (prefixes as patterns whose prefix is escaped, so that it
    is matched literally), and unsubscribes when the last one leaves. ``publish``
    delivers to this process's subscribers at once, then publishes to Redis;
    every process skips its own messages when Redis echoes them back (by an
    origin id), so nothing is delivered twice. The message type (text or
    binary) travels with the message (``wsio/pubsub/wire.py``).

    **When Redis goes away**, local delivery goes on: subscriptions and
    ``publish`` keep working within the process, but ``publish`` raises
    :exc:`~wsio.pubsub.HubUnavailable` (after delivering locally; its
    ``delivered`` attribute says to how many connections), since the other
    processes didn't get the message. Nothing is buffered for later. The hub
    reconnects with jittered exponential backoff
    (the backoff of ``async for websocket in wsio.connect(...)``) and resubscribes to every current
    topic and pattern. ``subscribe`` doesn't fail while Redis is away: the
    subscription is local at once and reaches Redis on reconnection.

    **Delivery is at most once**: a message reaches each current subscriber
    once or not at all: not if the subscriber is too slow, nor (in other
    processes) if Redis is unreachable or the process's subscription is still on
    its way. Messages from one publishing process on one topic arrive in order.
    With ``history_size``, a subscriber that comes back gets what it missed (below).

    **History and recovery** (``history_size > 0``; off by default): the hub
    keeps the last ``history_size`` messages of each topic for ``history_ttl``
    seconds (in this process's memory, or in a Redis stream per topic). Every
    message gets an offset in its topic (1, 2, 3...) within an epoch, a random
    id that changes when the topic's history is lost (the process restarted,
    Redis was flushed or forgot the topic). :meth:`subscribe` returns a
    :class:`Recovery` with the topic's position; a connection that comes back
    with the last position it saw, ``subscribe(ws, topic,
    recover=Position(offset, epoch))``, gets every message it missed, in order,
    then the live ones, with no gap and no duplicate between them, if history
    still reaches back; else ``recovered`` is false and the application reloads
    its state. Identical history reads (many clients coming back at once) are
    merged. With Redis, every process (this one included) delivers a topic's
    messages as Redis publishes them, in the order of their offsets, and a
    process that lost Redis for a while delivers what it missed from history
    when it reconnects. Subscribers see the offsets only through the JSON
    envelope (``envelope=True``, as :mod:`wsio.pubsub.json_protocol` uses).
    See the docs' delivery guarantees.

    **Passwords** in the URL (``user:password@`` or ``?password=``) never
    appear in log lines, exceptions or ``repr(hub)``: those show the URL
    through :func:`~wsio.pubsub.redact_url`.

    Args:
        url: ``None`` or ``"memory://"`` (default): in this process only;
            ``"redis://[[user]:password@]host[:port][/db]"``, ``"rediss://..."`` or
            ``"unix:///path/to/socket[?password=...]"``: through Redis;
            ``"redis+cluster://host:port[,host:port...]"`` (``rediss+cluster://``
            for TLS): through a Redis Cluster, with sharded pub/sub (Redis 7+;
            no prefix subscriptions), each topic's keys on its channel's slot
            (``wsio/pubsub/redis_cluster.py``).
        slow: ``"drop"`` (default) or ``"close"``: what happens to a subscriber
            whose buffer is full.
        max_buffer: the bound of each subscriber's buffer, in bytes (default
            ``None``: the connection's ``write_limit``).
        compress: ``None`` (default) compresses messages from the connection's
            ``compression_threshold`` on, where permessage-deflate was
            negotiated; ``False`` never; ``True`` always.
        channel_prefix: prepended to topic names in Redis, so that several
            applications share a server (default ``"wsio:"``).
        subscribe_timeout: how long :meth:`subscribe` waits for Redis to confirm
            a new subscription (default 5 s); after that it returns anyway.
        health_check_interval: seconds of silence on the Redis subscription
            connection before the hub pings Redis; no answer within as long
            again, and the hub reconnects (default 15).
        reconnect_initial, reconnect_max: the backoff's first and largest delay
            in seconds (defaults: those of ``wsio.connect``'s reconnection,
            about 1 s and 60 s).
        redis_options: keyword arguments for ``redis.asyncio.Redis.from_url``
            (``socket_connect_timeout`` defaults to 5 s); on a cluster, for
            ``redis.asyncio.cluster.RedisCluster.from_url`` (its ``retry``
            says how long a publish waits for a master that failed).
        logger: defaults to the ``wsio.pubsub`` logger.
        backend: instead of ``url``, what relays messages between processes:
            a :class:`wsio.pubsub.backend.Backend` of your own (the Redis
            options above are then unused).
        history_size: how many of each topic's last messages are kept for
            recovery (default 0: no history, no offsets, nothing kept).
        history_ttl: how long a message stays in history, in seconds
            (default 300).
        history_meta_ttl: how long a topic's epoch and last offset are kept
            after its last message, in seconds (default 86400): a topic left
            alone longer starts a new epoch (its subscribers then reload).
        presence_ttl: how long a presence entry lasts in Redis unless
            refreshed, in seconds (default 60): the hub refreshes its own every
            third of that, so the entries of a process that died go away
            after at most that long.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        slow: Literal["drop", "close"] = "drop",
        max_buffer: int | None = None,
        compress: bool | None = None,
        channel_prefix: str = "wsio:",
        subscribe_timeout: float = 5.0,
        health_check_interval: float = 15.0,
        reconnect_initial: float | None = None,
        reconnect_max: float | None = None,
        redis_options: Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
        backend: Backend | None = None,
        history_size: int = 0,
        history_ttl: float = 300.0,
        history_meta_ttl: float = 86400.0,
        presence_ttl: float = 60.0,
    ) -> None:
        if slow not in ("drop", "close"):
            raise ValueError(f'slow must be "drop" or "close", not {slow!r}')
        if max_buffer is not None and max_buffer < 0:
            raise ValueError(f"max_buffer must be >= 0, not {max_buffer}")
        if presence_ttl <= 0:
            raise ValueError(f"presence_ttl must be > 0, not {presence_ttl}")
        if history_size < 0:
            raise ValueError(f"history_size must be >= 0, not {history_size}")
        if history_ttl <= 0 or history_meta_ttl < history_ttl:
            raise ValueError(
                f"history_ttl must be > 0 and history_meta_ttl >= history_ttl, not {history_ttl} and {history_meta_ttl}"
            )
        self._url = url
        self.slow = slow
        self.max_buffer = max_buffer
        self.compress = compress
        self.logger = logger or globals()["logger"]
        #: Messages not written to a subscriber because its buffer was full (all connections, ever).
        self.dropped = 0
        self._exact: dict[str, set[BaseConnection]] = {}
        self._prefixes: dict[str, set[BaseConnection]] = {}
        self._prefix_lengths: dict[int, int] = {}  # length of a prefix -> how many prefixes have it
        self._subscribers: dict[BaseConnection, _Subscriber] = {}
        self._closed = False
        self._warned_star = False
        #: How many messages are kept per topic, 0 for no history.
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.history_meta_ttl = history_meta_ttl
        self._enveloped: set[BaseConnection] = set()  # connections that get JSON envelopes
        self._seams: dict[str, dict[BaseConnection, _Seam]] = {}  # topic -> connections joining its history
        self._reads: dict[tuple[str, int | None], _Read] = {}
        # With history, per topic subscribed to by name: the last message delivered here, and
        # the messages held while a gap (messages this process missed) is filled from history.
        self._last: dict[str, Position] = {}
        self._filling: dict[str, list[tuple[bool, bytes, Position | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._missed_cache: dict[tuple[str, str, int, bool], Framed] | None = None
        self.presence_ttl = presence_ttl
        self._present: dict[str, dict[BaseConnection, str]] = {}  # topic -> connection -> its presence, as JSON
        self._watchers: dict[str, set[BaseConnection]] = {}  # topic -> connections that get its presence events
        self._refresher: asyncio.Task[None] | None = None
        if backend is not None:
            if url is not None:
                raise ValueError("give a hub a url or a backend, not both")
        elif url is None or url == "memory://":
            backend = MemoryBackend()
        else:
            from .redis_cluster import ClusterBackend, is_cluster_url
            from .redis_link import RedisBackend

            backend = (ClusterBackend if is_cluster_url(url) else RedisBackend)(
                url,
                channel_prefix=channel_prefix,
                subscribe_timeout=subscribe_timeout,
                health_check_interval=health_check_interval,
                reconnect_initial=reconnect_initial,
                reconnect_max=reconnect_max,
                options=redis_options or {},
            )
        self._backend = backend
        backend.bind(_Sink(self))
        if history_size:
            backend.keep_history(history_size, history_ttl, history_meta_ttl)

    @property
    def url(self) -> str | None:
        """The URL given to the hub, with any password replaced by ``***`` (see :func:`~wsio.pubsub.redact_url`)."""
        return None if self._url is None else redact_url(self._url)

    def __repr__(self) -> str:
        return f"<Hub {self._backend.where}: {len(self._exact)} topics, {len(self._prefixes)} prefixes, {len(self._subscribers)} subscribers>"

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (the first subscribe or publish does it too); wait for the first attempt.

        Doesn't fail if Redis is unreachable: the hub keeps trying in the background.
        """
        self._check_open()
        await self._backend.start()

    async def close(self) -> None:
        """Stop: forget every subscription (connections stay open) and disconnect from Redis."""
        if self._closed:
            return
        self._closed = True
        for connection, subscriber in self._subscribers.items():
            connection._closed_future().remove_done_callback(subscriber.callback)
        self._subscribers.clear()
        self._enveloped.clear()
        self._seams.clear()
        self._last.clear()
        self._filling.clear()
        for topic, present in self._present.items():
            self._backend.presence_remove(topic, [str(connection.id) for connection in present])
        self._present.clear()
        self._watchers.clear()
        if self._refresher is not None:
            self._refresher.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._exact.clear()
        self._prefixes.clear()
        self._prefix_lengths.clear()
        await self._backend.close()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True when messages published here reach the other processes.

        Always true for the in-memory hub (there are no other processes); for
        Redis, true while the hub is connected and subscribed."""
        if self._closed:
            return False
        return self._backend.up

    def _check_open(self) -> None:
        if self._closed:
            raise HubUnavailable("hub is closed")

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(
        self,
        connection: BaseConnection,
        topic: str,
        *,
        recover: Position | tuple[int, str] | None = None,
        envelope: bool = False,
        presence: Any = None,
        presence_events: bool = False,
    ) -> Recovery | None:
        """Subscribe ``connection`` to the topic named ``topic``, taken literally.

        No character is special: ``"inbox:*"`` is a topic of that name, not a
        pattern, so a topic built from a client's input can't reach other
        topics. Use :meth:`subscribe_prefix` for every topic starting with a
        prefix. With Redis, waits until Redis confirms a subscription new to
        this process (at most ``subscribe_timeout``), so that a message
        published anywhere after ``subscribe`` returns reaches the connection.
        Subscribing twice does nothing (but recover, below). Raises
        :exc:`~wsio.ConnectionClosed` if the connection is closed.

        On a hub with history, returns a :class:`Recovery`: the topic's
        position, after which the connection gets every message. ``recover``:
        the position of the last message the client got (``(offset, epoch)``),
        to be sent what it missed since, first (see :class:`Recovery`); for
        a connection already subscribed, this fills a gap (it noticed an
        offset missing). Without history, returns ``None``.

        ``envelope``: the connection gets every message (of every topic) as a
        JSON text message, ``{"type": "pub", "topic": ..., "data": ...}``
        (``"b64": ...`` for binary data) with ``"offset"`` and ``"epoch"`` on a
        hub with history; a connection gets envelopes or raw messages, not both.

        ``presence``: what :meth:`presence` shows of this connection while it
        is subscribed to the topic, for every process to see (``None``, the
        default: nothing; else a value that ``json.dumps()`` takes, such as
        ``{"user": "alice"}``).

        ``presence_events``: the connection also gets, as JSON text messages,
        who joins and leaves the topic's presence, in every process:
        ``{"type": "join", "topic": ..., "client": id, "info": ..., "count":
        n}``, and ``"leave"`` likewise (``count``: how many entries the
        presence holds after the event). With Redis, the entries of a process
        that died leave when their ``presence_ttl`` has passed and a hub
        notices it (each hub looks every third of ``presence_ttl`` at the
        topics it has such subscribers for).
        """
        self._check_open()
        _check_topic(topic)
        if recover is not None:
            recover = Position(*recover)
        info = None if presence is None else json.dumps(presence, ensure_ascii=False, separators=(",", ":"))
        if topic[-1:] == "*" and not self._warned_star:
            self._warned_star = True
            self.logger.warning(
                "subscribe() got a topic ending with '*': topics are literal, it matches only a topic of that "
                "exact name; use subscribe_prefix(connection, prefix) for every topic starting with a prefix"
            )
        subscriber = self._subscriber(connection, envelope)
        seam: _Seam | None = None
        if topic not in subscriber.topics:
            subscriber.topics.add(topic)
            group = self._exact.get(topic)
            if group is None:
                group = self._exact[topic] = set()
            group.add(connection)
            if self.history_size:
                seam = _Seam()
        elif self.history_size and recover is not None:
            seam = _Seam()  # subscribed already: fill a gap
        if presence_events:
            self._watchers.setdefault(topic, set()).add(connection)
        if (info is not None or presence_events) and self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_presence())
        if seam is not None:
            # Live messages wait from now on, until what the history read below holds is sent.
            seams = self._seams.setdefault(topic, {})
            previous = seams.get(connection)
            if previous is not None and previous.buffer is not None:
                seam.buffer = previous.buffer  # another subscribe() for it is under way: take over its messages
            seams[connection] = seam
        if not self.history_size:
            await self._backend.subscribe(False, topic)
            await self._join_presence(connection, topic, info)
            return None
        try:
            await self._backend.subscribe(False, topic)
            # Once subscribed: the join event reaches this process too.
            await self._join_presence(connection, topic, info)
            # After the subscription took effect: what is published from now on arrives live.
            history = await self._read(topic, None if recover is None else recover.offset)
        except HubUnavailable:
            history = None
        except BaseException:
            if seam is not None:
                self._end_seam(connection, topic, seam, None, 0, [])
            raise
        if history is None:
            if seam is not None:
                self._end_seam(connection, topic, seam, None, 0, [])
            return Recovery(False, "", 0)
        epoch, offset, publications = history
        recovered = (
            recover is not None
            and recover.epoch == epoch
            and (
                recover.offset == offset
                or (bool(publications) and publications[0].offset == recover.offset + 1 and publications[-1].offset == offset)
            )
        )
        missed = publications if recovered and seam is not None else []
        if seam is not None:
            self._end_seam(connection, topic, seam, epoch, offset, missed)
        return Recovery(recovered, epoch, offset, len(missed))

    def _end_seam(
        self,
        connection: BaseConnection,
        topic: str,
        seam: _Seam,
        epoch: str | None,
        offset: int,
        missed: list[Publication],
    ) -> None:
        """Send what ``connection`` missed, then the live messages that waited, none twice; then let live ones through.

        ``epoch`` ``None``: no history was read, every message that waited goes.
        """
        buffer, seam.buffer = seam.buffer, None
        seams = self._seams.get(topic)
        if seams is None or seams.get(connection) is not seam or connection not in self._subscribers:
            return  # unsubscribed or closed meanwhile
        enveloped = connection in self._enveloped
        for publication in missed:
            self._fan_out((connection,), self._framed_missed(topic, epoch or "", publication, enveloped))
        for text, payload, position in buffer or ():
            if epoch is not None and position is not None and position.epoch == epoch and position.offset <= offset:
                continue  # in the history just read: sent above, or before the position returned
            self._fan_out_one(connection, topic, Framed.from_payload(text, payload, self.compress), position)
        if epoch is None:
            self._drop_seam(connection, topic)
        else:
            # With Redis, a message read from history may still be on its way live: skip it then.
            seam.epoch = epoch
            seam.after = offset

    def _framed_missed(self, topic: str, epoch: str, publication: Publication, enveloped: bool) -> Framed:
        """A message read from history, framed once for every subscriber recovering it in this turn of the loop.

        Many clients coming back at once share one read (:meth:`_read`), and
        wake up in the same turn: each message is framed (and compressed) once.
        """
        cache = self._missed_cache
        if cache is None:
            cache = self._missed_cache = {}
            asyncio.get_running_loop().call_soon(self._forget_missed)
        key = (topic, epoch, publication.offset, enveloped)
        framed = cache.get(key)
        if framed is None:
            framed = Framed.from_payload(publication.text, publication.payload, self.compress)
            if enveloped:
                framed = _envelope(topic, framed, Position(publication.offset, epoch), self.compress)
            cache[key] = framed
        return framed

    def _forget_missed(self) -> None:
        self._missed_cache = None

    def _fan_out_one(self, connection: BaseConnection, topic: str, framed: Framed, position: Position | None) -> None:
        if connection in self._enveloped:
            framed = _envelope(topic, framed, position, self.compress)
        self._fan_out((connection,), framed)

    async def _read(self, topic: str, since: int | None) -> History:
        """The topic's history after ``since``, read once for every subscriber that asks before the read is sent."""
        key = (topic, since)
        read = self._reads.get(key)
        if read is None or read.issued:
            # One read at a time per key; those who come meanwhile wait for the next one, together.
            loop = asyncio.get_running_loop()
            previous = read
            read = self._reads[key] = _Read(loop.create_future())
            self._start(self._issue(key, read, previous))
        return await asyncio.shield(read.future)

    async def _issue(self, key: tuple[str, int | None], read: _Read, previous: _Read | None) -> None:
        future = read.future
        try:
            if previous is not None and not previous.future.done():
                await asyncio.wait((previous.future,))
            read.issued = True
            history = await self._backend.history(key[0], key[1], self.history_size)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else HubUnavailable("hub is closed"))
                future.exception()  # retrieved: nobody may be waiting any more
            if not isinstance(exc, Exception):
                raise
        else:
            future.set_result(history)
        finally:
            if self._reads.get(key) is read:
                del self._reads[key]

    async def subscribe_prefix(self, connection: BaseConnection, prefix: str, *, envelope: bool = False) -> None:
        """Subscribe ``connection`` to every topic that starts with ``prefix`` (``""``: every topic).

        The prefix is matched literally: ``subscribe_prefix(ws, "room:")``
        receives ``"room:1"`` and ``"room:lobby"``. Never build a prefix from
        a client's input unless that client may read every topic it matches.
        Raises ``ValueError`` for a prefix ending with ``*``: write
        ``"room:"``, not ``"room:*"``. Otherwise as :meth:`subscribe`, without
        recovery: messages published while the connection was away are lost.
        """
        self._check_open()
        if type(prefix) is not str:
            raise TypeError(f"a prefix is a str, not {type(prefix).__name__}")
        if prefix[-1:] == "*":
            raise ValueError(
                f"a prefix is matched literally, without '*': subscribe_prefix(connection, {prefix[:-1]!r}) "
                f"receives every topic starting with {prefix[:-1]!r}"
            )
        if not self._backend.prefixes:
            raise NotImplementedError(
                f"{self._backend.where} has no prefix subscriptions (sharded pub/sub has no patterns): subscribe to each topic"
            )
        subscriber = self._subscriber(connection, envelope)
        if prefix not in subscriber.prefixes:
            subscriber.prefixes.add(prefix)
            group = self._prefixes.get(prefix)
            if group is None:
                group = self._prefixes[prefix] = set()
                self._prefix_lengths[len(prefix)] = self._prefix_lengths.get(len(prefix), 0) + 1
            group.add(connection)
        await self._backend.subscribe(True, prefix)

    def _subscriber(self, connection: BaseConnection, envelope: bool) -> _Subscriber:
        if connection.closed:
            raise connection._closed_exc()
        subscriber = self._subscribers.get(connection)
        if subscriber is None:
            callback = functools.partial(self._connection_closed, connection)
            subscriber = self._subscribers[connection] = _Subscriber(callback)
            connection._closed_future().add_done_callback(callback)
            if envelope:
                self._enveloped.add(connection)
        elif envelope != (connection in self._enveloped):
            raise ValueError(
                f"{connection._peer()} is subscribed with envelope={not envelope}: it gets envelopes or raw messages, not both"
            )
        return subscriber

    async def unsubscribe(self, connection: BaseConnection, topic: str) -> None:
        """Unsubscribe ``connection`` from the topic named ``topic``; no error if it wasn't subscribed."""
        self._check_open()
        subscriber = self._subscribers.get(connection)
        if subscriber is None or topic not in subscriber.topics:
            return
        subscriber.topics.discard(topic)
        self._leave(connection, False, topic)
        self._leave_presence(connection, topic)
        self._drop_seam(connection, topic)
        self._forget_if_idle(connection, subscriber)

    def _drop_seam(self, connection: BaseConnection, topic: str) -> None:
        seams = self._seams.get(topic)
        if seams is not None and seams.pop(connection, None) is not None and not seams:
            del self._seams[topic]

    async def unsubscribe_prefix(self, connection: BaseConnection, prefix: str) -> None:
        """Undo :meth:`subscribe_prefix` with the same ``prefix``; no error if it wasn't subscribed."""
        self._check_open()
        subscriber = self._subscribers.get(connection)
        if subscriber is None or prefix not in subscriber.prefixes:
            return
        subscriber.prefixes.discard(prefix)
        self._leave(connection, True, prefix)
        self._forget_if_idle(connection, subscriber)

    def _forget_if_idle(self, connection: BaseConnection, subscriber: _Subscriber) -> None:
        if not subscriber.topics and not subscriber.prefixes:
            del self._subscribers[connection]
            self._enveloped.discard(connection)
            connection._closed_future().remove_done_callback(subscriber.callback)

    def _leave(self, connection: BaseConnection, is_prefix: bool, name: str) -> None:
        if is_prefix:
            group = self._prefixes.get(name)
            if group is None:
                return
            group.discard(connection)
            if not group:
                del self._prefixes[name]
                n = self._prefix_lengths[len(name)] - 1
                if n:
                    self._prefix_lengths[len(name)] = n
                else:
                    del self._prefix_lengths[len(name)]
                self._backend.unsubscribe(True, name)
        else:
            group = self._exact.get(name)
            if group is None:
                return
            group.discard(connection)
            if not group:
                del self._exact[name]
                self._last.pop(name, None)
                self._filling.pop(name, None)
                self._backend.unsubscribe(False, name)

    # -- presence ----------------------------------------------------------------------

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is subscribed to ``topic`` with a ``presence`` (see :meth:`subscribe`), in every process.

        A dict: the connection's id (``str(connection.id)``) -> what it was
        subscribed with. With Redis, the entries of a process that died stay
        until ``presence_ttl`` has passed. Raises
        :exc:`~wsio.pubsub.HubUnavailable` when the broker can't be reached.
        """
        self._check_open()
        entries = await self._backend.presence(topic)
        return {client_id: json.loads(info) for client_id, info in entries.items()}

    async def _join_presence(self, connection: BaseConnection, topic: str, info: str | None) -> None:
        subscriber = self._subscribers.get(connection)
        if info is None or subscriber is None or topic not in subscriber.topics:
            return  # nothing to show, or it left meanwhile
        self._present.setdefault(topic, {})[connection] = info
        try:
            await self._backend.presence_add(topic, {str(connection.id): info}, self.presence_ttl)
        except HubUnavailable:
            pass  # written when the broker is back

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                await self._write_presence()
                # Reading a presence drops its expired entries: their leave events go out.
                for topic in list(self._watchers):
                    await self._backend.presence(topic)
            except HubUnavailable:
                pass  # again in a third of presence_ttl; written again on reconnection
            except Exception:
                self.logger.exception("failed to refresh presence")

    def _presence_event(self, topic: str, data: bytes) -> None:
        """Send a join or leave event to the connections that watch the topic's presence."""
        watchers = self._watchers.get(topic)
        if not watchers:
            return
        try:
            event = json.loads(data)
            kind = event.pop("type")
        except (ValueError, KeyError, AttributeError, TypeError):
            self.logger.warning("ignored a presence event of %r that isn't one: %r", topic, data[:100])
            return
        text = json.dumps({"type": kind, "topic": topic, **event}, ensure_ascii=False, separators=(",", ":"))
        self._fan_out(watchers, Framed(text, self.compress))

    async def _write_presence(self) -> None:
        """Write (again) every presence entry of this process's connections."""
        for topic, present in list(self._present.items()):
            try:
                await self._backend.presence_add(
                    topic, {str(connection.id): info for connection, info in present.items()}, self.presence_ttl
                )
            except HubUnavailable:
                return  # written when the broker is back

    def _leave_presence(self, connection: BaseConnection, topic: str) -> None:
        watchers = self._watchers.get(topic)
        if watchers is not None:
            watchers.discard(connection)
            if not watchers:
                del self._watchers[topic]
        present = self._present.get(topic)
        if present is not None and present.pop(connection, None) is not None:
            if not present:
                del self._present[topic]
            self._backend.presence_remove(topic, (str(connection.id),))

    def _connection_closed(self, connection: BaseConnection, _future: Any) -> None:
        subscriber = self._subscribers.pop(connection, None)
        if subscriber is None:
            return
        self._enveloped.discard(connection)
        for topic in subscriber.topics:
            self._leave(connection, False, topic)
            self._leave_presence(connection, topic)
            self._drop_seam(connection, topic)
        for prefix in subscriber.prefixes:
            self._leave(connection, True, prefix)
        if subscriber.dropped:
            self.logger.info(
                "%s left %d topics and %d prefixes; %d messages were dropped for it (too slow)",
                connection._peer(),
                len(subscriber.topics),
                len(subscriber.prefixes),
                subscriber.dropped,
            )

    def subscribers(self, topic: str) -> set[BaseConnection]:
        """The connections of this process that a message published to ``topic`` reaches.

        Those subscribed to ``topic`` and those subscribed to a prefix of it.
        """
        return set(self._targets(topic))

    def prefix_subscribers(self, prefix: str) -> set[BaseConnection]:
        """The connections of this process subscribed to ``prefix`` with :meth:`subscribe_prefix`."""
        return set(self._prefixes.get(prefix, ()))

    def topics(self, connection: BaseConnection) -> set[str]:
        """The topics ``connection`` is subscribed to by name (see :meth:`prefixes` for the others)."""
        subscriber = self._subscribers.get(connection)
        return set(subscriber.topics) if subscriber is not None else set()

    def prefixes(self, connection: BaseConnection) -> set[str]:
        """The prefixes ``connection`` is subscribed to with :meth:`subscribe_prefix`."""
        subscriber = self._subscribers.get(connection)
        return set(subscriber.prefixes) if subscriber is not None else set()

    def dropped_for(self, connection: BaseConnection) -> int:
        """Messages not written to ``connection`` because it was too slow, while it was subscribed."""
        subscriber = self._subscribers.get(connection)
        return subscriber.dropped if subscriber is not None else 0

    def _targets(self, topic: str) -> Collection[BaseConnection]:
        """Who gets a message published to ``topic``: its subscribers and those of its prefixes."""
        exact = self._exact.get(topic)
        if not self._prefixes:
            return exact or ()
        prefixes = self._prefixes
        # One dict lookup per distinct prefix length, not one test per pattern.
        matched = [group for length in self._prefix_lengths if (group := prefixes.get(topic[:length])) is not None]
        if not matched:
            return exact or ()
        if exact is None and len(matched) == 1:
            return matched[0]
        union = set(exact) if exact is not None else set()
        for group in matched:
            union |= group
        return union

    # -- publishing -------------------------------------------------------------------

    async def publish(self, topic: str, message: Message) -> int:
        """Send ``message`` (``str``: text, bytes-like: binary) to every subscriber of ``topic``.

        Returns how many connections of this process it was written to
        (slow and closing ones not counted). With Redis, the message then goes
        to the other processes; if Redis is unreachable, raises
        :exc:`~wsio.pubsub.HubUnavailable` (the local subscribers have the
        message; ``delivered`` says how many). The topic is a name, taken
        literally: a message goes to one topic.
        """
        self._check_open()
        _check_topic(topic)
        framed = Framed(message, self.compress, "publish()")
        text = framed.head & 0x0F == OP_TEXT
        if self.history_size:
            # The backend gives the message its offset and delivers it here too, in order.
            try:
                _, reached = await self._backend.append(topic, text, bytes(framed.payload))
            except HubUnavailable as exc:
                exc.delivered = self._deliver(topic, framed, None)
                raise
            return reached
        reached = self._deliver(topic, framed, None)
        try:
            await self._backend.publish(topic, text, framed.payload)
        except HubUnavailable as exc:
            exc.delivered = reached
            raise
        return reached

    def _deliver(self, topic: str, framed: Framed, position: Position | None) -> int:
        """Write a message to this process's subscribers of ``topic``; how many it reached."""
        targets = self._targets(topic)
        if not targets:
            return 0
        if self._seams:
            seams = self._seams.get(topic)
            if seams:
                targets = self._through_seams(topic, seams, targets, framed, position)
        if not self._enveloped:
            return self._fan_out(targets, framed)
        enveloped = self._enveloped
        raw = [connection for connection in targets if connection not in enveloped]
        wrapped = [connection for connection in targets if connection in enveloped]
        reached = self._fan_out(raw, framed) if raw else 0
        if wrapped:
            reached += self._fan_out(wrapped, _envelope(topic, framed, position, self.compress))
        return reached

    def _deliver_at(self, topic: str, text: bool, payload: bytes, position: Position) -> int:
        """Deliver a message with its place in history, after any this process missed before it.

        For a topic subscribed to by name: a message whose offset isn't the
        last one delivered here plus one (Redis was away for a while) is held,
        with those after it, while the ones missed are read from history and
        delivered first. A message at or below the last offset is not delivered
        again.
        """
        if topic in self._exact:
            held = self._filling.get(topic)
            if held is not None:
                held.append((text, payload, position))
                return 0
            last = self._last.get(topic)
            if last is not None and last.epoch == position.epoch:
                if position.offset <= last.offset:
                    return 0  # delivered already, from history
                if position.offset > last.offset + 1:
                    self._filling[topic] = [(text, payload, position)]
                    self._start(self._fill(topic, last))
                    return 0
            self._last[topic] = position
        return self._deliver(topic, Framed.from_payload(text, payload, self.compress), position)

    def _reconnected(self) -> None:
        """The backend is back: write presence again; it may have missed messages: fill every topic's gap."""
        if self._present:
            self._start(self._write_presence())
        for topic, last in list(self._last.items()):
            if topic not in self._filling:
                self._filling[topic] = []
                self._start(self._fill(topic, last))

    def _start(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, topic: str, last: Position) -> None:
        """Deliver the messages of ``topic`` after ``last`` from history, then those held meanwhile."""
        offset, epoch = last
        try:
            history: History | None = await self._read(topic, offset)
            if history is not None and history.epoch != epoch and topic in self._filling:
                # The history was lost (Redis restarted empty): every message of its new epoch is new here.
                history = await self._read(topic, 0)
                offset, epoch = 0, history.epoch
        except HubUnavailable:
            history = None
        held = self._filling.pop(topic, None)
        if held is None:
            return  # nobody is subscribed by name any more
        start = offset
        if history is not None and history.epoch == epoch:
            for publication in history.publications:
                if publication.offset > offset:
                    offset = publication.offset
                    framed = Framed.from_payload(publication.text, publication.payload, self.compress)
                    self._deliver(topic, framed, Position(offset, epoch))
            if history.publications and history.publications[0].offset > start + 1:
                self.logger.warning(
                    "history of %r no longer held offsets %d to %d", topic, start + 1, history.publications[0].offset - 1
                )
        for text, payload, position in held:
            if position is not None and position.epoch == epoch and position.offset <= offset:
                continue
            if position is not None:
                offset, epoch = position
            self._deliver(topic, Framed.from_payload(text, payload, self.compress), position)
        if topic in self._exact:
            self._last[topic] = Position(offset, epoch)

    def _through_seams(
        self,
        topic: str,
        seams: dict[BaseConnection, _Seam],
        targets: Collection[BaseConnection],
        framed: Framed,
        position: Position | None,
    ) -> Collection[BaseConnection]:
        """``targets`` without the connections whose subscription to ``topic`` is joining its history."""
        held: set[BaseConnection] = set()
        for connection, seam in list(seams.items()):
            if seam.buffer is not None:
                seam.buffer.append((framed.head & 0x0F == OP_TEXT, bytes(framed.payload), position))
            elif position is not None and position.epoch == seam.epoch and position.offset <= seam.after:
                pass  # sent from history already
            else:
                del seams[connection]  # past the seam: from now on, live messages go straight through
                continue
            held.add(connection)
        if not seams:
            del self._seams[topic]
        if not held:
            return targets
        return [connection for connection in targets if connection not in held]

    def _fan_out(self, connections: Iterable[BaseConnection], framed: Framed) -> int:
        # The hot loop: per connection, a state check, a buffer size, a dict
        # lookup for the shared frame, a write. Nothing awaits.
        reached = 0
        max_buffer = self.max_buffer
        need = framed.wire_size
        frame_for = framed.frame_for
        plain: bytes | None = None
        for connection in connections:
            protocol = connection.protocol
            if protocol.state is not _OPEN:
                continue
            # The transport's buffer, the frames held until the end of this turn
            # (this loop may have written several), a large message going out.
            buffered = connection.buffered_amount
            if buffered:
                bound = connection.write_limit if max_buffer is None else max_buffer
                if buffered + need > bound:
                    # Held frames go to the transport now: a peer that reads takes
                    # them at once, and only one that doesn't stays over the bound.
                    connection._flush_held()
                    buffered = connection.buffered_amount
                    if buffered and buffered + need > bound:
                        self._too_slow(connection, buffered, need, bound)
                        continue
            lock = connection._fragment_lock
            if lock is not None and lock.locked():
                # Sending a fragmented message: a frame can't go in between.
                self._missed(connection)
                continue
            if protocol.deflate is None and protocol.side is _SERVER:
                # The common case, without a call: the one uncompressed frame.
                if plain is None:
                    plain = framed.frame_for(connection)
                connection._hold(plain)
            else:
                try:
                    data = frame_for(connection)
                except Exception:
                    self.logger.exception("%s can't frame a message for it", connection._peer())
                    continue
                connection._hold(data)
            reached += 1
        return reached

    def _missed(self, connection: BaseConnection) -> int:
        self.dropped += 1
        subscriber = self._subscribers.get(connection)
        if subscriber is None:
            return 0
        subscriber.dropped += 1
        return subscriber.dropped

    def _too_slow(self, connection: BaseConnection, buffered: int, need: int, bound: int) -> None:
        limit = f"max_buffer={bound}" if self.max_buffer is not None else f"write_limit={bound}"
        if self.slow == "close":
            reason = f"subscriber too slow: {buffered} bytes buffered + {need} > {limit}"
            self.logger.info("%s closing: %s", connection._peer(), reason)
            self.dropped += 1
            connection.fail(SLOW_CLOSE_CODE, reason)
            return
        if self._missed(connection) == 1:
            self.logger.info(
                "%s too slow: %d bytes buffered + %d > %s; dropping messages until it catches up",
                connection._peer(),
                buffered,
                need,
                limit,
            )


class _Sink:
    """The hub as its backend sees it (:class:`wsio.pubsub.backend.Sink`)."""

    __slots__ = ("_hub",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def logger(self) -> logging.Logger:
        return self._hub.logger

    def deliver(self, topic: str, text: bool, payload: bytes, position: Position | None = None) -> int:
        hub = self._hub
        if text:
            try:
                payload.decode()
            except UnicodeDecodeError:
                hub.logger.warning("ignored a text message to %r that isn't valid UTF-8", topic)
                return 0
        if position is not None:
            return hub._deliver_at(topic, text, payload, position)
        return hub._deliver(topic, Framed.from_payload(text, payload, hub.compress), position)

    def presence_event(self, topic: str, event: bytes) -> None:
        self._hub._presence_event(topic, event)

    def reconnected(self) -> None:
        self._hub._reconnected()

    def has_subscribers(self, is_prefix: bool, name: str) -> bool:
        hub = self._hub
        return name in (hub._prefixes if is_prefix else hub._exact)

    def names(self) -> list[tuple[bool, str]]:
        hub = self._hub
        return [*((False, topic) for topic in hub._exact), *((True, prefix) for prefix in hub._prefixes)]


def _envelope(topic: str, framed: Framed, position: Position | None, compress: bool | None) -> Framed:
    """A message in the JSON envelope of :mod:`wsio.pubsub.json_protocol`."""
    event: dict[str, Any] = {"type": "pub", "topic": topic}
    payload = framed.payload
    if framed.head & 0x0F == OP_TEXT:
        event["data"] = bytes(payload).decode()
    else:
        event["b64"] = base64.b64encode(payload).decode()
    if position is not None:
        event["offset"] = position.offset
        event["epoch"] = position.epoch
    return Framed(json.dumps(event, ensure_ascii=False, separators=(",", ":")), compress)


def _check_topic(topic: str) -> None:
    if type(topic) is not str:
        raise TypeError(f"a topic is a str, not {type(topic).__name__}")
    if not topic:
        raise ValueError("a topic can't be empty")
