"""The chat demo's subscriptions in the hub's JSON protocol (what hub-client.js sends): its room only, recovery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import wsio

from .test_chat_demo import ask, demo, heard

pytestmark = pytest.mark.timeout(90)


async def call(ws: wsio.ClientConnection, command: dict[str, Any]) -> list[dict[str, Any]]:
    """Send a command; what comes until its answer (publications, then a subscribed or error answer)."""
    await ws.send(json.dumps(command))
    events = []
    while not events or events[-1]["type"] not in ("subscribed", "error"):
        events.append(json.loads(await ws.recv(timeout=5)))  # type: ignore[arg-type]
    return events


async def ask_page(ws: wsio.ClientConnection, request: dict[str, Any], expect: str) -> dict[str, Any]:
    """As ask(), skipping publications too."""
    await ws.send(json.dumps(request))
    while True:
        answer: dict[str, Any] = json.loads(await ws.recv(timeout=5))  # type: ignore[arg-type]
        if answer["type"] == expect:
            return answer
        assert answer["type"] in ("pub", "notice", "renamed"), answer


def said(events: list[dict[str, Any]]) -> list[str]:
    """The chat messages (not notices) in these publications."""
    chat = [json.loads(event["data"]) for event in events if event["type"] == "pub"]
    return [event["text"] for event in chat if event["type"] == "message"]


async def test_a_page_subscribes_to_its_room_and_comes_back_where_it_left() -> None:
    async with demo() as server:
        alice = await server.client()
        joined = await ask_page(alice, {"type": "join", "name": "alice", "room": "lobby", "subscribe": False}, "joined")
        assert joined == {"type": "joined", "room": "lobby", "topic": "room:lobby"}
        # Its room's topic only.
        for topic in ("room:other", "room:lobby*", "room:", "lobby"):
            [error] = await call(alice, {"type": "subscribe", "topic": topic})
            assert error == {"type": "error", "text": "join a room, then subscribe to its topic, room:NAME", "topic": topic}
        [answer] = await call(alice, {"type": "subscribe", "topic": "room:lobby"})
        assert answer["recovered"] is False and answer["topic"] == "room:lobby"
        epoch, start = answer["epoch"], answer["offset"]
        bob = await server.client()
        await ask(bob, {"type": "join", "name": "bob", "room": "lobby"}, "joined")  # as before: raw messages
        for text in ("one", "two", "three"):
            await ask(bob, {"type": "say", "text": text}, "message")
        pubs = [event for event in await heard(alice) if event["type"] == "pub"]
        assert said(pubs)[-3:] == ["one", "two", "three"]
        assert all(pub["epoch"] == epoch and pub["topic"] == "room:lobby" for pub in pubs)
        offsets = [pub["offset"] for pub in pubs]
        assert offsets == list(range(start + 1, start + 1 + len(pubs)))
        # Gone after "one"; back on a new connection, from there.
        one = pubs[-3]["offset"]
        await alice.close()
        await ask(bob, {"type": "say", "text": "four"}, "message")
        alice = await server.client()
        await ask_page(alice, {"type": "join", "name": "alice", "room": "lobby", "subscribe": False}, "joined")
        events = await call(alice, {"type": "subscribe", "topic": "room:lobby", "offset": one, "epoch": epoch})
        assert said(events)[:3] == ["two", "three", "four"]
        assert events[-1]["recovered"] is True and events[-1]["missed"] == len(events) - 1
        # recover, bad positions, and a connection that gets raw messages.
        events = await call(alice, {"type": "recover", "topic": "room:lobby", "offset": one, "epoch": epoch})
        assert said(events)[:3] == ["two", "three", "four"] and events[-1]["recovered"] is True
        for bad in (
            {"offset": -1, "epoch": epoch},
            {"offset": "1", "epoch": epoch},
            {"offset": 1},
            {"epoch": "x" * 65, "offset": 1},
        ):
            [error] = await call(alice, {"type": "subscribe", "topic": "room:lobby", **bad})
            assert error["text"] == "offset must be an integer >= 0 and epoch a string", bad
        [error] = await call(alice, {"type": "recover", "topic": "room:lobby"})
        assert error["text"] == "recover needs an offset and an epoch"
        *_, error = await call(bob, {"type": "subscribe", "topic": "room:lobby"})  # after notices, as they are
        assert 'join with "subscribe": false' in error["text"]
        answer = await ask_page(alice, {"type": "join", "room": "lobby", "name": "alice2", "subscribe": "no"}, "error")
        assert answer["text"] == "subscribe is true or false"
        # Another room: the old room's topic is left.
        await ask_page(alice, {"type": "join", "room": "elsewhere", "subscribe": False}, "joined")
        await ask(bob, {"type": "say", "text": "not for alice"}, "message")
        assert not any("not for alice" in json.dumps(event) for event in await heard(alice))
        assert (await ask_page(alice, {"type": "unsubscribe", "topic": "room:lobby"}, "unsubscribed"))["topic"] == "room:lobby"
        await alice.close()
        await bob.close()
        log = server.logged()
    assert "Traceback" not in log, log


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_page_takes_its_name_back_with_its_token(request: pytest.FixtureRequest, backend: str) -> None:
    args = ("--redis", request.getfixturevalue("redis_server").url) if backend == "redis" else ()
    async with demo(*args) as server:
        old = await wsio.connect(server.url, open_timeout=5)
        hello = json.loads(await old.recv(timeout=5))  # type: ignore[arg-type]
        token = hello["token"]
        assert len(token) >= 16
        await ask_page(old, {"type": "join", "name": "alice", "room": "lobby"}, "joined")
        # Someone else, with no token, a wrong one, or a malformed one: refused.
        mallory = await server.client()
        for wrong in ({}, {"token": "A" * 22}):
            answer = await ask_page(mallory, {"type": "join", "name": "alice", "room": "lobby", **wrong}, "error")
            assert "already called alice" in answer["text"]
        for malformed in ("short", 42, "x" * 65, "bad token with spaces"):
            answer = await ask_page(mallory, {"type": "join", "name": "alice", "room": "lobby", "token": malformed}, "error")
            assert answer["text"] == "a token is the one hello gave"
        # The page, reconnected while its old connection lingers: it takes the name over.
        new = await server.client()
        await ask_page(new, {"type": "join", "name": "alice", "room": "lobby", "token": token}, "joined")
        await old.close()  # its release leaves the name to the new connection
        await asyncio.sleep(0.3)
        answer = await ask_page(mallory, {"type": "join", "name": "Alice", "room": "lobby"}, "error")
        assert "already called Alice" in answer["text"]
        # The token counts on a connection's first join only.
        await ask_page(mallory, {"type": "join", "name": "mallory", "room": "lobby"}, "joined")
        answer = await ask_page(mallory, {"type": "join", "name": "alice", "room": "lobby", "token": token}, "error")
        assert "already called alice" in answer["text"]
        for ws in (new, mallory):
            await ws.close()
