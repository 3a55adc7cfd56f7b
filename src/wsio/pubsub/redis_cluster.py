"""The hub's Redis Cluster backend: sharded pub/sub, and every key of a topic on its channel's slot.

``Hub("redis+cluster://host1:port1,host2:port2")`` (``rediss+cluster://`` for
TLS; any node of the cluster will do, more are tried in turn) spreads topics
over the cluster's masters:

- a topic's channel is ``{channel_prefix}{{topic}}``, published with
  ``SPUBLISH`` and received with ``SSUBSCRIBE`` (Redis 7 or later): a message
  travels only within the shard that serves the channel's slot, not across the
  whole cluster as ``PUBLISH`` does;
- its history and presence keys, ``{channel_prefix}{{topic}}:history``,
  ``...:history-meta``, ``...:presence`` and ``...:presence-expiry``, carry
  the same hash tag, so they live on that slot too, and one script can add a
  message to the history and publish it (a script may touch the keys of one
  slot only). A topic that starts with ``}`` or ``~`` gets a ``~`` in front
  inside the braces, so that the hash tag is never empty.

Subscriptions: one connection per master that serves a topic this process has
subscribers for, found from ``CLUSTER SLOTS``. redis-py's cluster client
publishes and runs the scripts (it follows the slots as they move); the
subscription connections are this module's, so that each is read by its own
task as soon as a message comes, with the hub's health checks and backoff.

When a subscription connection breaks (its master died), or Redis says that a
slot moved (an ``sunsubscribe`` the hub didn't ask for: only that topic
moves), the backend reads the slots again, with backoff, until every topic is
subscribed on the master that now serves it (a replica that took over);
meanwhile :attr:`up` is false. Then the hub fills from history what its topics
may have missed.

There are no prefix subscriptions: sharded pub/sub has no patterns.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from .errors import HubUnavailable
from .redis_link import _APPEND, _PRESENCE, _PRESENCE_ADD, _PRESENCE_REMOVE, Key, RedisBackend

__all__ = ["ClusterBackend", "is_cluster_url"]

#: The number of hash slots of a Redis Cluster.
SLOTS = 16384

_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

Address = tuple[str, int]


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in _SCHEMES


def _tag(topic: str) -> str:
    """What goes between the braces of a topic's names: the topic, never an empty hash tag."""
    return "~" + topic if topic[:1] in ("}", "~") else topic


def _untag(tag: str) -> str:
    return tag[1:] if tag[:1] == "~" else tag


def _sharded(script: str) -> str:
    """A script that publishes to its topic's channel, with SPUBLISH: within the shard of its keys' slot."""
    assert "redis.call('PUBLISH'" in script
    return script.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")


class _Link:
    """A subscription connection to one master, and the topics it was told of."""

    __slots__ = ("address", "client", "pubsub", "task", "topics")

    def __init__(self, address: Address) -> None:
        self.address = address
        self.client: Any = None
        self.pubsub: Any = None
        self.task: asyncio.Task[None] | None = None
        self.topics: set[str] = set()


class ClusterBackend(RedisBackend):
    """Relays a :class:`~wsio.pubsub.Hub`'s messages through a Redis Cluster (see the module's docstring)."""

    _append_source = _sharded(_APPEND)
    _presence_add_source = _sharded(_PRESENCE_ADD)
    _presence_remove_source = _sharded(_PRESENCE_REMOVE)
    _presence_source = _sharded(_PRESENCE)
    prefixes = False

    def __init__(self, url: str, *, channel_prefix: str, **options: Any) -> None:
        if "{" in channel_prefix or "}" in channel_prefix:
            raise ValueError(f"on Redis Cluster, channel_prefix can't hold braces (they mark hash tags): {channel_prefix!r}")
        super().__init__(url, channel_prefix=channel_prefix, **options)
        parts = urllib.parse.urlsplit(url)
        self._scheme = _SCHEMES[parts.scheme.lower()]
        userinfo, at, hostports = parts.netloc.rpartition("@")
        self._userinfo = userinfo + at
        self._tail = parts.path + (f"?{parts.query}" if parts.query else "")
        seeds: list[Address] = []
        for hostport in hostports.split(","):
            split = urllib.parse.urlsplit(f"//{hostport}")
            if not split.hostname:
                raise ValueError(f"no host in {self.where}")
            seeds.append((split.hostname, split.port or 6379))
        self._seeds = seeds
        self._known: list[Address] = list(seeds)  # nodes to ask for the slots, seeds first
        self._slots: list[Address] = []  # slot -> the master serving it; empty until known
        self._links: dict[Address, _Link] = {}
        self._owner: dict[str, Address] = {}  # topic -> the master it is subscribed on
        self._trouble: asyncio.Event | None = None

    def _node_url(self, address: Address) -> str:
        host, port = address
        if ":" in host:
            host = f"[{host}]"
        return f"{self._scheme}://{self._userinfo}{host}:{port}{self._tail}"

    # -- names --------------------------------------------------------------------------

    def _channel(self, topic: str) -> bytes:
        return self.prefix + b"{" + _tag(topic).encode() + b"}"

    def _topic_of(self, channel: bytes) -> str | None:
        prefix = self.prefix
        if not (channel.startswith(prefix + b"{") and channel.endswith(b"}")):
            return None
        try:
            return _untag(channel[len(prefix) + 1 : -1].decode())
        except UnicodeDecodeError:
            return None

    def _redis_name(self, key: Key) -> bytes:
        redis_name = self._redis_names.get(key)
        if redis_name is None:
            redis_name = self._redis_names[key] = self._channel(key[1])
            self._local_names[(False, redis_name)] = key
        return redis_name

    def _keys(self, topic: str) -> list[bytes]:
        channel = self._channel(topic)
        return [channel + b":history", channel + b":history-meta"]

    def _presence_keys(self, topic: str) -> list[bytes]:
        channel = self._channel(topic)
        return [channel + b":presence", channel + b":presence-expiry"]

    def _master_of(self, topic: str) -> Address:
        from redis.crc import key_slot

        return self._slots[key_slot(self._channel(topic))]

    # -- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is not None or self._closed:
            return
        import inspect

        import redis.asyncio
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        options: dict[str, Any] = {"socket_connect_timeout": 5.0, **self.options}
        options["decode_responses"] = False
        # redis_options go to redis-py's cluster client (which publishes, and retries as they say);
        # the subscription connections take those a single connection knows, without retries.
        known = inspect.signature(redis.asyncio.Redis.__init__).parameters
        self._link_options = {name: value for name, value in options.items() if name in known and name != "retry"}
        host, port = self._seeds[0]
        self._client = RedisCluster.from_url(
            self._node_url((host, port)),
            startup_nodes=[ClusterNode(h, p) for h, p in self._seeds[1:]],
            **options,
        )
        self._lock = asyncio.Lock()
        self._attempted = asyncio.Event()
        self._trouble = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        await super().close()
        links, self._links = list(self._links.values()), {}
        for link in links:
            await self._drop_link(link)
        tasks = [link.task for link in links if link.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=1)

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        from .._client_common import backoff

        assert self._trouble is not None and self._attempted is not None
        delays = None
        while not self._closed:
            try:
                self._trouble.clear()
                await self._discover()
                self._dirty.update((False, topic) for is_prefix, topic in self.sink.names() if not is_prefix)
                await self._flush()
                if self._trouble.is_set():
                    raise HubUnavailable(self._why)  # a connection broke at once: after a delay, again
                delays = None
                was_up, self._up = self._up, True
                self._attempted.set()
                if not was_up:
                    self.sink.reconnected()
                    self.logger.info(
                        "connected to Redis Cluster at %s: %d masters; subscribed to %d topics",
                        self._where,
                        len(set(self._slots)),
                        len(self._owner),
                    )
                await self._trouble.wait()
                self._up = False
            except asyncio.CancelledError:
                self._up = False
                raise
            except Exception as exc:
                if not isinstance(exc, (RedisError, OSError, asyncio.TimeoutError, EOFError)):
                    self.logger.error("unexpected error on the Redis Cluster connections", exc_info=True)
                self._up = False
                self._why = self._redact(str(exc)) or type(exc).__name__
                self._release_waiters()
                self._release_echoes()
                self._attempted.set()
                if delays is None:
                    delays = backoff(self.reconnect_initial, None, self.reconnect_max)
                delay = next(delays)
                self.logger.warning("can't reach Redis Cluster at %s: %s; retrying in %.1fs", self._where, self._why, delay)
                await asyncio.sleep(delay)

    async def _discover(self) -> None:
        """Read which master serves each slot (``CLUSTER SLOTS``), from the first node that answers."""
        import redis.asyncio

        error: Exception | None = None
        for address in list(self._known):
            client: Any = redis.asyncio.Redis.from_url(self._node_url(address), **self._link_options)
            try:
                ranges = await asyncio.wait_for(client.execute_command("CLUSTER", "SLOTS"), self.subscribe_timeout)
            except Exception as exc:
                error = exc
                continue
            finally:
                await client.aclose()
            slots: list[Address | None] = [None] * SLOTS
            for start, end, master, *replicas in ranges:
                owner = (master[0].decode() or address[0], int(master[1]))
                for slot in range(int(start), int(end) + 1):
                    slots[slot] = owner
                for node in (master, *replicas):
                    found = (node[0].decode() or address[0], int(node[1]))
                    if found not in self._known:
                        self._known.append(found)
            if None in slots:
                error = HubUnavailable(
                    f"Redis Cluster at {self._where} doesn't serve every slot (as {address[0]}:{address[1]} sees it)"
                )
                continue
            self._slots = slots  # type: ignore[assignment]  # no None left
            return
        assert error is not None
        raise error

    async def _link(self, address: Address) -> _Link:
        """The subscription connection to a master, connected (once)."""
        link = self._links.get(address)
        if link is not None:
            return link
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        link = _Link(address)
        link.client = redis.asyncio.Redis.from_url(self._node_url(address), **self._link_options, retry=Retry(NoBackoff(), 0))
        link.pubsub = link.client.pubsub()
        try:
            await link.pubsub.connect()
        except BaseException:
            await self._drop_link(link)
            raise
        self._links[address] = link
        link.task = asyncio.get_running_loop().create_task(self._read_link(link))
        return link

    async def _drop_link(self, link: _Link) -> None:
        if link.task is not None and link.task is not asyncio.current_task() and not link.task.done():
            link.task.cancel()
        for resource in (link.pubsub, link.client):
            if resource is not None:
                try:
                    await resource.aclose()
                except Exception:  # pragma: no cover - the connection is already broken
                    pass

    def _resubscribe(self, link: _Link, topic: str) -> None:
        """Forget that ``link`` serves ``topic`` and mark it to be subscribed again where the cluster serves it now."""
        if self._owner.get(topic) == link.address:
            del self._owner[topic]
        key = (False, topic)
        self._confirmed.discard(key)
        self._active.discard(key)
        self._dirty.add(key)

    def _lost(self, link: _Link, why: str) -> None:
        """A master's connection broke: its topics are resubscribed where they are now (a slot that moves: :meth:`_moved`)."""
        if self._links.get(link.address) is link:
            del self._links[link.address]
        for topic in link.topics:
            self._resubscribe(link, topic)
        link.topics.clear()
        if self._up:
            self.logger.warning(
                "lost Redis at %s:%d (%s); subscribing its topics again where the cluster serves them", *link.address, why
            )
        self._why = why
        self._up = False
        self._release_waiters()
        self._release_echoes()
        if self._trouble is not None:
            self._trouble.set()

    def _moved(self, link: _Link, topic: str) -> None:
        """Redis unsubscribed this process from a topic's channel: its slot moved to another master (resharding)."""
        link.topics.discard(topic)
        self._resubscribe(link, topic)
        self.logger.info("the slot of %r left %s:%d; subscribing to it where the cluster serves it now", topic, *link.address)
        # Down until it is subscribed again: then the hub fills from history what it missed meanwhile.
        self._up = False
        if self._trouble is not None:
            self._trouble.set()

    async def _read_link(self, link: _Link) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        interval = self.health_check_interval
        waiting_for_pong = False
        try:
            await link.pubsub.execute_command("PING")
            while True:
                response = await link.pubsub.parse_response(block=False, timeout=interval)
                if response is None:
                    if waiting_for_pong:
                        raise RedisConnectionError(f"no answer to PING within health_check_interval={interval}s")
                    waiting_for_pong = True
                    await link.pubsub.execute_command("PING")
                    continue
                waiting_for_pong = False
                if isinstance(response, list) and response and response[0] == b"sunsubscribe":
                    topic = self._topic_of(response[1])
                    if topic is not None and topic in link.topics:
                        self._moved(link, topic)
                    continue
                try:
                    self._received(response)
                except Exception:
                    self.logger.exception("failed to handle a message from Redis: %r", response[:2])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost(link, self._redact(str(exc)) or type(exc).__name__)
            await self._drop_link(link)

    # -- subscriptions ------------------------------------------------------------------

    def _changed(self, is_prefix: bool, name: str) -> None:
        self._dirty.add((is_prefix, name))
        if self._slots and self._up and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except Exception as exc:
            self.logger.debug("subscription commands to Redis Cluster failed: %s", exc)
            if self._trouble is not None:
                self._trouble.set()

    async def _flush(self) -> None:
        """Send the SSUBSCRIBE / SUNSUBSCRIBE commands that make each master match the hub's subscribers."""
        from redis.crc import key_slot

        assert self._lock is not None
        async with self._lock:
            while self._dirty and self._slots:
                keys, self._dirty = self._dirty, set()
                # (master, slot) -> topics: one command per slot (several channels must share theirs).
                subscribe: dict[tuple[Address, int], list[str]] = {}
                unsubscribe: dict[tuple[Address, int], list[str]] = {}
                forget = []
                for key in keys:
                    is_prefix, topic = key
                    if is_prefix:
                        continue  # refused by the hub: sharded pub/sub has no patterns
                    wanted = self.sink.has_subscribers(False, topic)
                    owner = self._owner.get(topic)
                    target = self._master_of(topic) if wanted else None
                    slot = key_slot(self._channel(topic))
                    if owner == target and owner in self._links:
                        continue
                    if owner is not None:
                        del self._owner[topic]
                        self._active.discard(key)
                        self._confirmed.discard(key)
                        link = self._links.get(owner)
                        if link is not None:
                            link.topics.discard(topic)
                            unsubscribe.setdefault((owner, slot), []).append(topic)
                    if target is not None:
                        subscribe.setdefault((target, slot), []).append(topic)
                    else:
                        forget.append(key)
                for key in forget:
                    future = self._confirm.pop(key, None)
                    if future is not None and not future.done():
                        future.set_result(None)
                for (address, _), topics in unsubscribe.items():
                    link = self._links.get(address)
                    if link is not None:
                        await link.pubsub.execute_command("SUNSUBSCRIBE", *map(self._redis_name, [(False, t) for t in topics]))
                for key in forget:
                    if key[1] not in self._owner:
                        self._forget(key)
                failed: Exception | None = None
                for (address, _), topics in subscribe.items():
                    try:
                        link = await self._link(address)
                        names = [self._redis_name((False, topic)) for topic in topics]
                        for topic in topics:
                            self._owner[topic] = address
                            self._active.add((False, topic))
                            link.topics.add(topic)
                        await link.pubsub.execute_command("SSUBSCRIBE", *names)
                    except Exception as exc:
                        failed = exc
                        for topic in topics:
                            self._owner.pop(topic, None)
                            self._dirty.add((False, topic))
                if failed is not None:
                    raise failed

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, topic: str, text: bool, payload: bytes | bytearray | memoryview) -> None:
        from redis.exceptions import RedisError

        from . import wire

        if self._closed:
            raise HubUnavailable("hub is closed")
        await self.start()
        data = wire.encode(text, self.origin, next(self._seq), payload)
        # Not only while up: a master that failed makes its own topics unavailable, not the others'.
        try:
            await self._client.spublish(self._channel(topic), data)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise HubUnavailable(
                f"can't publish to Redis Cluster at {self._where} ({self._redact(str(exc))}): the message reached this process only"
            ) from exc

    async def _script(self, source: str, keys: list[bytes], args: list[Any], doing: str, then: str = "") -> Any:
        from redis.exceptions import RedisError

        if self._closed:
            raise HubUnavailable("hub is closed")
        await self.start()
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise HubUnavailable(f"can't {doing} in Redis Cluster at {self._where} ({self._redact(str(exc))}){then}") from exc
