"""aiohttp's client (``ClientSession.ws_connect``)."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import aiohttp

from ..common import MAX_SIZE, run_loop
from ._cli import Window, echo_async, echo_async_conns, main


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    async with aiohttp.ClientSession() as session:
        if case["op"] == "connrate":
            while True:
                async with session.ws_connect(url, compress=0):
                    pass
                if not window.add():
                    return
        compress = 15 if case["deflate"] else 0
        if case.get("conns", 1) > 1:

            @contextlib.asynccontextmanager
            async def opener() -> AsyncIterator[Any]:
                async with session.ws_connect(url, compress=compress, max_msg_size=MAX_SIZE) as ws:
                    send = ws.send_str if case["deflate"] else ws.send_bytes

                    async def recv() -> Any:
                        return (await ws.receive()).data

                    yield send, recv

            return await echo_async_conns(opener, case, window)
        async with session.ws_connect(url, compress=compress, max_msg_size=MAX_SIZE) as ws:
            send = ws.send_str if case["deflate"] else ws.send_bytes

            async def recv() -> Any:
                return (await ws.receive()).data

            await echo_async(send, recv, case, window)


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
