"""Print what is said in a room of the chat, through reconnections: :class:`wsio.pubsub.client.HubClient`.

    python examples/chat/listen.py ws://127.0.0.1:8765/chat lobby

It joins the room, then subscribes to its topic; after a reconnection it
comes back where it left off (the chat keeps each room's last messages).
"""

from __future__ import annotations

import asyncio
import json
import sys

from wsio.pubsub.client import HubClient, Message


def listener(uri: str, room: str) -> HubClient:
    def join() -> list[str]:
        # On each connection, before the subscription: the chat lets a connection
        # subscribe to the room it joined only.
        return [json.dumps({"type": "join", "room": room, "subscribe": False})]

    def show(message: Message) -> None:
        event = json.loads(message.data)
        separator = ": " if event["type"] == "message" else " "
        print(f"{event['name']}{separator}{event['text']}", flush=True)

    def lost(topic: str) -> None:
        print(f"(history of {topic} lost: messages may be missing)", flush=True)

    return HubClient(uri, [f"room:{room}"], on_message=show, on_lost=lost, on_open=join)


if __name__ == "__main__":
    asyncio.run(listener(sys.argv[1], sys.argv[2]).run())
