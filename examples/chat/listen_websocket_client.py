"""The same as listen.py, on websocket-client's ``WebSocketApp`` (wsio.websocket_client), driving a Tracker.

python examples/chat/listen_websocket_client.py ws://127.0.0.1:8765/chat lobby
"""

from __future__ import annotations

import json
import sys
from typing import Any

from wsio.pubsub.client import Message, Tracker
from wsio.websocket_client import WebSocketApp


def listener(url: str, room: str) -> WebSocketApp:
    def show(message: Message) -> None:
        event = json.loads(message.data)
        separator = ": " if event["type"] == "message" else " "
        print(f"{event['name']}{separator}{event['text']}", flush=True)

    def lost(topic: str) -> None:
        print(f"(history of {topic} lost: messages may be missing)", flush=True)

    def join() -> list[str]:
        return [json.dumps({"type": "join", "room": room, "subscribe": False})]

    tracker = Tracker([f"room:{room}"], on_message=show, on_lost=lost, on_open=join)

    def on_open(ws: Any) -> None:  # each connection, the first and those after a reconnection
        for command in tracker.opened():
            ws.send(command)

    def on_message(ws: Any, message: str) -> None:
        for command in tracker.received(message):
            ws.send(command)

    app = WebSocketApp(url, on_open=on_open, on_message=on_message)
    return app


if __name__ == "__main__":
    listener(sys.argv[1], sys.argv[2]).run_forever(reconnect=1)
