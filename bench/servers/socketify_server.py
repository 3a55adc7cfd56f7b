"""socketify: Python bindings (cffi) for uWebSockets, a C++ server on its own libuv loop.

The echo replies with ``ws.send(message, opcode)``; the broadcast subscribes every
connection to one topic and ``app.publish()``es each message to it (uWebSockets
frames it once). Its event loop polls libuv from asyncio's loop without
sleeping while there is work, so it uses about a whole core under any load:
the tables give each server's CPU use beside its figures.

- No flow control to turn on: uWebSockets doesn't pause reading when a
  connection's output backs up, and past ``max_backpressure`` it drops what is
  sent. Echo replies must never be dropped (the load generator waits for each
  one), so the echo sets no limit (0); the broadcast drops past 1 MiB, as the
  other servers' broadcasts skip a connection whose buffer is full.
- Compression: uWebSockets negotiates permessage-deflate only when told to;
  it is turned on here with its shared compressor and decompressor (its
  cheapest setting), and replies are compressed only on connections that agreed it.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from socketify import App, CompressOptions, OpCode

from ..common import HOST, MAX_SIZE, ready
from ._cli import main

TOPIC = "all"


def serve(port: int, scenario: str) -> None:
    app = App()

    def echo(ws: Any, message: Any, opcode: OpCode) -> None:
        ws.send(message, opcode, True)  # compressed only where permessage-deflate was agreed

    def join(ws: Any) -> None:
        ws.subscribe(TOPIC)

    def fan_out(ws: Any, message: Any, opcode: OpCode) -> None:
        app.publish(TOPIC, message, opcode)

    behavior: dict[str, Any] = {
        "compression": CompressOptions.SHARED_COMPRESSOR | CompressOptions.SHARED_DECOMPRESSOR,
        "max_payload_length": MAX_SIZE,
        "idle_timeout": 0,  # no idle timer: the benchmark's idle connections must stay open
        "max_backpressure": 0 if scenario == "echo" else 1024 * 1024,
    }
    if scenario == "echo":
        behavior["message"] = echo
    else:
        behavior.update(open=join, message=fan_out)
    app.ws("/*", behavior)

    def listening(config: Any) -> None:
        ready(library="socketify", version=metadata.version("socketify"), loop="libuv, polled without sleeping")

    app.listen({"port": port, "host": HOST}, listening)
    app.run()


if __name__ == "__main__":
    main(serve, __doc__)
