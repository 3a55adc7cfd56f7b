"""wsio's asyncio client: ``await ws.send()`` / ``await ws.recv()``."""

from __future__ import annotations

from typing import Any

import wsio

from ..common import MAX_SIZE, run_loop
from ._cli import Window, echo_async, main


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            async with wsio.connect(url, compression=None):
                pass
            if not window.add():
                return
    compression = "deflate" if case["deflate"] else None
    async with wsio.connect(url, compression=compression, max_size=MAX_SIZE) as ws:
        await echo_async(ws.send, ws.recv, case, window)


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
