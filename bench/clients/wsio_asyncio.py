"""wsio's asyncio client: ``await ws.send()`` / ``await ws.recv()``."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import wsio

from ..common import MAX_SIZE, run_loop
from ._cli import Window, echo_async, echo_async_conns, main


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            async with wsio.connect(url, compression=None):
                pass
            if not window.add():
                return
    compression = "deflate" if case["deflate"] else None
    if case.get("conns", 1) > 1:

        @contextlib.asynccontextmanager
        async def opener() -> AsyncIterator[Any]:
            async with wsio.connect(url, compression=compression, max_size=MAX_SIZE) as ws:
                yield ws.send, ws.recv

        return await echo_async_conns(opener, case, window)
    async with wsio.connect(url, compression=compression, max_size=MAX_SIZE) as ws:
        await echo_async(ws.send, ws.recv, case, window)


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
