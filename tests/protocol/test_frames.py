"""Framing (wsio.protocol.frames): headers, masking, the parse loop, close frames.

``parse_frames``, ``apply_mask`` and ``build_frame`` are tested on every
implementation available (the pure-Python reference and the C accelerator),
through the ``impl`` fixture; test_speedups.py checks that the two agree on
arbitrary inputs, this file checks that they are right.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsio.exceptions import ProtocolError
from wsio.protocol import frames
from wsio.protocol.frames import (
    Close,
    CloseCode,
    MaskSource,
    Opcode,
    check_header,
    close_code_explanation,
    is_valid_close_code,
    parse_header,
)

try:
    from wsio.protocol import _speedups as C
except ImportError:  # pragma: no cover - not built
    C = None


class Impl:
    def __init__(self, name: str, parse_frames, apply_mask, build_frame) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self.parse_frames = parse_frames
        self.apply_mask = apply_mask
        self.build_frame = build_frame

    def __repr__(self) -> str:
        return self.name


IMPLS = [Impl("py", frames.py_parse_frames, frames.py_apply_mask, frames.py_build_frame)]
if C is not None and not os.environ.get("WSIO_NO_SPEEDUPS"):
    IMPLS.append(Impl("c", C.parse_frames, C.apply_mask, C.build_frame))


@pytest.fixture(params=IMPLS, ids=repr)
def impl(request: pytest.FixtureRequest) -> Impl:
    return request.param  # type: ignore[no-any-return]


MASK = b"\x12\x34\x56\x78"


def header(head: int, length: int, mask: bytes | None = None, form: int | None = None) -> bytes:
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


def xor(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """Masking, the obvious way."""
    return bytes(b ^ mask[(i + offset) % 4] for i, b in enumerate(data))


# ---------------------------------------------------------------------------
# Constants and close codes


def test_opcodes() -> None:
    assert [int(op) for op in Opcode] == [0, 1, 2, 8, 9, 10]
    assert (frames.OP_CONT, frames.OP_TEXT, frames.OP_BINARY) == (0, 1, 2)
    assert (frames.OP_CLOSE, frames.OP_PING, frames.OP_PONG) == (8, 9, 10)


def test_valid_close_codes() -> None:
    valid = {code for code in range(0, 70000) if is_valid_close_code(code)}
    expected = {1000, 1001, 1002, 1003} | set(range(1007, 1015)) | set(range(3000, 5000))
    assert valid == expected
    for code in (1005, 1006, 1015):
        assert not is_valid_close_code(code)
        assert code in set(CloseCode)


def test_close_code_explanation() -> None:
    assert close_code_explanation(1000) == "OK"
    assert close_code_explanation(1006) == "connection closed abnormally"
    assert close_code_explanation(3000) == "registered"
    assert close_code_explanation(4999) == "private use"
    assert close_code_explanation(2000) == "unknown"


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4999])
def test_close_round_trip(code: int) -> None:
    close = Close(code, "réason")
    assert Close.parse(close.serialize()) == close
    assert close.serialize() == struct.pack("!H", code) + "réason".encode()


def test_close_empty() -> None:
    assert Close.parse(b"") == Close(1005, "")
    assert Close(1005).serialize() == b""
    assert Close(1005, "ignored").serialize() == b""


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"\x03", 1002),
        (b"\x00\x00", 1002),
        (b"\x03\xe7", 1002),  # 999
        (b"\x03\xec", 1002),  # 1004
        (b"\x03\xed", 1002),  # 1005
        (b"\x03\xee", 1002),  # 1006
        (b"\x03\xf7", 1002),  # 1015
        (b"\x03\xf8", 1002),  # 1016
        (b"\x0b\xb7", 1002),  # 2999
        (b"\x13\x88", 1002),  # 5000
        (b"\x03\xe8\xff", 1007),
        (b"\x03\xe8\xed\xa0\x80", 1007),
        (b"\x03\xe8ok\xc3", 1007),
    ],
)
def test_close_parse_errors(payload: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        Close.parse(payload)
    assert info.value.code == code


def test_close_reason_length() -> None:
    assert len(Close(1000, "x" * 123).serialize()) == 125
    with pytest.raises(ValueError):
        Close(1000, "x" * 124).serialize()
    with pytest.raises(ValueError):
        Close(1000, "é" * 62).serialize()


def test_close_str() -> None:
    assert str(Close(1000, "bye")) == "code = 1000 (OK), reason = bye"
    assert str(Close(1005)) == "code = 1005 (no status received [internal]), no reason"


# ---------------------------------------------------------------------------
# Masking


@given(data=st.binary(max_size=300), mask=st.binary(min_size=4, max_size=4), offset=st.integers(0, 100))
def test_apply_mask_is_xor(data: bytes, mask: bytes, offset: int) -> None:
    for impl in IMPLS:
        masked = impl.apply_mask(data, mask, offset)
        assert type(masked) is bytes
        assert masked == xor(data, mask, offset)
        assert impl.apply_mask(masked, mask, offset) == data


@pytest.mark.parametrize("size", [0, 1, 3, 4, 15, 16, 17, 63, 64, 65, 1000, 65535, 65536, 1 << 20])
def test_apply_mask_sizes(impl: Impl, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    key = MASK * (size // 4 + 1)
    expected = bytes(a ^ b for a, b in zip(data, key))
    masked = impl.apply_mask(data, MASK)
    assert masked == expected
    assert impl.apply_mask(masked, MASK) == data


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5, 7, 100])
def test_apply_mask_in_pieces(impl: Impl, split: int) -> None:
    """Masking a payload piece by piece, with the offset, is masking it whole (streamed frames)."""
    data = bytes(range(200))
    pieces = [impl.apply_mask(data[i : i + split], MASK, i) for i in range(0, len(data), split)]
    assert b"".join(pieces) == impl.apply_mask(data, MASK)


def test_apply_mask_accepts_buffers(impl: Impl) -> None:
    for data in (b"abcdef", bytearray(b"abcdef"), memoryview(b"abcdef")):
        assert impl.apply_mask(data, MASK) == xor(b"abcdef", MASK)


@pytest.mark.parametrize("cls", [frames.PyMaskSource, MaskSource])  # Python, and C when built
def test_mask_source_keys(cls: type) -> None:
    source = cls()
    keys = [source() for _ in range(5000)]  # more than one 4 KiB pool
    assert all(type(key) is bytes and len(key) == 4 for key in keys)
    # 32 random bits each: a handful of collisions at most among 5000.
    assert len(set(keys)) >= 4990


# ---------------------------------------------------------------------------
# Building frames


@pytest.mark.parametrize(
    "size, form",
    [(0, 7), (1, 7), (125, 7), (126, 16), (65535, 16), (65536, 64), (1 << 20, 64)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_build_frame_lengths(impl: Impl, size: int, form: int, masked: bool) -> None:
    payload = b"\xab" * size
    mask = MASK if masked else None
    data = impl.build_frame(0x82, payload, mask)
    expected = header(0x82, size, mask, form)
    assert data[: len(expected)] == expected
    body = data[len(expected) :]
    assert body == (bytes(b ^ 0xAB for b in (MASK * (size // 4 + 1))[:size]) if masked else payload)
    # And it parses back.
    parsed, pos, error = impl.parse_frames(data, 0, masked, False)
    assert (parsed, pos, error) == ([(0x82, payload)], len(data), None)


def test_build_frame_heads(impl: Impl) -> None:
    for head in (0x81, 0x01, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1):
        assert impl.build_frame(head, b"x")[0] == head


# ---------------------------------------------------------------------------
# Parsing


def test_parse_header() -> None:
    assert parse_header(b"", 0) is None
    assert parse_header(b"\x81", 0) is None
    assert parse_header(b"\x81\x05", 0) == (0x81, 5, None, 2)
    assert parse_header(b"\x81\x85" + MASK, 0) == (0x81, 5, MASK, 6)
    assert parse_header(b"\x81\x85" + MASK[:3], 0) is None
    assert parse_header(b"\x82\x7e\x01", 0) is None
    assert parse_header(b"\x82\x7e\x01\x00", 0) == (0x82, 256, None, 4)
    assert parse_header(header(0x82, 1 << 40), 0) == (0x82, 1 << 40, None, 10)
    assert parse_header(header(0x82, 1 << 40)[:9], 0) is None
    assert parse_header(b"xx\x81\x05", 2) == (0x81, 5, None, 4)


@pytest.mark.parametrize(
    "head, length, masked, expect_masked, rsv1_ok, error",
    [
        (0x81, 5, True, True, False, None),
        (0x81, 5, False, False, False, None),
        (0x81, 5, False, True, False, "peer sent an unmasked frame"),
        (0x81, 5, True, False, False, "peer sent a masked frame"),
        (0xC1, 5, True, True, False, "peer set a reserved bit without an extension that allows it"),
        (0xC1, 5, True, True, True, None),
        (0x41, 5, True, True, True, None),
        (0xA1, 5, True, True, True, "peer set a reserved bit without an extension that allows it"),
        (0x91, 5, True, True, True, "peer set a reserved bit without an extension that allows it"),
        (0xC0, 5, True, True, True, "peer set RSV1 on a continuation or contr"),
        (0xC9, 5, True, True, True, "peer set RSV1 on a continuation or contr"),
        (0x83, 0, True, True, False, "peer sent a frame with reserved opcode 3"),
        (0x8B, 0, True, True, False, "peer sent a frame with reserved opcode 11"),
        (0x09, 0, True, True, False, "peer sent a fragmented control frame"),
        (0x89, 126, True, True, False, "peer sent a control frame of 126 bytes; the limit is 125"),
        (0x89, 125, True, True, False, None),
        (0x82, 1 << 63, True, True, False, "peer sent a 64-bit length with the most significant bit set"),
        (0x82, (1 << 63) - 1, True, True, False, None),
    ],
)
def test_check_header(head: int, length: int, masked: bool, expect_masked: bool, rsv1_ok: bool, error: str | None) -> None:
    result = check_header(head, length, masked, expect_masked, rsv1_ok)
    if error is None:
        assert result is None
    else:
        assert result is not None and result[0] == 1002 and result[1].startswith(error)


def test_parse_frames_all_complete(impl: Impl) -> None:
    data = (
        impl.build_frame(0x81, b"hello", MASK)
        + impl.build_frame(0x89, b"", MASK)
        + impl.build_frame(0x02, b"\x00" * 300, MASK)
        + impl.build_frame(0x80, b"end", MASK)
    )
    parsed, pos, error = impl.parse_frames(data, 0, True, False)
    assert parsed == [(0x81, b"hello"), (0x89, b""), (0x02, b"\x00" * 300), (0x80, b"end")]
    assert pos == len(data) and error is None
    assert all(type(payload) is bytes for _, payload in parsed)


def test_parse_frames_from_offset(impl: Impl) -> None:
    data = b"junk" + impl.build_frame(0x81, b"hi")
    assert impl.parse_frames(data, 4, False, False) == ([(0x81, b"hi")], len(data), None)
    assert impl.parse_frames(bytearray(data), 4, False, False) == ([(0x81, b"hi")], len(data), None)


def test_parse_frames_stops_at_incomplete(impl: Impl) -> None:
    first = impl.build_frame(0x81, b"hello", MASK)
    second = impl.build_frame(0x82, b"x" * 1000, MASK)
    data = first + second
    for cut in range(len(first), len(data)):
        parsed, pos, error = impl.parse_frames(data[:cut], 0, True, False)
        assert parsed == [(0x81, b"hello")]
        assert pos == len(first)
        assert error is None
    for cut in range(0, len(first)):
        assert impl.parse_frames(data[:cut], 0, True, False) == ([], 0, None)


def test_parse_frames_error_after_good_frames(impl: Impl) -> None:
    good = impl.build_frame(0x81, b"ok", MASK)
    bad = impl.build_frame(0x83, b"", MASK)
    parsed, pos, error = impl.parse_frames(good + bad + good, 0, True, False)
    assert parsed == [(0x81, b"ok")]
    assert pos == len(good)
    assert error == (1002, "peer sent a frame with reserved opcode 3")


def test_parse_frames_error_before_payload(impl: Impl) -> None:
    """A bad header is reported as soon as it is complete, before its payload arrives."""
    assert impl.parse_frames(header(0x89, 200, MASK), 0, True, False)[2] == (
        1002,
        "peer sent a control frame of 200 bytes; the limit is 125",
    )
    assert impl.parse_frames(header(0x82, 1 << 63, MASK, 64), 0, True, False)[2] == (
        1002,
        "peer sent a 64-bit length with the most significant bit set",
    )
    assert impl.parse_frames(header(0x82, 10, None), 0, True, False)[2] == (1002, "peer sent an unmasked frame")


frame_specs = st.lists(
    st.tuples(
        st.sampled_from([0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2, 0x41]),
        st.one_of(st.binary(max_size=125), st.builds(lambda n: b"\x5a" * n, st.integers(126, 70000))),
        st.binary(min_size=4, max_size=4),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(specs=frame_specs, masked=st.booleans(), cut=st.integers(0, 10**6))
def test_parse_frames_round_trip(specs: list[tuple[int, bytes, bytes]], masked: bool, cut: int) -> None:
    specs = [(head, payload[:125] if head & 0x08 else payload, mask) for head, payload, mask in specs]
    for impl in IMPLS:
        data = b"".join(impl.build_frame(head, payload, mask if masked else None) for head, payload, mask in specs)
        expected = [(head, payload) for head, payload, _ in specs]
        assert impl.parse_frames(data, 0, masked, True) == (expected, len(data), None)
        # Cut anywhere: the complete frames before the cut, and pos at the first incomplete one.
        cut %= len(data) + 1
        parsed, pos, error = impl.parse_frames(data[:cut], 0, masked, True)
        assert error is None
        assert parsed == expected[: len(parsed)]
        assert data[:pos] == b"".join(impl.build_frame(h, p, m if masked else None) for h, p, m in specs[: len(parsed)])
        assert pos <= cut
        # The rest parses from pos once complete.
        rest, end, error = impl.parse_frames(data, pos, masked, True)
        assert parsed + rest == expected and end == len(data) and error is None
