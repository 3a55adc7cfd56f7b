# Types of the C accelerator (_speedups.c): the same contract as the pure-Python
# reference in wsio/protocol/frames.py, which imports these when the module is built.
from typing import TypeVar, final

_T = TypeVar("_T")

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, offset: int = 0) -> bytes: ...
def parse_frames(
    buf: bytes | bytearray | memoryview, pos: int, expect_masked: bool, rsv1_ok: bool
) -> tuple[list[tuple[int, bytes]], int, tuple[int, str] | None]: ...
def parse_messages(
    buf: bytes | bytearray | memoryview, pos: int, expect_masked: bool, max_size: int | None
) -> tuple[list[str | bytes], int]: ...
def build_frame(head: int, payload: bytes | bytearray | memoryview, mask: bytes | None = None) -> bytes: ...

# The opening handshake's request head when it arrived whole (wsio/protocol/http11.py's
# RequestParser._feed_whole_head): (path, Headers._list, Headers._index, size) or None.
def parse_request_head(
    data: bytes,
    max_line: int,
    max_size: int,
    max_headers: int,
    names: dict[bytes, str],
    values: dict[bytes, str],
    lowers: dict[bytes, str],
    shared_values: frozenset[bytes],
    shared_max: int,
    /,
) -> tuple[str, list[str], dict[str, list[str]], int] | None: ...

# The usual handshake request's Sec-WebSocket-Accept from its headers' lookup index
# (wsio/protocol/handshake.py's server_handshake), or None: validate_request() decides.
def usual_accept(index: dict[str, list[str]], /) -> str | None: ...

# A new instance whose __slots__ hold what obj's do, without __init__ (wsio/protocol/machine.py's
# ServerProtocol.maker() and the server connections' maker()); TypeError unless all slots.
def clone_slots(obj: _T, /) -> _T: ...

@final
class Assembly:
    def __init__(self, size: int, /) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview, mask: bytes | None = None, offset: int = 0) -> None: ...
    def done(self) -> bytes: ...

# The callback API's read and send path (wsio.asyncio.listener.ListenerConnection's
# base when built): no state of its own; it reads the connection's and the core's slots.
class ReadLane:
    def get_buffer(self, sizehint: int, /) -> memoryview: ...
    def buffer_updated(self, nbytes: int, /) -> None: ...
    def send(
        self, message: str | bytes | bytearray | memoryview, compress: bool | None = None, text: bool | None = None
    ) -> None: ...

def configure_lane(read_buffer: object, cork: object, open_state: object, closed_state: object, large_payload: int) -> None: ...
def configure_handoff(handle_events: object, hold: object, current_task: object, task_type: type, deque_type: type) -> None: ...
def configure_flush(flush_held: object, is_closing: object) -> None: ...

class MaskSource:
    def __call__(self) -> bytes: ...
