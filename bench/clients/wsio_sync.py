"""wsio's threaded client (``wsio.sync.connect``), where this wsio has it."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from wsio import sync

from ..common import MAX_SIZE
from ._cli import Window, echo_sync, echo_sync_conns, main


def run(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            with sync.connect(url, compression=None):
                pass
            if not window.add():
                return
    compression = "deflate" if case["deflate"] else None
    if case.get("conns", 1) > 1:  # a thread per connection

        @contextlib.contextmanager
        def opener() -> Iterator[Any]:
            with sync.connect(url, compression=compression, max_size=MAX_SIZE) as ws:
                yield ws.send, ws.recv

        return echo_sync_conns(opener, case, window)
    with sync.connect(url, compression=compression, max_size=MAX_SIZE) as ws:
        echo_sync(ws.send, ws.recv, case, window)


if __name__ == "__main__":
    main(run, __doc__)
