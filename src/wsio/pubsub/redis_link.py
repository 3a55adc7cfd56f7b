"""The hub's Redis backend: one subscription connection, a publishing pool, reconnection.

One connection carries this process's ``SUBSCRIBE`` (topics) / ``PSUBSCRIBE``
(prefixes, as patterns with the prefix escaped) commands and receives the
messages; a task reads it and hands each message to the hub's sink. A subscription is
a key ``(is_prefix, name)``: the topic ``"a*"`` and the prefix ``"a"`` are two
things. Subscription changes are queued as keys whose Redis state may be stale and
sent in order by one flush at a time, which compares what the hub has local
subscribers for with what Redis was told: a burst of subscribes and
unsubscribes ends in the right state whatever the interleaving.

**History** (:meth:`RedisBackend.keep_history`): a topic's messages are kept in
a stream, ``{channel_prefix}history:{topic}``, whose entry ids are ``0-{offset}``,
and its epoch and last offset in a hash, ``{channel_prefix}history-meta:{topic}``.
One script adds the entry (``XADD ... MAXLEN ~ size``), counts the offset and
publishes the message with its position, so that Redis publishes a topic's
messages in the order of their offsets, whichever process sends them; every
process, this one included, delivers them as they come back from Redis. The
age bound is applied when reading (each entry holds Redis's time), and both
keys expire when the topic is left alone (``PEXPIRE``: ``ttl`` for the stream,
``meta_ttl`` for the hash). A hash that is gone (flushed, expired, evicted)
means a new epoch: the script that finds it missing draws one, and drops what
is left of the stream.

**Presence**: a topic's entries (client id -> JSON) are in a hash,
``{channel_prefix}presence:{topic}``, and their expiry times in a sorted set,
``{channel_prefix}presence-expiry:{topic}``: reading drops the expired
entries, those of a process that stopped refreshing them (it died).
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import itertools
import logging
import os
import re
import urllib.parse
from typing import Any, Collection, Mapping

from .._client_common import backoff
from . import wire
from .backend import Backend, History, Position, Publication, Sink, new_epoch
from .errors import HubUnavailable
from .redact import redact_url

__all__ = ["RedisBackend"]

#: Names per SUBSCRIBE command when resubscribing after a reconnection.
_BATCH = 1000
#: Message ids remembered to deliver a message once when a name and a pattern both match.
_RECENT_IDS = 4096

_GLOB_SPECIAL = re.compile(rb"([*?\[\]\\])")

# KEYS: stream, meta. ARGV: channel, size, ttl ms, meta ttl ms, a new epoch,
# the message's type (b"t" or b"b"), origin + sequence number, payload.
_APPEND = """
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. offset, 't', ms, 'k', ARGV[6], 'd', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[6] .. ARGV[7] .. struct.pack('>I8', offset) .. string.char(#epoch) .. epoch .. ARGV[8])
return {offset, epoch}
"""

# The start of every presence script. KEYS: hash, sorted set. ARGV: ttl ms, channel, a random
# 8-byte id for the events. Drops the expired entries (a process that died stopped refreshing
# them), publishing a leave event for each: the script that removes an entry announces it, once.
_PRESENCE_HEAD = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local sent = 0
local function event(kind, id, info)
  sent = sent + 1
  local text = '{"type":"' .. kind .. '","client":' .. cjson.encode(id) .. ',"info":' .. info
  text = text .. ',"count":' .. redis.call('HLEN', KEYS[1]) .. '}'
  redis.call('PUBLISH', ARGV[2], 'P' .. ARGV[3] .. struct.pack('>I8', sent) .. text)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms)
for _, id in ipairs(expired) do
  local info = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if info then
    event('leave', id, info)
  end
end
"""

# ARGV from the 4th: client id, JSON, client id, JSON... A join event for each new or changed entry.
_PRESENCE_ADD = (
    _PRESENCE_HEAD
    + """
local expires = ms + tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
  if old ~= ARGV[i + 1] then
    event('join', ARGV[i], ARGV[i + 1])
  end
end
-- The keys outlive their entries, so that a hub finds the expired ones and announces their leave.
redis.call('PEXPIRE', KEYS[1], 3 * ARGV[1])
redis.call('PEXPIRE', KEYS[2], 3 * ARGV[1])
return 1
"""
)

# ARGV from the 4th: client ids. A leave event for each entry removed.
_PRESENCE_REMOVE = (
    _PRESENCE_HEAD
    + """
for i = 4, #ARGV do
  local info = redis.call('HGET', KEYS[1], ARGV[i])
  if info then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    event('leave', ARGV[i], info)
  end
end
return 1
"""
)

# Returns HGETALL, without the expired entries (dropped, announced).
_PRESENCE = (
    _PRESENCE_HEAD
    + """
return redis.call('HGETALL', KEYS[1])
"""
)

# KEYS: stream, meta. ARGV: since ("": none), limit, size, ttl ms, meta ttl ms, a new epoch.
# Returns {epoch, last offset, {{id, type, payload}, ...}}.
_HISTORY = """
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local top = tonumber(redis.call('HGET', KEYS[2], 'o'))
if ARGV[1] == '' then
  return {epoch, top, {}}
end
local first = math.max(tonumber(ARGV[1]), top - tonumber(ARGV[3]))
local now = redis.call('TIME')
local oldest = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[4])
local found = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(0-' .. first, '+', 'COUNT', ARGV[2])) do
  local fields = {}
  for i = 1, #entry[2], 2 do
    fields[entry[2][i]] = entry[2][i + 1]
  end
  if tonumber(fields['t']) >= oldest then
    found[#found + 1] = {entry[1], fields['k'], fields['d']}
  end
end
return {epoch, top, found}
"""


#: A subscription: ``(True, prefix)`` or ``(False, topic)``.
Key = tuple[bool, str]


def _secrets(url: str, options: Mapping[str, Any]) -> list[str]:
    """The passwords in ``url`` and ``options``, as written and decoded: never to be shown."""
    found = []
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            found += [parts.password, urllib.parse.unquote(parts.password)]
        for name, value in urllib.parse.parse_qsl(parts.query):
            if value and "password" in name.lower():
                found += [value, urllib.parse.quote(value)]
    except ValueError:
        pass
    if isinstance(options.get("password"), str):
        found.append(options["password"])
    return sorted({secret for secret in found if len(secret) >= 3}, key=len, reverse=True)


def _counts(names: list[tuple[bool, str]]) -> tuple[int, int]:
    """How many topics and how many prefixes ``names`` holds."""
    prefixes = sum(is_prefix for is_prefix, _ in names)
    return len(names) - prefixes, prefixes


class RedisBackend(Backend):
    """Relays a :class:`~wsio.pubsub.Hub`'s messages through Redis (see the hub's docstring)."""

    #: The script that adds a message to its topic's history and publishes it.
    _append_source = _APPEND
    #: The presence scripts (they publish join and leave events).
    _presence_add_source = _PRESENCE_ADD
    _presence_remove_source = _PRESENCE_REMOVE
    _presence_source = _PRESENCE

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str,
        subscribe_timeout: float,
        health_check_interval: float,
        reconnect_initial: float | None,
        reconnect_max: float | None,
        options: Mapping[str, Any],
    ) -> None:
        try:
            importlib.import_module("redis.asyncio")
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError(f"Hub({redact_url(url)!r}) needs redis-py: pip install 'wsio[redis]'") from exc
        self.url = url
        self._where = redact_url(url)
        self._secrets = _secrets(url, options)
        self.logger = logging.getLogger("wsio.pubsub")  # the hub's, once bound
        self.prefix = channel_prefix.encode()
        self.subscribe_timeout = subscribe_timeout
        self.health_check_interval = health_check_interval
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.options = dict(options)
        self.origin = os.urandom(8)
        self._seq = itertools.count()
        #: Connected and subscribed to everything the hub had when it connected.
        self._up = False
        self._why = "not connected yet"
        self._client: Any = None  # publishes
        self._sub_client: Any = None  # subscribes
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._attempted: asyncio.Event | None = None  # set once the first connection attempt ended
        self._closed = False
        self._dirty: set[Key] = set()  # subscriptions whose Redis state may need a command
        self._active: set[Key] = set()  # subscriptions Redis was told of, on this connection
        self._confirmed: set[Key] = set()  # ... and confirmed
        self._confirmed_prefixes: set[str] = set()  # the prefixes among them
        self._confirm: dict[Key, asyncio.Future[None]] = {}
        self._redis_names: dict[Key, bytes] = {}
        self._local_names: dict[tuple[bool, bytes], Key] = {}
        self._recent: collections.deque[bytes] = collections.deque()
        self._recent_set: set[bytes] = set()
        self._history: tuple[int, int, int] | None = None  # size, ttl ms, meta ttl ms
        self._echoes: dict[bytes, asyncio.Future[int]] = {}  # message id -> how many it reached here
        self._scripts: dict[str, Any] = {}
        self._removals: set[asyncio.Task[None]] = set()

    def bind(self, sink: Sink) -> None:
        super().bind(sink)
        self.logger = sink.logger

    @property
    def where(self) -> str:
        return self._where

    @property
    def up(self) -> bool:
        return self._up

    # -- lifecycle ------------------------------------------------------------------

    def _start(self) -> None:
        """Start connecting in the background; does nothing once started."""
        if self._task is not None or self._closed:
            return
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options: dict[str, Any] = {"socket_connect_timeout": 5.0, **self.options}
        options["decode_responses"] = False
        options.pop("retry", None)  # the hub manages retries (below)
        # The subscription connection reconnects with the hub's own backoff:
        # redis-py must report a failure at once, not retry behind its back.
        self._sub_client = redis.asyncio.Redis.from_url(self.url, **options, retry=Retry(NoBackoff(), 0))
        # Publishing retries once, on a fresh connection: a pooled one may be
        # stale (Redis restarted since it was last used).
        self._client = redis.asyncio.Redis.from_url(self.url, **options, retry=Retry(NoBackoff(), 1))
        self._lock = asyncio.Lock()
        self._attempted = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def start(self) -> None:
        """Start if needed, and wait until the first connection attempt has succeeded or failed.

        So that a hub used right away doesn't report Redis unreachable before
        it had a chance to connect.
        """
        self._start()
        if self._attempted is not None and not self._attempted.is_set():
            await self._attempted.wait()

    async def close(self) -> None:
        if self._removals:
            # Presence entries of connections that just left: let them go before disconnecting.
            await asyncio.wait(self._removals, timeout=self.subscribe_timeout)
        self._closed = True
        self._up = False
        for task in (self._task, self._flush_task):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._release_waiters()
        self._release_echoes()
        if self._attempted is not None:
            self._attempted.set()  # nobody waits for a first attempt that won't come
        if self._pubsub is not None:
            await self._drop(self._pubsub)
            self._pubsub = None
        for client in (self._client, self._sub_client):
            if client is not None:
                try:
                    await client.aclose()
                except Exception:  # pragma: no cover - best effort
                    pass

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        delays = None
        while not self._closed:
            pubsub = self._sub_client.pubsub()
            try:
                await self._connect(pubsub)
                delays = None
                self._attempted.set()  # type: ignore[union-attr]  # made by start(), before this task
                await self._read(pubsub)
            except asyncio.CancelledError:
                self._up = False
                if self._pubsub is pubsub:
                    self._pubsub = None
                await self._drop(pubsub)
                raise
            except Exception as exc:
                if not isinstance(exc, (RedisError, OSError, asyncio.TimeoutError, EOFError)):
                    self.logger.error("unexpected error on the Redis connection", exc_info=True)
                was_up = self._up
                self._up = False
                self._why = self._redact(str(exc)) or type(exc).__name__
                if self._pubsub is pubsub:
                    self._pubsub = None
                self._release_waiters()
                self._release_echoes()
                self._attempted.set()  # type: ignore[union-attr]  # made by start(), before this task
                await self._drop(pubsub)
                if delays is None:
                    delays = backoff(self.reconnect_initial, None, self.reconnect_max)
                delay = next(delays)
                if was_up:
                    self.logger.warning(
                        "lost Redis at %s: %s; publishing reaches this process only; reconnecting in %.1fs",
                        self._where,
                        self._why,
                        delay,
                    )
                else:
                    self.logger.warning("can't reach Redis at %s: %s; retrying in %.1fs", self._where, self._why, delay)
                await asyncio.sleep(delay)

    def _redact(self, text: str) -> str:
        """``text`` (an exception's message) without any password this hub knows of."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _drop(self, pubsub: Any) -> None:
        try:
            await pubsub.aclose()
        except Exception:  # pragma: no cover - the connection is already broken
            pass

    async def _connect(self, pubsub: Any) -> None:
        await pubsub.connect()
        # A fresh connection: tell Redis everything the hub has subscribers for.
        self._active.clear()
        self._confirmed.clear()
        self._confirmed_prefixes.clear()
        self._dirty.update(self.sink.names())
        self._pubsub = pubsub
        await pubsub.execute_command("PING")  # proves the connection works, even with nothing to subscribe
        await self._flush()
        # Publishing connections left from before an outage are stale.
        await self._client.connection_pool.disconnect(inuse_connections=False)
        self._up = True
        self.sink.reconnected()
        self.logger.info(
            "connected to Redis at %s; subscribed to %d topics and %d prefixes",
            self._where,
            *_counts(self.sink.names()),
        )

    def _release_waiters(self) -> None:
        """Nobody waits for a confirmation that won't come: the name is resubscribed on reconnection."""
        for future in self._confirm.values():
            if not future.done():
                future.set_result(None)
        self._confirm.clear()

    # -- subscriptions ------------------------------------------------------------------

    def _redis_name(self, key: Key) -> bytes:
        redis_name = self._redis_names.get(key)
        if redis_name is None:
            is_prefix, name = key
            if is_prefix:
                # The prefix is literal in Redis's glob syntax: escape it, then "*".
                redis_name = _GLOB_SPECIAL.sub(rb"\\\1", self.prefix + name.encode()) + b"*"
            else:
                redis_name = self.prefix + name.encode()  # SUBSCRIBE takes channel names literally
            self._redis_names[key] = redis_name
            self._local_names[(is_prefix, redis_name)] = key
        return redis_name

    def _forget(self, key: Key) -> None:
        redis_name = self._redis_names.pop(key, None)
        if redis_name is not None:
            self._local_names.pop((key[0], redis_name), None)

    def unsubscribe(self, is_prefix: bool, name: str) -> None:
        self._changed(is_prefix, name)

    def _changed(self, is_prefix: bool, name: str) -> None:
        """The hub's subscribers to the topic or prefix ``name`` went from none to some, or back."""
        self._dirty.add((is_prefix, name))
        if self._pubsub is not None and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_quietly())

    async def subscribe(self, is_prefix: bool, name: str) -> None:
        """Make sure Redis knows of the topic or prefix ``name``; wait for its confirmation if connected."""
        key = (is_prefix, name)
        if key in self._confirmed:
            return
        await self.start()
        self._changed(is_prefix, name)
        if not self._up or key in self._confirmed:
            return  # not connected: subscribed on (re)connection
        future = self._confirm.get(key)
        if future is None:
            future = self._confirm[key] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(future), self.subscribe_timeout)
        except asyncio.TimeoutError:
            self.logger.warning(
                "Redis at %s didn't confirm the subscription to %s %r within subscribe_timeout=%ss",
                self._where,
                "prefix" if is_prefix else "topic",
                name,
                self.subscribe_timeout,
            )

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except Exception as exc:
            # The connection broke: the reader sees it too, reconnects, resubscribes.
            self.logger.debug("subscription commands to Redis failed: %s", exc)

    async def _flush(self) -> None:
        """Send the subscription commands that make Redis match the hub's subscribers."""
        assert self._lock is not None
        async with self._lock:
            pubsub = self._pubsub
            while self._dirty and pubsub is not None and self._pubsub is pubsub:
                keys, self._dirty = self._dirty, set()
                commands: dict[str, list[bytes]] = {"SUBSCRIBE": [], "PSUBSCRIBE": [], "UNSUBSCRIBE": [], "PUNSUBSCRIBE": []}
                forget = []
                for key in keys:
                    is_prefix = key[0]
                    wanted = self.sink.has_subscribers(*key)
                    if wanted and key not in self._active:
                        commands["PSUBSCRIBE" if is_prefix else "SUBSCRIBE"].append(self._redis_name(key))
                        self._active.add(key)
                    elif not wanted and key in self._active:
                        commands["PUNSUBSCRIBE" if is_prefix else "UNSUBSCRIBE"].append(self._redis_name(key))
                        self._active.discard(key)
                        self._confirmed.discard(key)
                        if is_prefix:
                            self._confirmed_prefixes.discard(key[1])
                        forget.append(key)
                    elif not wanted:
                        forget.append(key)
                for key in forget:
                    future = self._confirm.pop(key, None)
                    if future is not None and not future.done():
                        future.set_result(None)
                for command, args in commands.items():
                    for i in range(0, len(args), _BATCH):
                        await pubsub.execute_command(command, *args[i : i + _BATCH])
                for key in forget:
                    if key not in self._active:
                        self._forget(key)

    # -- receiving ------------------------------------------------------------------------

    async def _read(self, pubsub: Any) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        interval = self.health_check_interval
        waiting_for_pong = False
        while True:
            response = await pubsub.parse_response(block=False, timeout=interval)
            if response is None:
                if waiting_for_pong:
                    raise RedisConnectionError(f"no answer to PING within health_check_interval={interval}s")
                waiting_for_pong = True
                await pubsub.execute_command("PING")
                continue
            waiting_for_pong = False
            try:
                self._received(response)
            except Exception:
                self.logger.exception("failed to handle a message from Redis: %r", response[:2])

    def _received(self, response: Any) -> None:
        if not isinstance(response, list) or not response:
            return  # PONG outside subscribed mode
        kind = response[0]
        if kind == b"message" or kind == b"smessage":
            channel, data = response[1], response[2]
        elif kind == b"pmessage":
            channel, data = response[2], response[3]
        elif kind == b"subscribe" or kind == b"psubscribe" or kind == b"ssubscribe":
            key = self._local_names.get((kind == b"psubscribe", response[1]))
            if key is not None and key in self._active:
                self._confirmed.add(key)
                if key[0]:
                    self._confirmed_prefixes.add(key[1])
                future = self._confirm.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(None)
            return
        else:
            return  # unsubscribe confirmations, pongs
        topic = self._topic_of(channel)
        if topic is None:
            return
        if data[:1] == wire.PRESENCE:
            self._presence_event(topic, data)
            return
        try:
            text, origin, message_id, payload, position = wire.decode_position(data)
        except ValueError as exc:
            self.logger.warning("ignored a message on %r that isn't from a wsio hub: %s", channel, exc)
            return
        if position is None and origin == self.origin:
            return  # our own: delivered locally when published
        recent = self._recent_set
        if message_id in recent:
            return  # the same message, through another matching subscription
        recent.add(message_id)
        self._recent.append(message_id)
        if len(self._recent) > _RECENT_IDS:
            recent.discard(self._recent.popleft())
        if position is None:
            self.sink.deliver(topic, text, payload)
            return
        reached = self.sink.deliver(topic, text, payload, Position(*position))
        if origin == self.origin:
            echo = self._echoes.pop(message_id, None)
            if echo is not None and not echo.done():
                echo.set_result(reached)

    def _presence_event(self, topic: str, data: bytes) -> None:
        """A join or leave event, published by a presence script: once, even if two subscriptions match."""
        message_id = data[1:17]
        if len(message_id) < 16 or message_id in self._recent_set:
            return
        self._recent_set.add(message_id)
        self._recent.append(message_id)
        if len(self._recent) > _RECENT_IDS:
            self._recent_set.discard(self._recent.popleft())
        self.sink.presence_event(topic, data[17:])

    def _channel(self, topic: str) -> bytes:
        """The Redis channel of a topic."""
        return self.prefix + topic.encode()

    def _topic_of(self, channel: bytes) -> str | None:
        """The topic of a Redis channel name, ``None`` for a channel that isn't one of this hub's."""
        if not channel.startswith(self.prefix):
            return None
        try:
            return channel[len(self.prefix) :].decode()
        except UnicodeDecodeError:
            return None

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, topic: str, text: bool, payload: bytes | bytearray | memoryview) -> None:
        from redis.exceptions import RedisError

        if self._closed:
            raise HubUnavailable("hub is closed")
        await self.start()
        if not self._up:
            raise HubUnavailable(f"Redis at {self._where} is unreachable ({self._why}): the message reached this process only")
        data = wire.encode(text, self.origin, next(self._seq), payload)
        try:
            await self._client.publish(self._channel(topic), data)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise HubUnavailable(
                f"can't publish to Redis at {self._where} ({self._redact(str(exc))}): the message reached this process only"
            ) from exc

    # -- history -----------------------------------------------------------------------------

    def keep_history(self, size: int, ttl: float, meta_ttl: float) -> None:
        self._history = (size, max(1, round(ttl * 1000)), max(1, round(meta_ttl * 1000)))

    def _keys(self, topic: str) -> list[bytes]:
        name = topic.encode()
        return [self.prefix + b"history:" + name, self.prefix + b"history-meta:" + name]

    def _release_echoes(self) -> None:
        for future in self._echoes.values():
            if not future.done():
                future.set_result(0)
        self._echoes.clear()

    def _hears(self, topic: str) -> bool:
        """Whether Redis sends this process the messages of ``topic`` (it confirmed a matching subscription)."""
        if (False, topic) in self._confirmed:
            return True
        return any(topic.startswith(prefix) for prefix in self._confirmed_prefixes)

    async def _script(self, source: str, keys: list[bytes], args: list[Any], doing: str, then: str = "") -> Any:
        """Run a script (loaded once); :exc:`HubUnavailable` if Redis is away or fails, saying what couldn't be done."""
        from redis.exceptions import RedisError

        if self._closed:
            raise HubUnavailable("hub is closed")
        await self.start()
        if not self._up:
            raise HubUnavailable(f"Redis at {self._where} is unreachable ({self._why}): can't {doing}{then}")
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise HubUnavailable(f"can't {doing} in Redis at {self._where} ({self._redact(str(exc))}){then}") from exc

    async def append(self, topic: str, text: bool, payload: bytes) -> tuple[Position, int]:
        if self._history is None:
            raise RuntimeError("keep_history() wasn't called")
        size, ttl, meta_ttl = self._history
        message_id = self.origin + next(self._seq).to_bytes(8, "big")
        # Our own message comes back from Redis, in its place among the others': wait for it.
        echo: asyncio.Future[int] | None = None
        if self._up and self._hears(topic):
            echo = self._echoes[message_id] = asyncio.get_running_loop().create_future()
        try:
            offset, epoch = await self._script(
                self._append_source,
                self._keys(topic),
                [
                    self._channel(topic),
                    size,
                    ttl,
                    meta_ttl,
                    new_epoch(),
                    wire.TEXT_AT if text else wire.BINARY_AT,
                    message_id,
                    payload,
                ],
                "publish",
                ": the message reached this process only",
            )
            position = Position(int(offset), epoch.decode())
            if echo is None:
                return position, 0
            try:
                reached = await asyncio.wait_for(asyncio.shield(echo), self.subscribe_timeout)
            except asyncio.TimeoutError:
                reached = 0
            return position, reached
        finally:
            self._echoes.pop(message_id, None)

    async def history(self, topic: str, since: int | None, limit: int) -> History:
        if self._history is None:
            raise RuntimeError("keep_history() wasn't called")
        size, ttl, meta_ttl = self._history
        epoch, top, entries = await self._script(
            _HISTORY,
            self._keys(topic),
            ["" if since is None else since, limit, size, ttl, meta_ttl, new_epoch()],
            "read history",
        )
        publications = [
            Publication(int(entry_id.rpartition(b"-")[2]), kind == wire.TEXT_AT, bytes(data)) for entry_id, kind, data in entries
        ]
        return History(epoch.decode(), int(top), publications)

    # -- presence --------------------------------------------------------------------------

    def _presence_keys(self, topic: str) -> list[bytes]:
        name = topic.encode()
        return [self.prefix + b"presence:" + name, self.prefix + b"presence-expiry:" + name]

    def _presence_args(self, topic: str, ttl: float = 0) -> list[Any]:
        """The first arguments of the presence scripts: the ttl, where events go, a fresh id for them."""
        return [max(1, round(ttl * 1000)), self._channel(topic), os.urandom(8)]

    async def presence_add(self, topic: str, entries: Mapping[str, str], ttl: float) -> None:
        args = self._presence_args(topic, ttl)
        for client_id, info in entries.items():
            args += [client_id, info]
        await self._script(self._presence_add_source, self._presence_keys(topic), args, "write presence")

    def presence_remove(self, topic: str, client_ids: Collection[str]) -> None:
        if self._closed or not client_ids:
            return

        async def remove() -> None:
            try:
                await self._script(
                    self._presence_remove_source,
                    self._presence_keys(topic),
                    [*self._presence_args(topic), *client_ids],
                    "remove presence",
                )
            except HubUnavailable as exc:
                # The entries expire by themselves.
                self.logger.debug("%s", exc)

        task = asyncio.get_running_loop().create_task(remove())
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def presence(self, topic: str) -> dict[str, str]:
        flat = await self._script(self._presence_source, self._presence_keys(topic), self._presence_args(topic), "read presence")
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
