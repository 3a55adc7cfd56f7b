"""aiohttp's server (``web.WebSocketResponse`` in a request handler)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType, web

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main

OPEN: set[web.WebSocketResponse] = set()


async def serve(port: int, scenario: str) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_SIZE, compress=True)
        await ws.prepare(request)
        OPEN.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    data, text = msg.data, False
                elif msg.type is WSMsgType.TEXT:
                    data, text = msg.data, True
                else:
                    continue
                if scenario == "echo":
                    await (ws.send_str(data) if text else ws.send_bytes(data))
                else:
                    for target in list(OPEN):  # no broadcast helper: one send each
                        if not target.closed:
                            await (target.send_str(data) if text else target.send_bytes(data))
        finally:
            OPEN.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=BACKLOG).start()
    ready(library="aiohttp", version=aiohttp.__version__)
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
