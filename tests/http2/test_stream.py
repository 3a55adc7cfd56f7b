"""An HTTP/2 stream's read side (H2Stream) on its own, with a stand-in for its session."""

from __future__ import annotations

import asyncio
from typing import Any

from wsio.asyncio.http2 import H2Stream


class Session:
    """What a server stream asks of its session while reading: acknowledge what it consumed."""

    client_side = False

    def __init__(self) -> None:
        self.acknowledged = 0

    def _ack(self, stream_id: int, length: int) -> None:
        self.acknowledged += length


class Received(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        self.chunks.append(data)


def stream() -> tuple[H2Stream, Session, Received]:
    session, received = Session(), Received()
    h2_stream = H2Stream(session, 1)  # type: ignore[arg-type]
    h2_stream.set_protocol(received)
    return h2_stream, session, received


def test_resuming_delivers_thousands_of_queued_frames_in_a_loop() -> None:
    """A paused stream's queue is drained by a loop, not one nested call per frame (RecursionError)."""
    h2_stream, session, received = stream()
    h2_stream.pause_reading()
    for _ in range(5000):
        h2_stream._data(b"x", 1)
    assert received.chunks == [] and session.acknowledged == 0  # held: the peer's window closes
    h2_stream.resume_reading()
    assert len(received.chunks) == 5000 and session.acknowledged == 5000


def test_empty_data_frames_are_not_queued_while_paused() -> None:
    """Empty DATA frames take no flow-control window: queuing them would be unbounded."""
    h2_stream, session, received = stream()
    h2_stream.pause_reading()
    for _ in range(10000):
        h2_stream._data(b"", 0)
    h2_stream._data(b"after", 5)
    queued: Any = h2_stream._in
    assert len(queued) == 1
    h2_stream.resume_reading()
    assert received.chunks == [b"after"] and session.acknowledged == 5
