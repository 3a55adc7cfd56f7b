"""A server's connections made by makers (wsio.asyncio.server.ServerRole.maker): copies of one
built once, with the C accelerator, that must be what the constructor would have made."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

import wsio
from wsio.asyncio.listener import ListenerServerConnection
from wsio.asyncio.server import ServerConnection, _connection_maker
from wsio.protocol.machine import ServerProtocol, clone_slots

# The objects the connections' __init__ may make, which no two connections may share.
MUTABLE = (list, dict, set, bytearray, asyncio.Future)


def slot_values(obj: Any) -> dict[str, Any]:
    names = [name for klass in type(obj).__mro__ for name in getattr(klass, "__slots__", ())]
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        connection.send(message)


async def handler(connection: Any) -> None:
    async for message in connection:
        await connection.send(message)


def make(create: Any) -> tuple[Any, Any, Any, Any]:
    """Two connections from create's maker and one from its constructor, as serve() would make them."""
    server = wsio.serve(handler, "127.0.0.1", 0)._server
    protocol_kwargs: dict[str, Any] = dict(subprotocols=["chat"], max_size=1000)
    connection_kwargs: dict[str, Any] = dict(ping_interval=5, close_timeout=3, max_queue=8)
    new_protocol = ServerProtocol.maker(**protocol_kwargs)
    new = _connection_maker(create, server, connection_kwargs, new_protocol())
    return new(new_protocol()), new(new_protocol()), create(server, ServerProtocol(**protocol_kwargs), **connection_kwargs), new


@pytest.mark.parametrize(
    "create",
    [ServerConnection, functools.partial(ListenerServerConnection, listener_factory=Echo)],
    ids=["coroutine", "listener"],
)
async def test_a_made_connection_is_what_the_constructor_makes(create: Any) -> None:
    first, second, built, new = make(create)
    # With the accelerator, copies: what this test is about (else the constructor, which it checks as well).
    assert isinstance(new, functools.partial) is (clone_slots is None)
    for made in (first, second):
        assert type(made) is type(built)
        values, expected = slot_values(made), slot_values(built)
        assert values.keys() == expected.keys()
        for name, value in values.items():
            assert type(value) is type(expected[name]), name
            if name in ("protocol", "listener"):  # its own, checked below
                continue
            if not isinstance(value, MUTABLE):
                assert value == expected[name], name
        assert made.protocol.defer_failures is True  # as __init__ sets it on its protocol
    assert first.protocol is not second.protocol
    assert getattr(first, "listener", None) is not getattr(second, "listener", 0)
    # Settings are the objects passed (as the constructor has them); the state is each connection's own.
    shared = [
        name
        for name, value in slot_values(first).items()
        if isinstance(value, MUTABLE) and value is getattr(second, name) and value is not getattr(built, name, None)
    ]
    assert shared == []


async def test_a_subclass_with_its_own_init_is_built_by_it() -> None:
    class Counted(ServerConnection):
        made = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            type(self).made += 1
            self.extra = "mine"  # a __dict__ too

    first, second, _, _ = make(Counted)
    assert Counted.made == 3  # the two made and the one built: no prototype
    assert first.extra == second.extra == "mine"


async def test_the_listener_factory_is_called_once_per_connection_only() -> None:
    """No listener is made for the connection the others are copies of: a factory may count, or register."""
    listeners: list[wsio.Listener] = []

    def factory() -> wsio.Listener:
        listeners.append(Echo())
        return listeners[-1]

    async with wsio.serve_listener(factory, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        for message in ("one", "two", "three"):
            async with wsio.connect(f"ws://127.0.0.1:{port}") as client:
                await client.send(message)
                assert await client.recv() == message
    assert len(listeners) == 3 and len(set(map(id, listeners))) == 3
