"""A Starlette app whose WebSocket endpoint uvicorn serves through wsio.

Run it with::

    uvicorn examples.asgi.app:app --ws wsio.asgi:UvicornProtocol

or ``python examples/asgi/app.py [--port 8000]``. The app itself knows nothing
of wsio: any ASGI app works the same way.

``/echo`` sends every message back. It agrees to the ``chat`` subprotocol
when the client offers it, and a text message ``close <code> <reason>`` makes
it close the connection with that code and reason. ``/last-close`` tells how
the previous ``/echo`` connection was closed, as the app saw it.
"""

from __future__ import annotations

import argparse
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

last_close: dict[str, Any] = {}


async def echo(websocket: WebSocket) -> None:
    subprotocol = "chat" if "chat" in websocket.scope["subprotocols"] else None
    await websocket.accept(subprotocol=subprotocol)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message["code"], message.get("reason"))
            text = message.get("text")
            if text is not None and text.startswith("close "):
                _, code, reason = (text + " ").split(" ", 2)
                await websocket.close(int(code), reason.strip())
                last_close.update(by="app", code=int(code), reason=reason.strip())
                return
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        last_close.update(by="client", code=exc.code, reason=exc.reason or "")


async def show_last_close(request: Any) -> JSONResponse:
    return JSONResponse(last_close)


app = Starlette(routes=[WebSocketRoute("/echo", echo), Route("/last-close", show_last_close)])


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws="wsio.asgi:UvicornProtocol")
