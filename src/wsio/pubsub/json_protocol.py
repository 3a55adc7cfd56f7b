"""A JSON protocol for browser clients of a :class:`~wsio.pubsub.Hub`: :func:`handle`.

::

    async def handler(ws):
        await wsio.pubsub.json_protocol.handle(hub, ws, can_subscribe=lambda ws, topic: topic.startswith("room:"))

Every message is a JSON object with a ``"type"``. What the client sends may
carry an ``"id"`` (any JSON value), repeated in the answer.

Client to server::

    {"type": "subscribe", "topic": "room:1"}
    {"type": "subscribe", "topic": "room:1", "offset": 41, "epoch": "9f3c..."}   come back after offset 41
    {"type": "recover", "topic": "room:1", "offset": 41, "epoch": "9f3c..."}     fill a gap (already subscribed)
    {"type": "unsubscribe", "topic": "room:1"}
    {"type": "publish", "topic": "room:1", "data": "hello"}                       text; "b64": "..." for binary
    {"type": "presence", "topic": "room:1"}                                       who is there
    {"type": "subscribe", "topic": "room:1", "presence_events": true}             and who joins and leaves

Server to client::

    {"type": "pub", "topic": "room:1", "data": "hello", "offset": 42, "epoch": "9f3c..."}
    {"type": "subscribed", "topic": "room:1", "recovered": true, "offset": 44, "epoch": "9f3c...", "missed": 3}
    {"type": "unsubscribed", "topic": "room:1"}
    {"type": "published", "topic": "room:1"}
    {"type": "presence", "topic": "room:1", "clients": {"5f0c...": {"user": "alice"}}}
    {"type": "join", "topic": "room:1", "client": "5f0c...", "info": {"user": "alice"}, "count": 2}
    {"type": "leave", "topic": "room:1", "client": "5f0c...", "info": {"user": "alice"}, "count": 1}
    {"type": "error", "error": "not allowed", "topic": "room:1"}

A publication (``"pub"``) holds ``"data"`` (a text message) or ``"b64"`` (a
binary one, base64), and, on a hub with history, its ``"offset"`` in its topic
and the topic's ``"epoch"``. The answer to ``subscribe`` (and ``recover``)
comes *after* the publications it recovered: those the client missed after
the ``offset`` it sent, in order; then every live publication follows, none
twice. ``"recovered": false`` means they couldn't all be sent (the history no
longer reaches back, or the epoch changed: the history was lost), or that the
client sent no offset: it must reload its state, and go on from the
``offset`` and ``epoch`` of the answer. ``"offset"`` and ``"epoch"`` appear
only on a hub with history (``history_size``); ``"epoch"`` is ``""`` when the
history couldn't be read.

The client keeps, per topic, the offset and epoch of the last publication it
handled. If a publication's offset isn't the previous one plus one (in the
same epoch), some were lost on the way (a slow client, an outage of Redis):
send ``recover`` with the last offset it handled. After a reconnection, send
``subscribe`` with it.

Topics a client may subscribe to and publish to are the application's
choice: ``can_subscribe`` and ``can_publish`` (callables ``(connection,
topic) -> bool``, or coroutines). By default, a client may do neither: a
topic comes from the client, and each one it subscribes to costs memory (its
history's epoch, in this process or in Redis, for ``history_meta_ttl``).

``presence``, a callable ``(connection, topic) -> value`` (or a coroutine),
says what other clients see of this one in the topic's presence while it is
subscribed (``None``: nothing), for instance ``{"user": name}`` from the
application's session: never what the client claims. Asking for a topic's
presence is allowed to those who may subscribe to it. A client that subscribes
with ``"presence_events": true`` also gets ``join`` and ``leave`` events for
the topic, from every process, with the presence's ``count`` after each; the
entries of a server process that died leave once ``presence_ttl`` has passed.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from typing import Any, Awaitable, Callable, Union

from ..asyncio.connection import BaseConnection, Connection
from ..exceptions import ConnectionClosed
from .errors import HubUnavailable
from .hub import Hub, Position

__all__ = ["handle"]

Check = Callable[[BaseConnection, str], Union[bool, Awaitable[bool]]]
Describe = Callable[[BaseConnection, str], Any]


def _nobody(connection: BaseConnection, topic: str) -> bool:
    return False


async def _allowed(check: Check, connection: BaseConnection, topic: str) -> bool:
    result = check(connection, topic)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


async def handle(
    hub: Hub,
    connection: Connection,
    *,
    can_subscribe: Check = _nobody,
    can_publish: Check = _nobody,
    presence: Describe | None = None,
) -> None:
    """Serve the JSON protocol on ``connection`` until it closes (see the module's docstring)."""
    try:
        async for message in connection:
            answer = await _answer(hub, connection, message, can_subscribe, can_publish, presence)
            await connection.send(json.dumps(answer, ensure_ascii=False, separators=(",", ":")))
    except ConnectionClosed:
        pass


async def _answer(
    hub: Hub,
    connection: BaseConnection,
    message: str | bytes,
    can_subscribe: Check,
    can_publish: Check,
    presence: Describe | None,
) -> dict[str, Any]:
    try:
        command = json.loads(message)
    except ValueError:
        return {"type": "error", "error": "not JSON"}
    if not isinstance(command, dict):
        return {"type": "error", "error": "not a JSON object"}
    answer: dict[str, Any] = {}
    if "id" in command:
        answer["id"] = command["id"]
    kind = command.get("type")
    if kind not in ("subscribe", "recover", "unsubscribe", "publish", "presence"):
        return {"type": "error", "error": f"unknown type {kind!r}", **answer}
    topic = command.get("topic")
    if type(topic) is not str or not topic:
        return {"type": "error", "error": "no topic", **answer}
    answer["topic"] = topic
    if kind == "subscribe" or kind == "recover":
        offset, epoch = command.get("offset"), command.get("epoch")
        recover: Position | None = None
        if offset is not None or epoch is not None:
            if type(offset) is not int or offset < 0 or type(epoch) is not str:
                return {"type": "error", "error": "offset must be an integer >= 0 and epoch a string", **answer}
            recover = Position(offset, epoch)
        elif kind == "recover":
            return {"type": "error", "error": "recover needs an offset and an epoch", **answer}
        if not await _allowed(can_subscribe, connection, topic):
            return {"type": "error", "error": "not allowed", **answer}
        info = None
        if presence is not None:
            info = presence(connection, topic)
            if inspect.isawaitable(info):
                info = await info
        events = command.get("presence_events", False)
        if type(events) is not bool:
            return {"type": "error", "error": "presence_events must be true or false", **answer}
        result = await hub.subscribe(connection, topic, recover=recover, envelope=True, presence=info, presence_events=events)
        answer = {"type": "subscribed", **answer}
        if result is None:
            answer["recovered"] = False
        else:
            answer.update(recovered=result.recovered, offset=result.offset, epoch=result.epoch, missed=result.missed)
        return answer
    if kind == "unsubscribe":
        await hub.unsubscribe(connection, topic)
        return {"type": "unsubscribed", **answer}
    if kind == "presence":
        if not await _allowed(can_subscribe, connection, topic):
            return {"type": "error", "error": "not allowed", **answer}
        try:
            clients = await hub.presence(topic)
        except HubUnavailable as exc:
            return {"type": "error", "error": "unavailable", "why": str(exc), **answer}
        return {"type": "presence", **answer, "clients": clients}
    data: str | bytes
    if type(command.get("data")) is str:
        data = command["data"]
    elif type(command.get("b64")) is str:
        try:
            data = base64.b64decode(command["b64"], validate=True)
        except binascii.Error:
            return {"type": "error", "error": "b64 isn't base64", **answer}
    else:
        return {"type": "error", "error": 'publish needs "data" (a string) or "b64"', **answer}
    if not await _allowed(can_publish, connection, topic):
        return {"type": "error", "error": "not allowed", **answer}
    try:
        await hub.publish(topic, data)
    except HubUnavailable as exc:
        return {"type": "error", "error": "unavailable", "why": str(exc), **answer}
    return {"type": "published", **answer}
