"""The sans-I/O state machine (wsio.protocol.machine): messages, RFC 6455 rules, closing.

Every test runs on each frame parser available: the C accelerator
(``wsio.protocol._speedups``) and the pure-Python reference in frames.py. The
module-scoped ``impl`` fixture swaps the functions the connection looks up in
``wsio.protocol.frames`` at call time. With ``WSIO_NO_SPEEDUPS=1`` only the
Python one runs (and the C one still serves as the other side in the
differential tests, when built).
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wsio.exceptions import ConcurrencyError, InvalidState
from wsio.protocol import deflate as deflate_module
from wsio.protocol import frames
from wsio.protocol.machine import DEFAULT_MAX_SIZE, Protocol, Side, State
from wsio.protocol.deflate import PerMessageDeflate
from wsio.protocol.events import Fragment, Ping, Pong
from wsio.protocol.frames import Close, MaskedPayload

from wsio.protocol import _speedups as C  # make builds it: missing, these tests fail

IMPLS = ["py"] + ([] if os.environ.get("WSIO_NO_SPEEDUPS") else ["c"])
PY_FUNCS = {"parse_frames": frames.py_parse_frames, "apply_mask": frames.py_apply_mask, "build_frame": frames.py_build_frame}
C_FUNCS = {"parse_frames": C.parse_frames, "apply_mask": C.apply_mask, "build_frame": C.build_frame}


class use:
    """Make ``wsio.protocol.frames`` use the given functions for the duration of a ``with``."""

    def __init__(self, funcs: dict[str, Any]) -> None:
        self.funcs = funcs

    def __enter__(self) -> None:
        self.saved = {name: getattr(frames, name) for name in self.funcs}
        for name, fn in self.funcs.items():
            setattr(frames, name, fn)

    def __exit__(self, *exc: object) -> None:
        for name, fn in self.saved.items():
            setattr(frames, name, fn)


@pytest.fixture(scope="module", params=IMPLS, autouse=True)
def impl(request: pytest.FixtureRequest) -> Any:
    funcs = PY_FUNCS if request.param == "py" else C_FUNCS
    with use(funcs):  # type: ignore[arg-type]
        yield request.param


def test_impl_is_in_use(impl: str) -> None:
    expected = PY_FUNCS if impl == "py" else C_FUNCS
    assert frames.parse_frames is expected["parse_frames"]  # type: ignore[index]
    assert frames.apply_mask is expected["apply_mask"]  # type: ignore[index]


# ---------------------------------------------------------------------------
# Helpers

MASK = b"\x37\xfa\x21\x3d"


def server(**kwargs: Any) -> Protocol:
    return Protocol(Side.SERVER, **kwargs)


def client(**kwargs: Any) -> Protocol:
    return Protocol(Side.CLIENT, **kwargs)


def header(head: int, length: int, mask: bytes | None = None, form: int | None = None) -> bytes:
    """A frame header with the length in 7-, 16- or 64-bit ``form`` (default: the shortest)."""
    if form is None:
        form = 7 if length < 126 else 16 if length < 65536 else 64
    bit = 0x80 if mask is not None else 0
    if form == 7:
        out = bytes((head, bit | length))
    elif form == 16:
        out = struct.pack("!BBH", head, bit | 126, length)
    else:
        out = struct.pack("!BBQ", head, bit | 127, length)
    return out + (mask or b"")


def frame(head: int, payload: bytes = b"", masked: bool = True, mask: bytes = MASK) -> bytes:
    """One frame as a client (``masked``) or a server sends it, built by hand."""
    if masked:
        return header(head, len(payload), mask) + frames.py_apply_mask(payload, mask)
    return header(head, len(payload)) + payload


def to_server(head: int, payload: bytes = b"") -> bytes:
    return frame(head, payload, masked=True)


def to_client(head: int, payload: bytes = b"") -> bytes:
    return frame(head, payload, masked=False)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def parse_out(data: bytes, masked: bool) -> list[tuple[int, bytes]]:
    """Parse what a connection wants to send, with the reference parser; all of it must be frames."""
    parsed, pos, error = frames.py_parse_frames(data, 0, masked, True)
    assert error is None and pos == len(data), (data, pos, error)
    return parsed


def sent_close_code(conn: Protocol) -> int | None:
    """The code of the close frame in ``data_to_send()``, or None if there is no close frame."""
    out = conn.data_to_send()
    codes = [Close.parse(payload).code for head, payload in parse_out(out, conn.side is Side.CLIENT) if head & 0x0F == 8]
    assert len(codes) <= 1
    return codes[0] if codes else None


def collapse(events: list[Any]) -> list[Any]:
    """Join the Fragments of each message into the message; keep other events as they are.

    An incomplete message at the end is dropped (there is no message yet).
    """
    out: list[Any] = []
    pieces: list[Any] = []
    for event in events:
        if isinstance(event, Fragment):
            pieces.append(event.data)
            if event.last:
                first = pieces[0]
                out.append(("" if isinstance(first, str) else b"").join(pieces))
                pieces = []
            else:
                assert type(event.data) is type(pieces[0])
        else:
            assert isinstance(event, (str, bytes, Ping, Pong, Close)), event
            out.append(event)
    return out


def feed(conn: Protocol, data: bytes, cuts: list[int] | None = None) -> list[Any]:
    """Feed ``data`` cut at ``cuts``; return all events."""
    events: list[Any] = []
    prev = 0
    for cut in sorted(cuts or []) + [len(data)]:
        events += conn.receive_data(data[prev:cut])
        prev = cut
    return events


def feed_bytewise(conn: Protocol, data: bytes) -> list[Any]:
    events: list[Any] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


def settle(conn: Protocol, events: list[Any]) -> list[Any]:
    """Handle a deferred failure the way the I/O layer does."""
    if conn.failure_pending:
        conn.apply_deferred_failure()
    return events


def assert_failed(conn: Protocol, code: int) -> None:
    """The connection failed with ``code`` and queued exactly one close frame with it."""
    assert conn.failure is not None, "connection didn't fail"
    assert conn.failure.code == code, (conn.failure.code, str(conn.failure))
    assert conn.state is State.CLOSED
    assert sent_close_code(conn) == code
    assert conn.close_sent is not None and conn.close_sent.code == code
    assert not conn.failure_pending


def fails_with(conn: Protocol, data: bytes, code: int) -> list[Any]:
    """Feeding ``data`` fails the connection with ``code`` at once; return the events."""
    events = conn.receive_data(data)
    assert not conn.failure_pending
    assert_failed(conn, code)
    # Nothing counts after a failure.
    assert conn.receive_data(to_server(0x81, b"x") if conn.side is Side.SERVER else to_client(0x81, b"x")) == []
    assert conn.data_to_send() == b""
    return events


def deflate_pair(
    server_nct: bool = False, client_nct: bool = False, server_bits: int = 15, client_bits: int = 15
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Matching (server, client) PerMessageDeflate objects, as a handshake would make them."""
    srv = PerMessageDeflate(client_nct, server_nct, client_bits, server_bits)
    cli = PerMessageDeflate(server_nct, client_nct, server_bits, client_bits)
    return srv, cli


def pair(deflate: bool = False, **kwargs: Any) -> tuple[Protocol, Protocol]:
    s, c = server(**kwargs), client(**kwargs)
    if deflate:
        srv, cli = deflate_pair()
        s._set_extensions([srv])
        c._set_extensions([cli])
    return s, c


def peer_of(conn: Protocol) -> Protocol:
    return client() if conn.side is Side.SERVER else server()


# ---------------------------------------------------------------------------
# Messages of every kind, both ways

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def payload_of(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


def text_of(size: int) -> str:
    """A str of exactly ``size`` UTF-8 bytes with 1-, 2-, 3- and 4-byte characters."""
    text = "aé€😀" * (size // 10) + "a" * (size % 10)  # 1 + 2 + 3 + 4 bytes
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
@pytest.mark.parametrize("kind", ["binary", "text"])
@pytest.mark.parametrize("deflate", [False, True])
def test_messages_both_ways(size: int, direction: str, kind: str, deflate: bool) -> None:
    s, c = pair(deflate)
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    message: str | bytes = payload_of(size) if kind == "binary" else text_of(size)
    data = sender.send_message(message)
    # A client masks, a server doesn't.
    assert bool(data[1] & 0x80) == (sender is c)
    size_on_wire = len(message.encode()) if isinstance(message, str) else len(message)
    assert bool(data[0] & 0x40) == (deflate and size_on_wire >= 128)
    events = receiver.receive_data(data)
    assert events == [message]
    assert type(events[0]) is type(message)
    assert receiver.data_to_send() == b"" and sender.data_to_send() == b""
    assert s.state is c.state is State.OPEN
    # The same in 997-byte pieces: a plain binary frame is put together whole
    # (Assembly); text and compressed payloads stream as Fragments.
    data = sender.send_message(message)
    events = feed(receiver, data, list(range(997, len(data), 997)))
    assert collapse(events) == [message]
    if len(data) > 997:
        if kind == "binary" and not data[0] & 0x40:
            assert events == [message] and type(events[0]) is bytes
        else:
            assert all(isinstance(event, Fragment) for event in events)


def test_binary_frame_above_assemble_limit_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wsio.protocol.machine.ASSEMBLE_LIMIT", 1000)
    s, c = pair()
    for size in (1000, 1001):
        message = payload_of(size)
        data = c.send_message(message)
        events = feed(s, data, list(range(300, len(data), 300)))
        assert collapse(events) == [message]
        assert (events == [message]) == (size == 1000), events


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 100, 300])
def test_text_split_inside_characters(size: int) -> None:
    s, c = pair()
    message = text_of(size) + "😀"
    data = c.send_message(message)
    events = feed_bytewise(s, data)
    assert collapse(events) == [message]
    # Each piece is valid text on its own: a character is never cut in two.
    assert "".join(event.data for event in events) == message


def test_send_text_and_binary_convert() -> None:
    s, c = pair()
    assert s.receive_data(c.send_text(b"caf\xc3\xa9")) == ["café"]
    assert s.receive_data(c.send_text("café")) == ["café"]
    assert s.receive_data(c.send_binary("café")) == ["café".encode()]
    assert s.receive_data(c.send_binary(bytearray(b"ab"))) == [b"ab"]
    assert s.receive_data(c.send_message(memoryview(b"ab"))) == [b"ab"]
    assert s.receive_data(c.send_message(bytearray(b"ab"))) == [b"ab"]


def test_send_message_parts_keeps_a_large_payload_out_of_the_frame() -> None:
    s, c = pair()
    payload = bytes(range(256)) * 512  # 128 KiB
    header, body = s.send_message_parts(payload)
    assert body is payload  # not copied
    assert header + body == s.send_message(payload)
    assert c.receive_data(header + body) == [payload]
    # Text is encoded once, then treated the same way.
    assert c.receive_data(b"".join(s.send_message_parts("é" * 40_000))) == ["é" * 40_000]
    # Small messages, and masked client frames, come in one piece.
    assert s.send_message_parts(b"small") == (s.send_message(b"small"),)
    (frame,) = c.send_message_parts(payload)
    assert s.receive_data(frame) == [payload]


@pytest.mark.parametrize("deflate", [False, True])
def test_mask_later_gives_a_client_s_large_payload_to_be_masked_as_it_is_written(deflate: bool) -> None:
    s, c = pair(deflate)
    payload = os.urandom(200_000)
    header, body = c.send_message_parts(payload, mask_later=True)
    size = len(body)  # compressed, with deflate: random bytes don't shrink
    assert isinstance(body, MaskedPayload) and size >= len(payload)
    assert len(header) == 14 and header[1] & 0x80  # the key ends the header
    # Slices of any length, at any phase of the key, make the frame the peer reads.
    pieces = [body.take(n) for n in (1, 3, 65_537, 2, 1_000_000)]
    assert len(body) == 0 and body.take(10) == b""
    assert [len(piece) for piece in pieces] == [1, 3, 65_537, 2, size - 65_543]
    assert s.receive_data(header + b"".join(pieces)) == [payload]
    if not deflate:
        assert b"".join(pieces) != payload  # masked
    # Text (encoded once) too; a server's payload isn't masked, and small or mutable ones come in one frame.
    text = os.urandom(100_000).hex()  # still large once compressed
    header, body = c.send_message_parts(text, mask_later=True)
    assert isinstance(body, MaskedPayload)
    assert s.receive_data(header + body.take(len(body))) == [text]
    assert s.send_message_parts(payload, False, mask_later=True)[1] is payload
    (frame,) = c.send_message_parts(b"small", mask_later=True)
    assert s.receive_data(frame) == [b"small"]
    (frame,) = c.send_message_parts(bytearray(payload), False, mask_later=True)
    assert s.receive_data(frame) == [payload]


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("sender_side", ["server", "client"])
@pytest.mark.parametrize("items", [10, 70_000])  # under and over LARGE_PAYLOAD bytes
def test_views_with_wide_items_are_framed_by_their_bytes(items: int, sender_side: str, deflate: bool) -> None:
    """memoryview(array("i", ...)) has len() in items: the frame must carry all its bytes."""
    import array

    s, c = pair(deflate)
    sender, receiver = (s, c) if sender_side == "server" else (c, s)
    values = array.array("i", range(items))
    expected = values.tobytes()
    assert receiver.receive_data(sender.send_message(memoryview(values))) == [expected]
    assert receiver.receive_data(b"".join(sender.send_message_parts(memoryview(values)))) == [expected]
    # 2-D and non-contiguous views too.
    grid = memoryview(bytes(range(24))).cast("B", (4, 6))
    assert receiver.receive_data(sender.send_binary(grid)) == [bytes(range(24))]
    assert receiver.receive_data(sender.send_binary(memoryview(expected)[::2])) == [expected[::2]]
    first = sender.send_fragment(memoryview(values), first=True, last=False)
    last = sender.send_fragment(memoryview(array.array("h", [1, 2])), first=False, last=True)
    assert collapse(receiver.receive_data(first + last)) == [expected + array.array("h", [1, 2]).tobytes()]


@pytest.mark.parametrize("items", [10, 70_000])  # under and over LARGE_PAYLOAD items
def test_other_bytes_like_objects_are_framed_by_their_bytes(items: int) -> None:
    """An array.array (the callback API's send() takes any bytes-like) has len() in items too."""
    import array

    s, c = pair()
    values = array.array("i", range(items))
    expected = values.tobytes()
    assert c.receive_data(s.send_message(values)) == [expected]  # type: ignore[arg-type]
    assert c.receive_data(b"".join(s.send_message_parts(values))) == [expected]  # type: ignore[arg-type]
    assert s.receive_data(c.send_message(values)) == [expected]  # type: ignore[arg-type]
    first = c.send_fragment(values, first=True, last=False)  # type: ignore[arg-type]
    last = c.send_fragment(array.array("h", [1, 2]), first=False, last=True)  # type: ignore[arg-type]
    assert collapse(s.receive_data(first + last)) == [expected + array.array("h", [1, 2]).tobytes()]


def test_send_message_parts_with_compression() -> None:
    s, c = pair(deflate=True)
    payload = b"compressible " * 20_000
    parts = s.send_message_parts(payload)
    assert sum(map(len, parts)) < len(payload)
    assert c.receive_data(b"".join(parts)) == [payload]


def test_text_sets_the_frame_type_of_parts_and_fragments() -> None:
    """``text=`` (for send(text=...)): True sends bytes as text, False sends str as binary."""
    s, c = pair()
    payload = "é".encode() * 40_000  # large: header and payload apart
    assert c.receive_data(b"".join(s.send_message_parts(payload, text=True))) == ["é" * 40_000]
    assert c.receive_data(b"".join(s.send_message_parts("é" * 40_000, text=False))) == [payload]
    assert c.receive_data(b"".join(s.send_message_parts(b"small", text=True))) == ["small"]
    assert c.receive_data(b"".join(s.send_message_parts(b"small", text=None))) == [b"small"]
    frames = c.send_fragment(b"fr", first=True, last=False, text=True) + c.send_fragment(b"ag", first=False, last=True)
    assert collapse(s.receive_data(frames)) == ["frag"]
    frames = c.send_fragment("fr", first=True, last=False, text=False) + c.send_fragment("ag", first=False, last=True, text=False)
    assert collapse(s.receive_data(frames)) == [b"frag"]


def test_str_subclasses_are_text() -> None:
    """A StrEnum member or another str subclass is sent as text, not refused as a buffer."""
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    class Name(str):
        pass

    s, c = pair()
    assert s.receive_data(c.send_message(Color.RED)) == ["red"]
    assert s.receive_data(c.send_message(Name("bob"))) == ["bob"]
    assert s.receive_data(c.send_text(Name("bob"))) == ["bob"]
    assert s.receive_data(c.send_binary(Name("bob"))) == [b"bob"]
    assert s.receive_data(c.send_fragment(Name("bob"), first=True, last=True)) == ["bob"]


def test_receive_accepts_bytearray_and_memoryview() -> None:
    s, c = pair()
    data = c.send_message("hello") + c.send_message(b"x" * 1000)
    assert collapse(s.receive_data(bytearray(data[:10])) + s.receive_data(memoryview(data)[10:])) == ["hello", b"x" * 1000]


def test_max_size_is_inclusive() -> None:
    s, c = pair(max_size=10)
    assert s.receive_data(c.send_message(b"x" * 10)) == [b"x" * 10]
    fails_with(s, c.send_message(b"x" * 11), 1009)
    assert DEFAULT_MAX_SIZE == 1 << 20
    s, c = pair()
    fails_with(s, c.send_message(b"x" * ((1 << 20) + 1)), 1009)


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_fragmented_send(direction: str, kind: str) -> None:
    s, c = pair()
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    parts = ["hé", "", "llo 😀", "!"] if kind == "text" else [b"\x00\x01", b"", b"\xff" * 200, b"!"]
    data = b"".join(sender.send_fragment(part, first=i == 0, last=i == len(parts) - 1) for i, part in enumerate(parts))
    events = receiver.receive_data(data)
    # The empty piece makes no event; the others come as they are.
    assert events == [Fragment(parts[0], False), Fragment(parts[2], False), Fragment(parts[3], True)]
    assert collapse(events) == ["".join(parts) if kind == "text" else b"".join(parts)]  # type: ignore[arg-type]
    # Opcodes on the wire: the first is the type, then continuations; FIN on the last only.
    heads = [head for head, _ in parse_out(data, sender is c)]
    first_opcode = 1 if kind == "text" else 2
    assert heads == [first_opcode, 0, 0, 0x80]


def test_fragmented_send_single_fragment() -> None:
    s, c = pair()
    assert s.receive_data(c.send_fragment("whole", first=True, last=True)) == ["whole"]


def test_fragmented_send_is_never_compressed() -> None:
    s, c = pair(deflate=True)
    data = c.send_fragment("x" * 1000, first=True, last=False) + c.send_fragment("y" * 1000, first=False, last=True)
    assert all(not head & 0x40 for head, _ in parse_out(data, True))
    assert collapse(s.receive_data(data)) == ["x" * 1000 + "y" * 1000]


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_ping_between_fragments_gets_its_pong(direction: str) -> None:
    s, c = pair()
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    data = (
        sender.send_fragment("first ", first=True, last=False)
        + sender.send_ping(b"p1")
        + sender.send_fragment("second ", first=False, last=False)
        + sender.send_pong(b"unsolicited")
        + sender.send_ping(b"")
        + sender.send_fragment("third", first=False, last=True)
    )
    events = receiver.receive_data(data)
    assert events == [
        Fragment("first ", False),
        Ping(b"p1"),
        Fragment("second ", False),
        Pong(b"unsolicited"),
        Ping(b""),
        Fragment("third", True),
    ]
    # The pongs are queued in order, and the sender gets them.
    reply = receiver.data_to_send()
    assert [(h, p) for h, p in parse_out(reply, receiver is c)] == [(0x8A, b"p1"), (0x8A, b"")]
    assert sender.receive_data(reply) == [Pong(b"p1"), Pong(b"")]
    # The message completes, and the next one is fine.
    assert receiver.receive_data(sender.send_message("next")) == ["next"]


def test_ping_between_fragments_bytewise() -> None:
    s, c = pair()
    data = (
        c.send_fragment(b"a" * 300, first=True, last=False)
        + c.send_ping(b"ping")
        + c.send_fragment(b"b" * 300, first=False, last=True)
    )
    events = feed_bytewise(s, data)
    assert collapse(events) == [Ping(b"ping"), b"a" * 300 + b"b" * 300]
    assert parse_out(s.data_to_send(), False) == [(0x8A, b"ping")]


def test_ping_payload_limits() -> None:
    s, c = pair()
    assert s.receive_data(c.send_ping(b"x" * 125)) == [Ping(b"x" * 125)]
    assert parse_out(s.data_to_send(), False) == [(0x8A, b"x" * 125)]
    with pytest.raises(ValueError):
        c.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        c.send_pong(b"x" * 126)


def test_masking_keys_differ_between_frames() -> None:
    c = client()
    keys = []
    for i in range(200):
        data = [c.send_message(b"x"), c.send_ping(b"p"), c.send_fragment("a", first=True, last=True)][i % 3]
        assert data[1] & 0x80
        keys.append(data[2:6])
    assert len(set(keys)) >= 195  # 32 random bits: collisions are rare
    # And the payload is really masked with them.
    data = c.send_message(b"\x00" * 8)
    assert data[6:] == data[2:6] * 2
    # A server never masks.
    s = server()
    assert not s.send_message(b"x")[1] & 0x80
    assert not s.send_ping(b"x")[1] & 0x80


def test_pong_is_masked_by_client() -> None:
    s, c = pair()
    ping = s.send_ping(b"abc")
    assert c.receive_data(ping) == [Ping(b"abc")]
    pong = c.data_to_send()
    assert pong[1] & 0x80
    assert s.receive_data(pong) == [Pong(b"abc")]


# ---------------------------------------------------------------------------
# Property: chunking doesn't change the events

# A message: (text?, content, fragment cut points as fractions, ping positions).
message_specs = st.tuples(
    st.booleans(),
    st.one_of(st.text(max_size=60), st.text(alphabet="é€😀", max_size=200), st.builds(lambda n: "z" * n, st.integers(0, 5000))),
    st.lists(st.integers(0, 1000), max_size=4),  # where to cut the encoded payload, in 1/1000
    st.lists(st.tuples(st.integers(0, 4), st.binary(max_size=20)), max_size=3),  # (after fragment i, ping payload)
    st.booleans(),  # compress (when the connection has deflate)
)


def build_stream(sender: Protocol, specs: list[Any], deflate: bool) -> tuple[bytes, list[Any]]:
    """Frames for the messages, as ``sender`` makes them, and the events they must give."""
    out: list[bytes] = []
    expected: list[Any] = []
    for is_text, text, cuts, pings, compress in specs:
        message: str | bytes = text if is_text else text.encode()
        payload = text.encode()
        opcode = 1 if is_text else 2
        rsv1 = 0
        if deflate and compress:
            assert sender.deflate is not None
            payload = sender.deflate.compress(payload)
            rsv1 = 0x40
        points = sorted({len(payload) * cut // 1000 for cut in cuts} | {0, len(payload)})
        pieces = [payload[a:b] for a, b in zip(points, points[1:])] or [b""]
        if len(points) > 2 and points[0] == points[1]:
            pieces = [b""] + pieces  # an empty first fragment
        for i, piece in enumerate(pieces):
            head = (opcode | rsv1 if i == 0 else 0) | (0x80 if i == len(pieces) - 1 else 0)
            out.append(sender._frame(head, piece))
            if i < len(pieces) - 1:
                for after, ping in pings:
                    if after == i:
                        out.append(sender.send_ping(ping))
                        expected.append(Ping(ping))
        expected.append(message)
    return b"".join(out), expected


# Streams of up to six messages (see build_stream), cut anywhere, either way, with or without compression.
cut_streams = given(
    specs=st.lists(message_specs, max_size=6),
    cuts=st.lists(st.integers(0, 10**6), max_size=40),
    direction=st.sampled_from(["c2s", "s2c"]),
    deflate=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@cut_streams
def test_chunking_does_not_change_events(specs: list[Any], cuts: list[int], direction: str, deflate: bool) -> None:
    s, c = pair(deflate)
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    stream, expected = build_stream(sender, specs, deflate)
    cuts = [cut % (len(stream) + 1) for cut in cuts]
    events = feed(receiver, stream, cuts)
    assert collapse(events) == expected
    assert not receiver.failure_pending and receiver.failure is None
    # Every ping got its pong, in order.
    pongs = [payload for head, payload in parse_out(receiver.data_to_send(), receiver is c)]
    assert pongs == [event.data for event in expected if isinstance(event, Ping)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(message_specs, max_size=4), direction=st.sampled_from(["c2s", "s2c"]), deflate=st.booleans())
def test_one_byte_at_a_time(specs: list[Any], direction: str, deflate: bool) -> None:
    s, c = pair(deflate)
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    stream, expected = build_stream(sender, specs, deflate)
    if len(stream) > 3000:
        stream, expected = build_stream(sender, [], deflate)
    assert collapse(feed_bytewise(receiver, stream)) == expected


@settings(max_examples=50, deadline=None)
@given(
    specs=st.lists(message_specs, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10**6), max_size=20),
    server_nct=st.booleans(),
    client_nct=st.booleans(),
    bits=st.integers(9, 15),
)
def test_chunking_with_negotiated_compression(
    specs: list[Any], cuts: list[int], server_nct: bool, client_nct: bool, bits: int
) -> None:
    """The same over a real opening handshake with the deflate factories."""
    from wsio.protocol.machine import ClientProtocol, ServerProtocol
    from wsio.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
    from wsio.protocol.uri import parse_uri

    c = ClientProtocol(
        parse_uri("ws://example.com/"),
        extensions=[ClientPerMessageDeflateFactory(server_no_context_takeover=server_nct, client_no_context_takeover=client_nct)],
    )
    s = ServerProtocol(extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=bits, client_max_window_bits=bits)])
    c.send_request(c.connect())
    (request,) = s.receive_data(c.data_to_send())
    s.send_response(s.accept(request))
    assert s.receive_data(b"") == []
    c.receive_data(s.data_to_send())
    assert s.state is c.state is State.OPEN
    assert s.deflate is not None and c.deflate is not None
    for sender, receiver in [(c, s), (s, c), (c, s)]:
        stream, expected = build_stream(sender, specs, True)
        events = feed(receiver, stream, [cut % (len(stream) + 1) for cut in cuts])
        assert collapse(events) == expected
        receiver.data_to_send()


def frame_spans(stream: bytes) -> list[tuple[int, int, bool]]:
    """Each frame of a well-formed ``stream``: where its payload starts, where it ends, whether it's data."""
    spans, pos = [], 0
    while pos < len(stream):
        parsed = frames.parse_header(stream, pos)
        assert parsed is not None
        head, length, _, start = parsed
        spans.append((start, start + length, not head & 0x08))
        pos = start + length
    return spans


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@cut_streams
def test_frame_remaining_is_what_the_data_frame_being_received_still_lacks(
    specs: list[Any], cuts: list[int], direction: str, deflate: bool
) -> None:
    # An I/O layer waits for that many bytes before it reads again (SO_RCVLOWAT):
    # one byte more than the peer owes, and a connection would wait forever.
    s, c = pair(deflate)
    sender, receiver = (c, s) if direction == "c2s" else (s, c)
    stream, _ = build_stream(sender, specs, deflate)
    spans = frame_spans(stream)
    fed = 0
    for cut in sorted({cut % (len(stream) + 1) for cut in cuts} | {len(stream)}):
        receiver.receive_data(stream[fed:cut])
        fed = cut
        # Inside a data frame's payload (its header whole): the rest of it. Anywhere
        # else (a header, a control frame, between frames): 0.
        owed = next((end - cut for start, end, data in spans if data and start <= cut < end), 0)
        assert receiver.frame_remaining == owed
    assert receiver.frame_remaining == 0


def test_frame_remaining_counts_a_large_frame_down_to_zero() -> None:
    conn = server()
    data = to_server(0x82, payload_of(300_000))
    start = len(data) - 300_000
    conn.receive_data(data[: start - 1])
    assert conn.frame_remaining == 0  # the header isn't whole yet
    conn.receive_data(data[start - 1 : start + 1000])
    assert conn.frame_remaining == 299_000
    conn.receive_data(data[start + 1000 : -1])
    assert conn.frame_remaining == 1
    assert conn.receive_data(data[-1:]) == [payload_of(300_000)]
    assert conn.frame_remaining == 0


def test_frame_remaining_is_zero_once_nothing_more_is_parsed() -> None:
    # Invalid UTF-8 early in a large text frame fails the connection at once: the
    # peer still owes the rest of the frame, but none of it will be parsed.
    conn = server()
    data = to_server(0x81, b"\xff" + b"a" * 199_999)
    conn.receive_data(data[:1000])
    assert conn.failure is not None and conn.failure.code == 1007
    assert conn.frame_remaining == 0
    # A frame over max_size fails from its header.
    conn = server(max_size=1000)
    conn.receive_data(to_server(0x82, payload_of(100_000))[:500])
    assert conn.failure is not None and conn.failure.code == 1009
    assert conn.frame_remaining == 0
    # EOF in the middle of a frame.
    conn = server()
    conn.receive_data(to_server(0x82, payload_of(100_000))[:500])
    assert conn.frame_remaining > 0
    conn.receive_eof()
    assert conn.frame_remaining == 0


# ---------------------------------------------------------------------------
# Property: arbitrary bytes never crash a connection


_COMPRESSED = [
    PerMessageDeflate(False, False, 15, 15).compress(m) for m in (b"", b"hello", "κόσμε".encode(), b"x" * 3000, b"\xff\xfe")
]


@st.composite
def frame_like(draw: Any) -> bytes:
    """Mostly well-formed masked frames with plausible heads; sometimes anything."""
    # Hypothesis favours the first element of sampled_from: that is the common case.
    if draw(st.sampled_from([True] * 9 + [False])):
        opcode = draw(st.sampled_from([1, 0, 0, 1, 1, 2, 2, 8, 9, 9, 10, 3, 11]))
        fin = draw(st.sampled_from([0x80, 0x80, 0]))
        rsv = draw(st.sampled_from([0] * 24 + [0x40] * 4 + [0x20, 0x10]))
        head = fin | rsv | opcode
    else:
        head = draw(st.integers(0, 255))
    payload = draw(
        st.one_of(
            st.binary(max_size=40),
            st.text(max_size=20).map(str.encode),
            st.sampled_from(
                [b"\xf4\x90\x80\x80", b"\xce\xba\xe1", b"\x03\xe8", b"\x03\xe8\xff", b"\x03\xed", b"\x0f\xa0ok", b"\xed\xa0\x80"]
            ),
            st.builds(lambda n: b"a" * n, st.integers(100, 1100)),
            st.sampled_from(_COMPRESSED),
        )
    )
    masked = draw(st.sampled_from([True] * 19 + [False]))
    form = draw(st.sampled_from([None, None, None, 16, 64]))
    length = len(payload) if draw(st.sampled_from([True] * 19 + [False])) else draw(st.integers(0, 2**64 - 1))
    if (form is None and length >= 126) or (form == 16 and length >= 65536):
        form = 16 if length < 65536 else 64
    mask = draw(st.binary(min_size=4, max_size=4)) if masked else None
    data = header(head, length, mask, form) + (frames.py_apply_mask(payload, mask) if mask else payload)
    if draw(st.sampled_from([False] * 9 + [True])):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def hostile_streams(draw: Any) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.sampled_from([True] * 9 + [False])):
            parts.append(draw(frame_like()))
        else:
            parts.append(draw(st.binary(max_size=10)))
    return b"".join(parts)


def run_hostile(conn: Protocol, data: bytes, cuts: list[int]) -> tuple[list[Any], int | None, bytes]:
    """Feed ``data``; check the invariants; return (events, close code sent, all bytes to send)."""
    events: list[Any] = []
    sent = b""
    prev = 0
    for cut in sorted(cut % (len(data) + 1) for cut in cuts) + [len(data)]:
        events += conn.receive_data(data[prev:cut])
        prev = cut
        if conn.failure_pending:
            assert conn.state is State.OPEN
            conn.apply_deferred_failure()
            assert not conn.failure_pending
        sent += conn.data_to_send()
    code = None
    closes = [payload for head, payload in parse_out(sent, conn.side is Side.CLIENT) if head == 0x88]
    assert len(closes) <= 1
    if conn.failure is not None:
        code = Close.parse(closes[0]).code
        assert code in (1002, 1007, 1009), conn.failure
        assert code == conn.failure.code
        assert conn.state is State.CLOSED
        assert not any(isinstance(event, Close) for event in events)
    elif conn.close_rcvd is not None:
        # An echo of the peer's close frame: its code and its reason.
        assert isinstance(events[-1], Close)
        assert closes == [conn.close_rcvd.serialize()]
        code = conn.close_rcvd.code
    else:
        assert closes == []
        assert conn.state is State.OPEN
    # After a failure or a close frame, nothing more counts.
    if conn.state is State.CLOSED:
        assert conn.receive_data(frame(0x81, b"more", masked=conn.side is Side.SERVER)) == []
        assert conn.receive_data(data) == []
        assert conn.data_to_send() == b""
    return events, code, sent


@settings(max_examples=300, deadline=None)
@given(data=hostile_streams(), cuts=st.lists(st.integers(0, 10**4), max_size=6), deflate=st.booleans())
@example(data=to_server(0x81, b"ok") + to_server(0x03, b""), cuts=[], deflate=False)
@example(data=to_server(0x01, b"\xce") + to_server(0x80, b"\xba\xf4\x90"), cuts=[], deflate=False)
@example(
    data=b"\x81\x80\x00\x00\x00\x00\x81\x80\x00\x00\x00\x00\xc1\x84\x00\x00\x00\x00:\x00\x00\x00\x81\x80\x00\x00\x00\x00",
    cuts=[20],
    deflate=True,
)
def test_hostile_bytes_to_server(data: bytes, cuts: list[int], deflate: bool) -> None:
    s = server(max_size=1000, max_fragments=5)
    if deflate:
        s._set_extensions([deflate_pair()[0]])
    events, code, _ = run_hostile(s, data, cuts)
    # The outcome doesn't depend on the chunking: the same complete messages, the same code.
    s2 = server(max_size=1000, max_fragments=5)
    if deflate:
        s2._set_extensions([deflate_pair()[0]])
    events2, code2, _ = run_hostile(s2, data, [])
    if code != code2:
        # A compressed text frame that is both bad deflate data and bad UTF-8:
        # streamed, its first inflated bytes fail UTF-8 (1007) before the
        # inflater reaches the bad data; whole, inflating fails first (1002).
        # The first error seen wins; both are right.
        assert deflate and {code, code2} == {1002, 1007}
    assert collapse(events) == collapse(events2)


@settings(max_examples=200, deadline=None)
@given(data=hostile_streams())
def test_hostile_bytes_to_client(data: bytes) -> None:
    # Client side: the same, with unmasked frames expected.
    c = client(max_size=1000)
    run_hostile(c, data, [])


@settings(max_examples=500, deadline=None)
@given(data=hostile_streams(), cuts=st.lists(st.integers(0, 10**4), max_size=6), deflate=st.booleans())
def test_hostile_bytes_same_on_c_and_python(impl: str, data: bytes, cuts: list[int], deflate: bool) -> None:
    if impl != "py":
        return  # switches between the two itself: once is enough
    results = []
    for funcs in (PY_FUNCS, C_FUNCS):
        with use(funcs):  # type: ignore[arg-type]
            s = server(max_size=1000, max_fragments=5)
            if deflate:
                s._set_extensions([deflate_pair()[0]])
            events, code, sent = run_hostile(s, data, cuts)
            results.append((events, code, sent, str(s.failure), s.why))
    assert results[0] == results[1]


# ---------------------------------------------------------------------------
# RFC 6455 rules, each with its close code


def test_unmasked_frame_from_client() -> None:
    fails_with(server(), to_client(0x81, b"hi"), 1002)


def test_masked_frame_from_server() -> None:
    fails_with(client(), to_server(0x81, b"hi"), 1002)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x9])
def test_rsv_bits_without_extension(rsv: int, opcode: int) -> None:
    fails_with(server(), to_server(0x80 | rsv | opcode, b"x"), 1002)


@pytest.mark.parametrize("rsv", [0x20, 0x10])
def test_rsv2_rsv3_even_with_deflate(rsv: int) -> None:
    s, c = pair(deflate=True)
    fails_with(s, to_server(0x80 | rsv | 0x1, b"x"), 1002)


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_rsv1_on_control_frame_with_deflate(opcode: int) -> None:
    s, _ = pair(deflate=True)
    fails_with(s, to_server(0xC0 | opcode, b""), 1002)


def test_rsv1_on_continuation_frame_with_deflate() -> None:
    s, c = pair(deflate=True)
    compressed = c.deflate.compress(b"hello hello hello")  # type: ignore[union-attr]
    data = to_server(0x41, compressed[:3]) + to_server(0xC0, compressed[3:])
    settle(s, s.receive_data(data))
    assert_failed(s, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("fin", [0x80, 0x00])
def test_reserved_opcodes(opcode: int, fin: int) -> None:
    fails_with(server(), to_server(fin | opcode, b""), 1002)
    fails_with(client(), to_client(fin | opcode, b"abc"), 1002)


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_control_frame_too_long(opcode: int) -> None:
    payload = close_payload(1000, b"x" * 124) if opcode == 8 else b"x" * 126
    assert len(payload) == 126
    fails_with(server(), to_server(0x80 | opcode, payload), 1002)
    # Even before its payload arrives.
    fails_with(server(), header(0x80 | opcode, 126, MASK), 1002)
    # 125 bytes is fine.
    s = server()
    assert s.receive_data(to_server(0x89, b"x" * 125)) == [Ping(b"x" * 125)]


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_fragmented_control_frame(opcode: int) -> None:
    fails_with(server(), to_server(opcode, b""), 1002)


@pytest.mark.parametrize("fin", [0x80, 0x00])
def test_continuation_without_start(fin: int) -> None:
    fails_with(server(), to_server(fin, b"x"), 1002)
    # Also right after a complete message.
    s = server()
    assert s.receive_data(to_server(0x81, b"a")) == ["a"]
    fails_with(s, to_server(fin, b"x"), 1002)
    # And as a partial frame, before its payload has arrived.
    s = server()
    fails_with(s, header(fin, 1000, MASK), 1002)


@pytest.mark.parametrize("second", [0x81, 0x82, 0x01, 0x02])
def test_new_data_frame_inside_fragmented_message(second: int) -> None:
    s = server()
    events = s.receive_data(to_server(0x01, b"start"))
    assert events == [Fragment("start", False)]
    fails_with(s, to_server(second, b"x"), 1002)
    # The same when the new frame is still arriving.
    s = server()
    s.receive_data(to_server(0x02, b"start"))
    fails_with(s, header(second, 500, MASK) + b"abc", 1002)


def test_invalid_utf8_in_one_frame() -> None:
    events = fails_with(server(), to_server(0x81, b"caf\xc3"), 1007)
    assert events == []
    fails_with(server(), to_server(0x81, b"\xed\xa0\x80"), 1007)  # a surrogate
    fails_with(client(), to_client(0x81, b"\xff"), 1007)


def test_invalid_utf8_fails_fast_in_first_fragment() -> None:
    # The message isn't complete, but it can't become valid: fail now.
    s = server()
    fails_with(s, to_server(0x01, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"), 1007)
    # An incomplete character at the end of a fragment is fine.
    s = server()
    assert s.receive_data(to_server(0x01, b"a\xce")) == [Fragment("a", False)]
    assert s.receive_data(to_server(0x80, b"\xba")) == [Fragment("κ", True)]
    # But not at the end of the message.
    s = server()
    s.receive_data(to_server(0x01, b"a\xce"))
    fails_with(s, to_server(0x80, b""), 1007)


@pytest.mark.parametrize("fin", [0x80, 0x00])
@pytest.mark.parametrize("prefix", [b"", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"])
@pytest.mark.parametrize("into", [1, 2, 3, 4])
def test_invalid_utf8_fails_fast_within_partial_frame(fin: int, prefix: bytes, into: int) -> None:
    """Autobahn 6.4.x: fail as soon as the bad bytes arrive, not when the frame is complete."""
    bad = prefix + b"\xf4\x90\x80\x80"
    payload = bad + b"-edited" * 20
    for conn, data in [(server(), to_server(fin | 0x1, payload)), (client(), to_client(fin | 0x1, payload))]:
        hlen = len(data) - len(payload)
        # The header and the payload up to ``into`` bytes into the bad sequence
        # (\xf4\x90 can't start any character: two bytes are enough).
        part = data[: hlen + len(prefix) + max(into, 2)]
        events = conn.receive_data(part)
        assert conn.failure is not None or conn.failure_pending
        settle(conn, events)
        assert_failed(conn, 1007)
        # What came before the bad sequence may have been passed on, as text.
        assert collapse(events) == []
        assert "".join(event.data for event in events) in ("", prefix.decode())
        assert conn.receive_data(data[len(part) :]) == []


def test_invalid_utf8_fails_fast_in_later_fragment_still_arriving() -> None:
    s = server()
    assert s.receive_data(to_server(0x01, b"ok \xce")) == [Fragment("ok ", False)]
    data = to_server(0x80, b"\xba\xf4\x90\x80\x80" + b"x" * 500)
    events = s.receive_data(data[:12])
    settle(s, events)
    assert_failed(s, 1007)


def test_close_with_one_byte_payload() -> None:
    fails_with(server(), to_server(0x88, b"\x03"), 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    s = server()
    fails_with(s, to_server(0x88, close_payload(code)), 1002)
    assert s.close_rcvd is None


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_echoed(code: int) -> None:
    s = server()
    events = s.receive_data(to_server(0x88, close_payload(code, "réason".encode())))
    assert events == [Close(code, "réason")]
    assert s.close_rcvd == Close(code, "réason")
    assert s.failure is None
    # The echo carries the code and the reason back.
    assert parse_out(s.data_to_send(), False) == [(0x88, close_payload(code, "réason".encode()))]
    assert s.close_sent == Close(code, "réason")
    assert s.close_rcvd_then_sent is True
    assert s.state is State.CLOSED


def test_close_reason_invalid_utf8() -> None:
    fails_with(server(), to_server(0x88, close_payload(1000, b"\xff\xfe")), 1007)
    fails_with(client(), to_client(0x88, close_payload(1000, b"ok\xc3")), 1007)


def test_close_reason_max_length() -> None:
    s = server()
    assert s.receive_data(to_server(0x88, close_payload(1000, b"r" * 123))) == [Close(1000, "r" * 123)]


@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x0, 0x9])
def test_64bit_length_with_msb_set(opcode: int) -> None:
    length = (1 << 63) | 5
    fails_with(server(max_size=None), header(0x80 | opcode, length, MASK, form=64) + b"hello", 1002)
    fails_with(client(max_size=None), header(0x80 | opcode, length, None, form=64), 1002)


def test_64bit_length_largest_valid_is_too_big() -> None:
    fails_with(server(), header(0x82, (1 << 63) - 1, MASK, form=64), 1009)


def test_non_minimal_length_encodings_are_accepted() -> None:
    s = server()
    data = header(0x82, 5, MASK, form=16) + frames.py_apply_mask(b"hello", MASK)
    data += header(0x82, 5, MASK, form=64) + frames.py_apply_mask(b"hello", MASK)
    assert s.receive_data(data) == [b"hello", b"hello"]


def test_max_size_in_one_frame() -> None:
    s = server(max_size=100)
    fails_with(s, to_server(0x82, b"x" * 101), 1009)
    # Known from the header alone: no need to wait for the payload.
    s = server(max_size=100)
    fails_with(s, header(0x82, 101, MASK), 1009)
    s = server(max_size=100)
    fails_with(s, header(0x81, 10**9, MASK, form=64) + b"ab", 1009)
    s = server(max_size=None)
    assert s.receive_data(to_server(0x82, b"x" * 200_000)) == [b"x" * 200_000]


def test_max_size_across_fragments() -> None:
    s = server(max_size=100)
    assert s.receive_data(to_server(0x02, b"x" * 60)) == [Fragment(b"x" * 60, False)]
    fails_with(s, to_server(0x80, b"x" * 41), 1009)
    # Exactly at the limit is fine.
    s = server(max_size=100)
    events = s.receive_data(to_server(0x02, b"x" * 60) + to_server(0x00, b"") + to_server(0x80, b"x" * 40))
    assert collapse(events) == [b"x" * 100]
    # The limit is per message.
    assert collapse(s.receive_data(to_server(0x02, b"x" * 60) + to_server(0x80, b"x" * 40))) == [b"x" * 100]
    # Still arriving: fails on the header of the fragment that goes over.
    s = server(max_size=100)
    s.receive_data(to_server(0x01, b"x" * 60))
    fails_with(s, header(0x80, 41, MASK), 1009)


def test_max_fragments() -> None:
    s = server(max_fragments=3)
    events = s.receive_data(to_server(0x01, b"a") + to_server(0x00, b"") + to_server(0x80, b"c"))
    assert collapse(events) == ["ac"]
    s.receive_data(to_server(0x01, b"a") + to_server(0x00, b"b") + to_server(0x00, b"c"))
    fails_with(s, to_server(0x80, b""), 1009)
    # Empty fragments count too.
    s = server(max_fragments=100)
    fails_with(s, to_server(0x02, b"") + to_server(0x00, b"") * 200, 1009)
    s = server(max_fragments=None)
    assert collapse(s.receive_data(to_server(0x02, b"") + to_server(0x00, b"") * 5000 + to_server(0x80, b""))) == [b""]


_decompressobj = zlib.decompressobj


class SpyDecompressor:
    """A zlib decompressor that records how much each call produced."""

    def __init__(self, wbits: int, log: list[int]) -> None:
        self._d = _decompressobj(wbits)
        self._log = log

    def decompress(self, data: Any, max_length: int = 0) -> bytes:
        out = self._d.decompress(data, max_length)
        self._log.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._d, name)


@pytest.fixture
def inflated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    log: list[int] = []
    monkeypatch.setattr(deflate_module.zlib, "decompressobj", lambda wbits: SpyDecompressor(wbits, log))
    return log


BOMB_SIZE = 50_000_000


def bomb_payload() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(b"\x00" * BOMB_SIZE) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff") and len(data) < 100_000
    return data[:-4]


@pytest.mark.parametrize("chunk", [None, 1000, 7])
def test_max_size_after_decompression(inflated: list[int], chunk: int | None) -> None:
    s, c = pair(deflate=True, max_size=10_000)
    bomb = bomb_payload()
    data = to_server(0xC2, bomb)
    if chunk == 7:
        data = data[:5000]  # enough to go over the limit
    cuts = list(range(chunk, len(data), chunk)) if chunk else []
    events = feed(s, data, cuts)
    settle(s, events)
    assert_failed(s, 1009)
    assert sum(inflated) <= 10_000 + 1
    assert s.receive_data(data) == []


def test_max_size_after_decompression_across_fragments(inflated: list[int]) -> None:
    s = server(max_size=10_000)
    s._set_extensions([deflate_pair()[0]])
    bomb = bomb_payload()
    step = len(bomb) // 10
    data = to_server(0x42, bomb[:step]) + b"".join(to_server(0x00, bomb[i : i + step]) for i in range(step, len(bomb), step))
    events = s.receive_data(data)
    settle(s, events)
    assert_failed(s, 1009)
    assert sum(inflated) <= 10_000 + 1


def test_compressed_message_at_the_limit() -> None:
    s, c = pair(deflate=True, max_size=10_000)
    assert collapse(feed(s, c.send_message(b"a" * 10_000), [5, 10, 20])) == [b"a" * 10_000]
    assert s.receive_data(c.send_message(b"b" * 10_000)) == [b"b" * 10_000]
    fails_with(s, c.send_message(b"b" * 10_001), 1009)


def test_empty_compressed_message() -> None:
    s, c = pair(deflate=True)
    data = c.send_message(b"", compress=True)
    assert data[0] & 0x40
    assert s.receive_data(data) == [b""]
    assert s.receive_data(c.send_message("", compress=True)) == [""]


def test_compress_option() -> None:
    s, c = pair(deflate=True)
    assert not c.send_message(b"x" * 1000, compress=False)[0] & 0x40
    assert c.send_message(b"x", compress=True)[0] & 0x40
    assert not c.send_message(b"x" * 127)[0] & 0x40
    assert c.send_message(b"x" * 128)[0] & 0x40


def test_invalid_compressed_data() -> None:
    s, _ = pair(deflate=True)
    fails_with(s, to_server(0xC1, b"\xff\xff\xff\xff"), 1002)


def test_compressed_invalid_utf8() -> None:
    s, c = pair(deflate=True)
    fails_with(s, to_server(0xC1, c.deflate.compress(b"abc\xff" * 100)), 1007)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# Deferred failure: the application sees what came before the error first


@pytest.mark.parametrize(
    "bad, code",
    [
        (to_server(0x83, b""), 1002),  # reserved opcode
        (to_client(0x81, b"x"), 1002),  # unmasked
        (to_server(0x80, b"x"), 1002),  # continuation without start
        (to_server(0x81, b"\xff"), 1007),  # invalid UTF-8
        (to_server(0x88, b"\x03"), 1002),  # 1-byte close
        (to_server(0x82, b"x" * 2000), 1009),  # too big
        (header(0x82, 2000, MASK), 1009),  # too big, still arriving
    ],
)
def test_deferred_failure(bad: bytes, code: int) -> None:
    s = server(max_size=1000)
    events = s.receive_data(to_server(0x81, b"hello") + to_server(0x89, b"p") + bad + to_server(0x81, b"after"))
    assert events == ["hello", Ping(b"p")]
    assert s.failure_pending
    assert s.failure is None
    assert s.state is State.OPEN
    # The pong is out; the close frame isn't yet.
    assert parse_out(s.data_to_send(), False) == [(0x8A, b"p")]
    # The application may still answer what it got.
    assert s.send_message("reply")
    s.apply_deferred_failure()
    assert_failed(s, code)
    assert s.receive_data(to_server(0x81, b"more")) == []


def test_deferred_failure_with_more_data() -> None:
    s = server()
    assert s.receive_data(to_server(0x81, b"hello") + to_server(0x83, b"")) == ["hello"]
    assert s.failure_pending
    # Data after the error is ignored, and doesn't fail the connection before
    # the I/O layer says so (the application may still be answering "hello").
    assert s.receive_data(to_server(0x81, b"more") + to_server(0x89, b"ping")) == []
    assert s.failure_pending and s.data_to_send() == b""
    s.apply_deferred_failure()
    assert_failed(s, 1002)


def test_no_deferred_failure_behind_a_partial_message() -> None:
    """Autobahn 5.18: a partial message isn't worth waiting for; fail at once."""
    s = server()
    events = s.receive_data(to_server(0x01, b"part") + to_server(0x81, b"new"))
    assert events == [Fragment("part", False)]
    assert not s.failure_pending
    assert_failed(s, 1002)


def test_deferred_failure_behind_last_fragment() -> None:
    s = server()
    events = s.receive_data(to_server(0x01, b"a") + to_server(0x80, b"b") + to_server(0x83, b""))
    assert events == [Fragment("a", False), Fragment("b", True)]
    assert s.failure_pending
    s.apply_deferred_failure()
    assert_failed(s, 1002)


def test_no_deferred_failure_behind_control_frames_only() -> None:
    s = server()
    events = s.receive_data(to_server(0x89, b"p") + to_server(0x83, b""))
    assert events == [Ping(b"p")]
    assert not s.failure_pending
    # The pong was queued before the close frame.
    assert [head for head, _ in parse_out(s.data_to_send(), False)] == [0x8A, 0x88]
    assert s.failure is not None and s.failure.code == 1002


def test_defer_failures_holds_every_error_for_the_io_layer() -> None:
    """A threaded I/O layer asks for every error to wait, with or without messages before it."""
    s = server()
    s.defer_failures = True
    assert s.receive_data(to_server(0x83, b"")) == []
    assert s.failure_pending and s.data_to_send() == b""
    s.apply_deferred_failure()
    assert_failed(s, 1002)


def test_no_failure_pending_without_events() -> None:
    s = server()
    assert s.receive_data(to_server(0x83, b"")) == []
    assert not s.failure_pending
    assert_failed(s, 1002)


def test_fail_explicitly() -> None:
    s = server()
    s.fail(1011, "internal error")
    assert_failed(s, 1011)
    assert s.close_sent == Close(1011, "internal error")
    assert s.why == "internal error"
    # A long reason is cut to fit in a close frame, on a character boundary.
    c = client()
    c.fail(1008, "é" * 100)
    out = parse_out(c.data_to_send(), True)
    assert out[0][0] == 0x88 and len(out[0][1]) <= 125
    assert Close.parse(out[0][1]).reason == "é" * 61


# ---------------------------------------------------------------------------
# The closing handshake


@pytest.mark.parametrize("first", ["server", "client"])
def test_closing_handshake(first: str) -> None:
    s, c = pair()
    initiator, responder = (s, c) if first == "server" else (c, s)
    data = initiator.send_close(1000, "bye")
    assert initiator.state is State.CLOSING
    assert initiator.close_sent == Close(1000, "bye")
    assert initiator.close_rcvd is None and initiator.close_rcvd_then_sent is None
    assert bool(data[1] & 0x80) == (initiator is c)
    # The initiator may still receive messages meanwhile.
    assert initiator.receive_data(responder.send_message("in flight")) == ["in flight"]
    # The responder gets the close frame and echoes it.
    assert responder.receive_data(data) == [Close(1000, "bye")]
    assert responder.state is State.CLOSED
    assert responder.close_rcvd == Close(1000, "bye")
    assert responder.close_sent == Close(1000, "bye")
    assert responder.close_rcvd_then_sent is True
    echo = responder.data_to_send()
    assert initiator.receive_data(echo) == [Close(1000, "bye")]
    assert initiator.state is State.CLOSED
    assert initiator.close_rcvd == Close(1000, "bye")
    assert initiator.close_rcvd_then_sent is False
    # Nothing more to send, from either side.
    assert initiator.data_to_send() == b"" and responder.data_to_send() == b""
    assert initiator.why == "" and responder.why == ""
    assert initiator.failure is None and responder.failure is None


def test_closing_state_does_not_answer_pings() -> None:
    s, c = pair()
    c.send_close()
    assert c.receive_data(s.send_ping(b"x")) == [Ping(b"x")]
    assert c.data_to_send() == b""  # a close frame is already out: no pong after it


@pytest.mark.parametrize("state", ["closing", "closed"])
def test_sending_after_close_raises(state: str) -> None:
    s, c = pair()
    c.send_close()
    if state == "closed":
        c.receive_data(s.send_close())
        assert c.state is State.CLOSED
    for call in (
        lambda: c.send_message("x"),
        lambda: c.send_text("x"),
        lambda: c.send_binary(b"x"),
        lambda: c.send_fragment("x", first=True, last=True),
        lambda: c.send_ping(),
        lambda: c.send_pong(),
        lambda: c.send_close(),
    ):
        with pytest.raises(InvalidState):
            call()


def test_sending_after_failure_or_eof_raises() -> None:
    s = server()
    s.receive_data(to_server(0x83, b""))
    with pytest.raises(InvalidState):
        s.send_message("x")
    c = client()
    c.receive_eof()
    with pytest.raises(InvalidState):
        c.send_close()


def test_close_without_code_is_echoed_empty() -> None:
    s, c = pair()
    data = c.send_close(1005)
    assert parse_out(data, True) == [(0x88, b"")]
    assert c.close_sent == Close(1005)
    assert s.receive_data(data) == [Close(1005, "")]
    assert parse_out(s.data_to_send(), False) == [(0x88, b"")]
    assert s.close_sent == Close(1005)
    assert c.receive_data(to_client(0x88)) == [Close(1005, "")]
    assert c.state is State.CLOSED
    assert c.close_rcvd_then_sent is False


def test_close_1005_ignores_reason() -> None:
    c = client()
    assert parse_out(c.send_close(1005, "ignored"), True) == [(0x88, b"")]


@pytest.mark.parametrize("code", [1006, 1015, 0, 999, 1004, 1016, 2999, 5000])
def test_send_close_refuses_codes_not_for_the_wire(code: int) -> None:
    c = client()
    with pytest.raises(ValueError):
        c.send_close(code)
    assert c.state is State.OPEN and c.close_sent is None


def test_send_close_reason_too_long() -> None:
    c = client()
    c.send_close(1000, "x" * 123)
    c = client()
    with pytest.raises(ValueError):
        c.send_close(1000, "x" * 124)
    assert c.state is State.OPEN and c.close_sent is None


def test_frames_after_close_are_ignored() -> None:
    s = server()
    events = s.receive_data(to_server(0x81, b"a") + to_server(0x88, close_payload(1001)) + to_server(0x81, b"b") + b"\xff\xff")
    assert events == ["a", Close(1001)]
    assert s.failure is None
    assert parse_out(s.data_to_send(), False) == [(0x88, close_payload(1001))]
    assert s.receive_data(to_server(0x89, b"p")) == []
    assert s.data_to_send() == b""


def test_close_between_fragments() -> None:
    s = server()
    events = s.receive_data(to_server(0x01, b"par") + to_server(0x88, close_payload(1000)))
    assert events == [Fragment("par", False), Close(1000)]
    assert s.state is State.CLOSED


def test_close_frame_bytewise() -> None:
    s = server()
    assert feed_bytewise(s, to_server(0x88, close_payload(1000, b"done"))) == [Close(1000, "done")]


def test_eof_without_close() -> None:
    s = server()
    assert s.receive_eof() == []
    assert s.state is State.CLOSED
    assert s.why == "EOF without a close frame"
    assert s.eof_received
    assert s.data_to_send() == b""
    assert s.receive_data(to_server(0x81, b"x")) == []
    assert s.receive_eof() == []


def test_eof_while_closing() -> None:
    c = client()
    c.send_close()
    c.receive_eof()
    assert c.state is State.CLOSED
    assert c.why == "EOF without a close frame"
    assert c.close_rcvd is None


def test_eof_after_closing_handshake() -> None:
    s, c = pair()
    s.receive_data(c.send_close())
    c.receive_data(s.data_to_send())
    c.receive_eof()
    assert c.state is State.CLOSED
    assert c.why == ""


def test_eof_in_the_middle_of_a_message() -> None:
    s = server()
    s.receive_data(to_server(0x01, b"abc") + header(0x80, 100, MASK))
    s.receive_eof()
    assert s.state is State.CLOSED
    assert s.why == "EOF without a close frame"


def test_failure_after_own_close_sends_no_second_close() -> None:
    s, c = pair()
    c.send_close()
    c.receive_data(to_client(0x83, b""))
    assert c.failure is not None and c.failure.code == 1002
    assert c.state is State.CLOSED
    assert c.data_to_send() == b""
    assert c.close_sent == Close(1000)


def test_io_layer_contract_outgoing_buffered_and_deferred_failure() -> None:
    """What an I/O layer reads: outgoing (anything to write?), buffered, and when a held-back error fails."""
    s = server()
    assert s.outgoing == [] and s.buffered == 0
    s.apply_deferred_failure()  # nothing pending: nothing happens
    assert s.state is State.OPEN and s.failure is None
    assert s.receive_data(to_server(0x89, b"p") + to_server(0x81, b"hi")[:3]) == [Ping(b"p")]
    assert s.outgoing and s.buffered == 3  # the pong waits; so does the partial frame
    assert parse_out(s.data_to_send(), False) == [(0x8A, b"p")]
    assert s.outgoing == []
    assert s.receive_data(to_server(0x81, b"hi")[3:] + to_server(0x83, b"")) == ["hi"]
    assert s.failure_pending and s.buffered == 0
    assert s.receive_data(b"") == [] and s.failure_pending  # feeding nothing doesn't decide for the I/O layer
    s.apply_deferred_failure()
    assert_failed(s, 1002)


def test_old_name_of_the_core_still_imports() -> None:
    import wsio
    from wsio.protocol import Connection

    assert Connection is Protocol and wsio.Protocol is Protocol


def test_ping_bookkeeping_a_pong_answers_its_ping_and_the_earlier_ones() -> None:
    c = client()
    assert c.acknowledge(b"none") == [] and c.drop_pings() == []
    first, second, third = c.new_ping_payload(), b"two", b"three"
    for data, waiter in ((first, "w1"), (second, "w2"), (third, "w3")):
        c.send_ping(data, waiter)
    c.send_ping(b"unwatched")  # no waiter: nothing to acknowledge later
    assert c.ping_waiting(second) and not c.ping_waiting(b"unwatched")
    assert c.new_ping_payload() not in (first, second, third) and len(c.new_ping_payload()) == 4
    with pytest.raises(ConcurrencyError, match="already waiting for its pong"):
        c.send_ping(second, "again")
    assert c.acknowledge(b"unsolicited") == []
    assert c.acknowledge(second) == ["w1", "w2"]  # its own waiter last
    assert not c.ping_waiting(first) and c.ping_waiting(third)
    c.send_ping(second, "w2 again")  # its payload is free again
    assert c.drop_pings() == ["w3", "w2 again"] and c.drop_pings() == []
