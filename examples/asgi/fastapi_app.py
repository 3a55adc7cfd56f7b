"""A FastAPI app whose WebSocket endpoints uvicorn serves through wsio: an echo, and chat rooms on a wsio.Hub.

Run it with::

    uvicorn fastapi_app:app --ws wsio.asgi:UvicornProtocol --app-dir examples/asgi

or ``python examples/asgi/fastapi_app.py [--port 8000]``, and open
http://127.0.0.1:8000/ in two browser windows.

- ``/echo`` sends every message back.
- ``/rooms/{room}?name=ada`` joins a room: each text message is sent to
  everyone in the room (the sender too) as ``ada: text``; arrivals and
  departures are announced.
- ``GET /rooms/{room}`` says how many connections are in the room.
- ``GET /`` is a page to chat from.

The hub keeps the rooms of this process in memory. With several worker
processes (``uvicorn --workers 4``), give it a Redis URL,
``wsio.Hub("redis://localhost:6379/0")``, and a message reaches the room in
every worker.
"""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Path, Query, WebSocket
from fastapi.responses import HTMLResponse

import wsio
from wsio.asgi import wsio_connection

ROOM = r"^[A-Za-z0-9_-]{1,32}$"

hub = wsio.Hub()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with hub:  # connects to Redis, if the hub has a URL; disconnects on shutdown
        yield


app = FastAPI(lifespan=lifespan)


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while (message := await websocket.receive())["type"] == "websocket.receive":
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


@app.websocket("/rooms/{room}")
async def chat(
    websocket: WebSocket,
    room: str = Path(pattern=ROOM),
    name: str = Query(min_length=1, max_length=32),
) -> None:
    await websocket.accept()
    topic = f"room:{room}"
    # The hub writes to the wsio connection under the WebSocket: a message
    # published is framed once and written to each subscriber without waiting,
    # and a subscriber too slow to read it is skipped, not waited for.
    await hub.subscribe(wsio_connection(websocket), topic)
    await hub.publish(topic, f"{name} joined")
    try:
        async for text in websocket.iter_text():
            await hub.publish(topic, f"{name}: {text}")
    finally:
        # The client left: the hub skips its closed connection, and forgets it.
        await hub.publish(topic, f"{name} left")


@app.get("/rooms/{room}")
async def room_info(room: str = Path(pattern=ROOM)) -> dict[str, Any]:
    return {"room": room, "connections": len(hub.subscribers(f"room:{room}"))}


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>Rooms</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; margin: 1em 0; }
  #status.open { color: green; }
</style>
<form id="join">
  <input id="name" placeholder="your name" required maxlength="32">
  <input id="room" value="lobby" required pattern="[A-Za-z0-9_\\-]{1,32}">
  <button>Join</button>
  <span id="status">not in a room</span>
</form>
<div id="log"></div>
<form id="say"><input id="text" autocomplete="off" size="50"> <button>Send</button></form>
<script>
  const $ = (id) => document.getElementById(id);
  let socket = null;

  function show(line) {
    const div = document.createElement("div");
    div.textContent = line;  // text, never HTML: a message can't inject markup
    $("log").append(div);
    $("log").scrollTop = $("log").scrollHeight;
  }

  $("join").onsubmit = (event) => {
    event.preventDefault();
    if (socket) socket.close();
    const room = $("room").value, name = $("name").value;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
    const current = socket = new WebSocket(url);
    current.onopen = () => { $("status").textContent = `in ${room}`; $("status").className = "open"; };
    current.onmessage = (event) => show(event.data);
    current.onclose = () => {
      if (socket === current) { $("status").textContent = "not in a room"; $("status").className = ""; }
    };
  };

  $("say").onsubmit = (event) => {
    event.preventDefault();
    if (socket && socket.readyState === WebSocket.OPEN && $("text").value) {
      socket.send($("text").value);
      $("text").value = "";
    }
  };
</script>
</html>
"""


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws="wsio.asgi:UvicornProtocol")
