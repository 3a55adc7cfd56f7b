"""The C accelerator agrees with the pure-Python reference in frames.py on every input.

Results are compared as whole return values, types included (``bytes`` is not
``bytearray``), and exceptions by type. The reference's ``parse_frames`` and
``build_frame`` look ``apply_mask`` up as a module global, which the C version
replaces when it is installed, so :func:`reference` puts the Python one back
for the duration of a call.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wsio.protocol import frames

# make builds the extension (the pure-Python path runs the same tests with
# WSIO_NO_SPEEDUPS=1 set): a missing or broken build fails here, never skips.
from wsio.protocol import _speedups as C


# ---------------------------------------------------------------------------
# Helpers


def typed(value):
    """``value`` with the type of every leaf next to it, so equality checks types too."""
    if isinstance(value, tuple):
        return ("tuple", tuple(typed(v) for v in value))
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value), value)


def outcome(fn, *args, **kwargs):
    try:
        return typed(fn(*args, **kwargs))
    except Exception as exc:
        return ("raises", type(exc))


def reference(fn, *args, **kwargs):
    saved = frames.apply_mask
    frames.apply_mask = frames.py_apply_mask
    try:
        return outcome(fn, *args, **kwargs)
    finally:
        frames.apply_mask = saved


def same_parse(buf, pos, expect_masked, rsv1_ok):
    expected = reference(frames.py_parse_frames, buf, pos, expect_masked, rsv1_ok)
    assert outcome(C.parse_frames, buf, pos, expect_masked, rsv1_ok) == expected
    return expected


def same_build(head, payload, mask=None):
    expected = reference(frames.py_build_frame, head, payload, mask)
    assert outcome(C.build_frame, head, payload, mask) == expected
    return expected


def same_mask(data, mask, offset=0):
    expected = reference(frames.py_apply_mask, data, mask, offset)
    assert outcome(C.apply_mask, data, mask, offset) == expected
    return expected


KINDS = ["bytes", "bytearray", "memoryview", "unaligned"]


def as_buffer(data: bytes, kind: str):
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "unaligned":  # a view that starts off any word boundary
        return memoryview(b"\xaa\xbb\xcc" + data)[3:]
    if kind == "strided":  # not contiguous: the C code has to copy it first
        return memoryview(bytes(b for c in data for b in (c, 0x55)))[::2]
    return data


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def payloads(max_size: int):
    """Mostly small payloads, sometimes up to ``max_size`` (made from a seed: fast)."""
    big = st.builds(random_bytes, st.integers(0, max_size), st.integers(0, 2**32))
    return st.one_of(st.binary(max_size=300), big)


masks = st.binary(min_size=4, max_size=4)
kinds = st.sampled_from(KINDS)
heads = st.one_of(
    st.sampled_from([0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2, 0x41, 0x40]),
    st.integers(0, 255),
)


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


# ---------------------------------------------------------------------------
# The hook in frames.py


def test_frames_uses_the_extension():
    if os.environ.get("WSIO_NO_SPEEDUPS"):
        assert not frames.SPEEDUPS
        assert frames.apply_mask is frames.py_apply_mask
    else:
        assert frames.SPEEDUPS
        assert frames.apply_mask is C.apply_mask
        assert frames.parse_frames is C.parse_frames
        assert frames.build_frame is C.build_frame
        assert frames.Assembly is C.Assembly


# ---------------------------------------------------------------------------
# apply_mask


@settings(deadline=None, max_examples=300)
@given(data=payloads(70_000), mask=masks, offset=st.integers(0, 7) | st.integers(-(2**70), 2**70), kind=kinds)
@example(data=b"", mask=b"abcd", offset=0, kind="bytes")
@example(data=b"x" * 65536, mask=b"\xff\x00\xff\x00", offset=3, kind="bytearray")
def test_apply_mask_matches(data, mask, offset, kind):
    same_mask(as_buffer(data, kind), mask, offset)


@settings(deadline=None)
@given(data=st.binary(max_size=200), mask=masks, offset=st.integers(0, 3))
def test_apply_mask_strided_view(data, mask, offset):
    same_mask(as_buffer(data, "strided"), mask, offset)


@pytest.mark.parametrize("n", [1, 3, 7, 8, 15, 16, 17, 63, 64, 65, 511, 512, 513, 65535, 65536, 65537, 1 << 20, (1 << 20) + 5])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_apply_mask_fixed_sizes(n, offset):
    data = random_bytes(n, n)
    masked = same_mask(data, b"\x12\x34\x56\x78", offset)
    assert C.apply_mask(masked[1], b"\x12\x34\x56\x78", offset) == data  # its own inverse


def test_apply_mask_default_offset_and_keywords():
    data = random_bytes(1000)
    expected = frames.py_apply_mask(data, b"abcd")
    assert C.apply_mask(data, b"abcd") == expected
    assert C.apply_mask(data=data, mask=b"abcd", offset=0) == expected
    assert C.apply_mask(data, mask=bytearray(b"abcd"), offset=4) == expected
    assert C.apply_mask(data, b"abcd", True) == frames.py_apply_mask(data, b"abcd", 1)


def test_apply_mask_does_not_touch_its_input():
    data = bytearray(random_bytes(100_000))
    before = bytes(data)
    out = C.apply_mask(data, b"abcd", 1)
    assert type(out) is bytes and data == before


def test_apply_mask_empty_ignores_offset():
    # Like the reference, which returns before it looks at offset.
    assert C.apply_mask(b"", b"abcd", 1.5) == frames.py_apply_mask(b"", b"abcd", 1.5) == b""


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_apply_mask_rejects_a_mask_that_is_not_4_bytes(mask):
    # A deliberate difference: the reference masks with garbage instead.
    with pytest.raises(ValueError, match="4 bytes"):
        C.apply_mask(b"payload", mask)
    with pytest.raises(ValueError, match="4 bytes"):
        C.build_frame(0x82, b"payload", mask)


@pytest.mark.parametrize("args", [("text", b"abcd"), (b"data", "abcd"), (b"data", b"abcd", 1.5), (b"data",), ()])
def test_apply_mask_bad_arguments(args):
    assert outcome(C.apply_mask, *args) == reference(frames.py_apply_mask, *args) == ("raises", TypeError)


def test_apply_mask_in_threads():
    # Big payloads are masked without the GIL: several at once stay correct.
    inputs = [random_bytes((1 << 20) + i, i) for i in range(4)]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(5):
            results[i] = C.apply_mask(inputs[i], b"\x01\x02\x03\x04", i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, data in enumerate(inputs):
        assert results[i] == frames.py_apply_mask(data, b"\x01\x02\x03\x04", i)


# ---------------------------------------------------------------------------
# build_frame


@settings(deadline=None, max_examples=300)
@given(head=st.integers(0, 255), payload=payloads(70_000), mask=st.none() | masks, kind=kinds)
def test_build_frame_matches(head, payload, mask, kind):
    same_build(head, as_buffer(payload, kind), mask)


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 65537])
@pytest.mark.parametrize("mask", [None, b"\x00\x00\x00\x00", b"\xde\xad\xbe\xef", bytearray(b"wxyz")])
@pytest.mark.parametrize("kind", KINDS + ["strided"])
def test_build_frame_length_boundaries(n, mask, kind):
    payload = random_bytes(n, n)
    result = same_build(0x82, as_buffer(payload, kind), mask)
    if kind == "strided" and mask is None and n != 1:
        assert result == ("raises", TypeError)  # bytes + memoryview needs a contiguous one
        return
    frame = result[1]
    assert frame == header(0x82, n, None if mask is None else bytes(mask)) + frames.py_apply_mask(payload, mask or b"\0\0\0\0")


@pytest.mark.parametrize("head", [256, -1, 2**70, -(2**70), 1.5, "a", None, True])
@pytest.mark.parametrize("n", [3, 200, 70_000])
def test_build_frame_bad_head_raises_like_the_reference(head, n):
    payload = bytes(n)
    try:
        expected = frames.py_build_frame(head, payload)
    except Exception as exc:
        with pytest.raises(type(exc)) as info:
            C.build_frame(head, payload)
        assert str(info.value) == str(exc)
    else:
        assert C.build_frame(head, payload) == expected


@pytest.mark.parametrize(
    ("head", "error", "words"),
    [
        (256, ValueError, "frame head must be in range(0, 256), not 256"),
        (-1, ValueError, "frame head must be in range(0, 256), not -1"),
        (2**70, ValueError, f"frame head must be in range(0, 256), not {2**70}"),
        (1.5, TypeError, "frame head must be an integer, not float"),
        (None, TypeError, "frame head must be an integer, not NoneType"),
    ],
)
@pytest.mark.parametrize("n", [3, 200, 70_000])
@pytest.mark.parametrize("mask", [None, b"abcd"])
def test_build_frame_bad_head_raises_in_wsio_words(head, error, words, n, mask):
    # Not bytes()'s or struct's words, which differ with the header's length
    # and from one Python version to the next ("ubyte format requires..." until
    # 3.11, "'B' format requires..." from 3.12 on).
    for build in (C.build_frame, frames.py_build_frame, frames.build_frame):
        with pytest.raises(error) as info:
            build(head, bytes(n), mask)
        assert str(info.value) == words
    with pytest.raises(error) as info:
        frames.frame_header(head, n)
    assert str(info.value) == words


@pytest.mark.parametrize("head", [0x82, 300])
@pytest.mark.parametrize(
    ("payload", "mask"),
    [(5, None), (5, b"abcd"), ("text", None), ("text", b"abcd"), (None, b"abcd"), ([1, 2], None)]
    + [(as_buffer(b"abc", "strided"), None), (as_buffer(b"abc", "strided"), b"abcd")],
)
def test_build_frame_bad_payload_raises_like_the_reference(head, payload, mask):
    # (Not a list with a mask: the reference masks it, int.from_bytes takes one.)
    same_build(head, payload, mask)


def test_build_frame_keywords():
    expected = frames.py_build_frame(0x81, b"hello", b"abcd")
    assert C.build_frame(head=0x81, payload=b"hello", mask=b"abcd") == expected
    assert C.build_frame(0x81, b"hello", mask=None) == frames.py_build_frame(0x81, b"hello")
    with pytest.raises(TypeError):
        C.build_frame(0x81, b"hello", masks=b"abcd")
    with pytest.raises(TypeError):
        C.build_frame(0x81, payload=b"hello", head=0x81)
    with pytest.raises(TypeError):
        C.build_frame(0x81, b"", None, None)


# ---------------------------------------------------------------------------
# parse_frames


@settings(max_examples=500, deadline=None)
@given(data=st.data(), raw=st.binary(max_size=300), expect_masked=st.booleans(), rsv1_ok=st.booleans(), kind=kinds)
def test_parse_frames_matches_on_random_bytes(data, raw, expect_masked, rsv1_ok, kind):
    pos = data.draw(st.integers(0, len(raw) + 3), label="pos")
    same_parse(as_buffer(raw, kind), pos, expect_masked, rsv1_ok)


@settings(max_examples=500, deadline=None)
@given(
    specs=st.lists(st.tuples(heads, payloads(70_000), masks, st.booleans()), max_size=8),
    stream_masked=st.booleans(),
    expect_masked=st.booleans(),
    rsv1_ok=st.booleans(),
    prefix=st.binary(max_size=6),
    corruption=st.lists(st.tuples(st.integers(0, 2**32), st.integers(0, 255)), max_size=3),
    cut=st.none() | st.integers(0, 2**32),
    kind=kinds,
)
def test_parse_frames_matches_on_frame_streams(specs, stream_masked, expect_masked, rsv1_ok, prefix, corruption, cut, kind):
    # A valid stream (mostly), then a few corrupted bytes and a truncation.
    wire = bytearray(prefix)
    for head, payload, mask, flip in specs:
        wire += frames.py_build_frame(head, payload, mask if stream_masked != flip else None)
    for index, value in corruption:
        if wire:
            wire[index % len(wire)] = value
    if cut is not None:
        del wire[cut % (len(wire) + 1) :]
    buf = as_buffer(bytes(wire), kind)
    same_parse(buf, len(prefix), expect_masked, rsv1_ok)
    same_parse(buf, 0, expect_masked, rsv1_ok)


@settings(deadline=None)
@given(
    specs=st.lists(st.tuples(heads, payloads(70_000), st.none() | masks), max_size=4),
    pos=st.integers(0, 20),
    expect_masked=st.booleans(),
)
def test_parse_frames_strided_view(specs, pos, expect_masked):
    wire = b"".join(frames.py_build_frame(head, payload, mask) for head, payload, mask in specs)
    same_parse(as_buffer(wire, "strided"), pos, expect_masked, True)


@pytest.mark.parametrize("expect_masked", [False, True])
@pytest.mark.parametrize("rsv1_ok", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("length", [0, 5, 125, 126, 65535, 65536])
def test_parse_frames_every_head(expect_masked, rsv1_ok, masked, length):
    # All 256 first bytes: every FIN / RSV combination with every opcode.
    mask = b"\x0f\x1e\x2d\x3c" if masked else None
    payload = random_bytes(length, length)
    for head in range(256):
        full = frames.py_build_frame(head, payload, mask) + b"\x81"
        same_parse(full, 0, expect_masked, rsv1_ok)
        # The header alone: the checks come before waiting for the payload.
        same_parse(full[: len(full) - length - 1], 0, expect_masked, rsv1_ok)


@pytest.mark.parametrize(
    ("form", "n"),
    [
        (form, n)
        for form, limit in [(7, 125), (16, 65535), (64, 2**63)]
        for n in [0, 1, 125, 126, 127, 65535, 65536, 65537]
        if n <= limit
    ],
)
@pytest.mark.parametrize("mask", [None, b"\x01\x02\x03\x04"])
def test_parse_frames_length_encodings(form, n, mask):
    # Shortest and longer-than-needed encodings (the reference accepts both).
    payload = random_bytes(n, n)
    body = payload if mask is None else frames.py_apply_mask(payload, mask)
    wire = header(0x82, n, mask, form) + body
    result = same_parse(wire, 0, mask is not None, False)
    assert result == typed(([(0x82, payload)], len(wire), None))
    # One byte short of the payload: incomplete, nothing consumed.
    assert same_parse(wire[:-1], 0, mask is not None, False) == typed(([], 0, None))


def test_parse_frames_64_bit_msb():
    wire = b"\x82\x7f\x80" + bytes(7)
    assert same_parse(wire, 0, False, False) == typed(
        ([], 0, (1002, "peer sent a 64-bit length with the most significant bit set"))
    )
    # A control frame with that length fails on the control-frame limit first.
    wire = b"\x89\x7f\xff" + b"\xff" * 7
    assert same_parse(wire, 0, False, False) == typed(
        ([], 0, (1002, f"peer sent a control frame of {2**64 - 1} bytes; the limit is 125"))
    )
    # Just below: a valid header of a frame that isn't complete.
    wire = b"\x82\x7f\x7f" + b"\xff" * 7 + b"abc"
    assert same_parse(wire, 0, False, False) == typed(([], 0, None))
    same_parse(b"\x82\xff\x80" + bytes(7) + b"abcd", 0, True, False)


def test_parse_frames_control_frame_limits():
    ok = frames.py_build_frame(0x89, b"p" * 125)
    too_big = frames.py_build_frame(0x89, b"p" * 126)
    assert same_parse(ok + too_big, 0, False, False) == typed(
        ([(0x89, b"p" * 125)], len(ok), (1002, "peer sent a control frame of 126 bytes; the limit is 125"))
    )
    assert same_parse(b"\x09\x00", 0, False, False) == typed(([], 0, (1002, "peer sent a fragmented control frame")))


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("fin", [0, 0x80])
def test_parse_frames_reserved_opcodes(opcode, fin):
    assert same_parse(bytes((fin | opcode, 0)), 0, False, False) == typed(
        ([], 0, (1002, f"peer sent a frame with reserved opcode {opcode}"))
    )


@pytest.mark.parametrize("rsv", [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70])
@pytest.mark.parametrize("opcode", [0, 1, 2, 8, 9, 10])
@pytest.mark.parametrize("rsv1_ok", [False, True])
def test_parse_frames_rsv_bits(rsv, opcode, rsv1_ok):
    same_parse(bytes((0x80 | rsv | opcode, 0x80, 1, 2, 3, 4)), 0, True, rsv1_ok)


def test_parse_frames_every_truncation():
    wire = b"".join(
        frames.py_build_frame(head, payload, b"\x9a\xbc\xde\xf0")
        for head, payload in [(0x01, b"frag"), (0x89, b"ping"), (0x80, b"x" * 300), (0x82, b""), (0x88, b"\x03\xe8")]
    )
    for end in range(len(wire) + 1):
        for pos in range(0, min(end, 12) + 1):
            same_parse(wire[:end], pos, True, False)


def test_parse_frames_keeps_frames_before_an_error():
    wire = frames.py_build_frame(0x81, b"a") + frames.py_build_frame(0x82, b"bb") + b"\x83\x00"
    assert same_parse(wire, 0, False, False) == typed(
        ([(0x81, b"a"), (0x82, b"bb")], 7, (1002, "peer sent a frame with reserved opcode 3"))
    )
    assert same_parse(wire, 0, True, False)[1][2] == typed((1002, "peer sent an unmasked frame"))
    masked = frames.py_build_frame(0x81, b"a", b"abcd")
    assert same_parse(masked, 0, False, False)[1][2] == typed((1002, "peer sent a masked frame"))


@pytest.mark.parametrize("pos", [3, 4, 100, 2**62, 2**100, True, False])
def test_parse_frames_pos_past_the_end_or_odd(pos):
    same_parse(b"\x81\x01a", pos, False, False)
    found, new_pos, _ = C.parse_frames(b"\x81\x01a", pos, False, False)
    if not found:  # like the reference: the caller's own object back
        assert new_pos is pos


@pytest.mark.parametrize("flag", [0, 1, 2, None, "", "yes", 1.0])
def test_parse_frames_flags_are_any_object(flag):
    for wire in [frames.py_build_frame(0xC1, b"z", b"abcd"), frames.py_build_frame(0xC1, b"z"), b"\x81\x00"]:
        same_parse(wire, 0, flag, flag)
        same_parse(wire, 0, True, flag)
        same_parse(wire, 0, flag, True)


def test_parse_frames_negative_pos():
    # A deliberate difference: the reference indexes from the end instead.
    with pytest.raises(ValueError, match="pos"):
        C.parse_frames(b"\x81\x00", -1, False, False)


def test_parse_frames_keywords_and_bad_arguments():
    wire = b"\x81\x02hi"
    assert C.parse_frames(buf=wire, pos=0, expect_masked=False, rsv1_ok=False) == ([(0x81, b"hi")], 4, None)
    for args in [(wire, 0, False), ("text", 0, False, False), (wire, 1.5, False, False), (wire, "0", False, False)]:
        assert outcome(C.parse_frames, *args) == reference(frames.py_parse_frames, *args)


def test_parse_frames_does_not_hold_the_buffer():
    buf = bytearray(frames.py_build_frame(0x82, b"x" * 100_000, b"abcd"))
    frames_, pos, error = C.parse_frames(buf, 0, True, False)
    assert frames_ == [(0x82, b"x" * 100_000)] and pos == len(buf) and error is None
    del buf[:pos]  # would raise BufferError if a view were still exported
    buf = bytearray(b"\x81\x00")
    with pytest.raises(ValueError):
        C.parse_frames(buf, -5, False, False)
    buf += b"more"  # released on the error path too


# ---------------------------------------------------------------------------
# Assembly


def assemble(cls, data, mask, offset, cuts, kind):
    """Feed ``data`` to a ``cls`` cut at ``cuts``, the offset moving on like the core's."""
    assembly = cls(len(data))
    prev = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        cut = min(cut, len(data))
        assembly.feed(as_buffer(data[prev:cut], kind), mask, offset + prev)
        prev = max(prev, cut)
    return assembly.done()


@settings(deadline=None, max_examples=200)
@given(
    data=payloads(200_000),
    mask=st.none() | masks,
    offset=st.integers(0, 2**40),
    cuts=st.lists(st.integers(0, 200_000), max_size=6),
    kind=kinds,
)
def test_assembly_matches(data, mask, offset, cuts, kind):
    expected = data if mask is None else frames.py_apply_mask(data, mask, offset)
    assert outcome(assemble, C.Assembly, data, mask, offset, cuts, kind) == typed(expected)
    assert outcome(assemble, frames.PyAssembly, data, mask, offset, cuts, kind) == typed(expected)


@pytest.mark.parametrize("cls", ["C", "py"])
def test_assembly_errors(cls):
    Assembly = C.Assembly if cls == "C" else frames.PyAssembly
    with pytest.raises(ValueError):
        Assembly(-1)
    assembly = Assembly(4)
    assembly.feed(b"ab")
    with pytest.raises(ValueError):
        assembly.done()  # incomplete
    with pytest.raises(ValueError):
        assembly.feed(b"cde")  # past the size: nothing taken
    assembly.feed(b"cd", None, 0)
    assert assembly.done() == b"abcd"
    with pytest.raises(ValueError):
        assembly.feed(b"")  # after done()
    with pytest.raises(ValueError):
        assembly.done()
    if cls == "C":  # like apply_mask: the reference doesn't check the key's length
        with pytest.raises(ValueError):
            Assembly(4).feed(b"abcd", b"abc")
    assert Assembly(0).done() == b""


@pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="needs refcounts")
def test_no_reference_leaks():
    wire = frames.py_build_frame(0x81, b"hello", b"abcd") * 3 + b"\x83\x00"
    pos = 10**30
    before = sys.getrefcount(wire), sys.getrefcount(pos)
    for _ in range(1000):
        C.parse_frames(wire, 0, True, False)
        C.parse_frames(wire, pos, True, False)
        C.apply_mask(wire, b"abcd", 1)
        C.build_frame(0x82, wire, b"abcd")
        assembly = C.Assembly(len(wire))
        assembly.feed(wire, b"abcd", 3)
        assembly.done()
        try:
            C.parse_frames(wire, -1, True, False)
        except ValueError:
            pass
    assert (sys.getrefcount(wire), sys.getrefcount(pos)) == before


# ---------------------------------------------------------------------------
# parse_messages

CONTIGUOUS = ["bytes", "bytearray", "memoryview", "unaligned"]
max_sizes = st.one_of(st.none(), st.integers(-2, 300), st.sampled_from([0, 125, 126, 65535, 65536, 2**62, 2**80, -(2**80)]))
# Text payloads: valid UTF-8 mostly, sometimes cut inside a character or not UTF-8 at all.
texts = st.one_of(
    st.text(max_size=200).map(str.encode), st.text(min_size=1, max_size=50).map(lambda t: t.encode()[:-1]), st.binary(max_size=50)
)
message_heads = st.one_of(
    st.sampled_from([0x81, 0x82, 0x81, 0x82, 0x01, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x91, 0x83]), st.integers(0, 255)
)


def same_messages(buf, pos, expect_masked, max_size):
    expected = reference(frames.py_parse_messages, buf, pos, expect_masked, max_size)
    assert outcome(C.parse_messages, buf, pos, expect_masked, max_size) == expected
    return expected


@settings(max_examples=500, deadline=None)
@given(
    data=st.data(), raw=st.binary(max_size=300), expect_masked=st.booleans(), max_size=max_sizes, kind=st.sampled_from(CONTIGUOUS)
)
def test_parse_messages_matches_on_random_bytes(data, raw, expect_masked, max_size, kind):
    pos = data.draw(st.integers(0, len(raw) + 3), label="pos")
    same_messages(as_buffer(raw, kind), pos, expect_masked, max_size)


@settings(max_examples=500, deadline=None)
@given(
    specs=st.lists(st.tuples(message_heads, st.one_of(texts, payloads(70_000)), masks, st.integers(0, 9)), max_size=8),
    stream_masked=st.booleans(),
    expect_masked=st.booleans(),
    max_size=max_sizes,
    cut=st.none() | st.integers(0, 2**32),
    kind=st.sampled_from(CONTIGUOUS),
)
def test_parse_messages_matches_on_frame_streams(specs, stream_masked, expect_masked, max_size, cut, kind):
    wire = bytearray()
    for head, payload, mask, flip in specs:
        wire += frames.py_build_frame(head, payload, mask if stream_masked != (flip == 0) else None)
    if cut is not None:
        del wire[cut % (len(wire) + 1) :]
    (_, (messages, (_, pos))) = same_messages(as_buffer(bytes(wire), kind), 0, expect_masked, max_size)
    # What it took is exactly what the general path makes of those bytes.
    taken = [value for _, value in messages[1]]
    frames_, end, error = frames.py_parse_frames(bytes(wire[:pos]), 0, expect_masked, True)
    assert error is None and end == pos
    assert taken == [payload.decode() if head & 0x0F == 1 else payload for head, payload in frames_]


@pytest.mark.parametrize("n", [0, 1, 125, 126, 511, 512, 513, 65535, 65536, 70000])
@pytest.mark.parametrize("form", [7, 16, 64])
@pytest.mark.parametrize("masked", [False, True])
def test_parse_messages_lengths_and_text_sizes(n, form, masked):
    if form == 7 and n > 125 or form == 16 and n > 65535:
        return
    mask = b"\x01\x82\x03\x84" if masked else None
    text = ("é" * n)[: n // 2] + "a" * (n - 2 * (n // 2))  # n bytes of UTF-8
    payload = text.encode()
    assert len(payload) == n
    for opcode in (1, 2):
        body = frames.py_apply_mask(payload, mask) if mask else payload
        wire = header(0x80 | opcode, n, mask, form) + body
        for max_size in (None, n, n - 1):
            result = same_messages(wire + b"\x81", 0, masked, max_size)
            taken = max_size is None or n <= max_size
            assert result == typed(([text if opcode == 1 else payload] if taken else [], len(wire) if taken else 0))


def test_parse_messages_stops_at_invalid_utf8_and_keeps_what_came_before():
    wire = frames.py_build_frame(0x81, "ok".encode()) + frames.py_build_frame(0x81, b"\xff") + frames.py_build_frame(0x82, b"x")
    assert same_messages(wire, 0, False, None) == typed((["ok"], 4))
    surrogate = "\udcff".encode("utf-8", "surrogatepass")
    assert same_messages(frames.py_build_frame(0x81, surrogate), 0, False, None) == typed(([], 0))


def test_parse_messages_bad_arguments():
    for fn in (C.parse_messages, frames.py_parse_messages):
        with pytest.raises(TypeError):
            fn(b"", 0, True)
    with pytest.raises(ValueError):
        C.parse_messages(b"", -1, True, None)
    with pytest.raises(BufferError):  # a contiguous buffer only: the I/O layers pass one
        C.parse_messages(as_buffer(b"\x82\x00", "strided"), 0, False, None)
    assert C.parse_messages(buf=b"\x82\x00", pos=0, expect_masked=False, max_size=None) == ([b""], 2)


@pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="needs refcounts")
def test_parse_messages_no_reference_leaks():
    wire = frames.py_build_frame(0x81, b"hello", b"abcd") + frames.py_build_frame(0x82, b"x" * 600, b"abcd")
    wire += frames.py_build_frame(0x81, "é".encode() * 400, b"abcd") + frames.py_build_frame(0x81, b"\xff", b"abcd")
    before = sys.getrefcount(wire)
    for _ in range(1000):
        assert len(C.parse_messages(wire, 0, True, None)[0]) == 3
        C.parse_messages(wire, 0, True, 10)
    assert sys.getrefcount(wire) == before


# ---------------------------------------------------------------------------
# The state machine on each path: C, pure Python, and without the one-call path


def _no_fast_path(buf, pos, expect_masked, max_size):
    return [], pos


PATHS = {
    "C": {},
    "Python": {
        "apply_mask": frames.py_apply_mask,
        "parse_frames": frames.py_parse_frames,
        "parse_messages": frames.py_parse_messages,
        "build_frame": frames.py_build_frame,
        "Assembly": frames.PyAssembly,
    },
    "general": {"parse_messages": _no_fast_path},
}


def run_machine(path, chunks, side, max_size, max_fragments, defer):
    """Feed ``chunks`` to a fresh open Protocol with ``path``'s functions; return all it did, typed."""
    from wsio.protocol.machine import Protocol, Side

    saved = {name: getattr(frames, name) for name in PATHS[path]}
    if path == "C":
        for name in ("apply_mask", "parse_frames", "parse_messages", "build_frame", "Assembly"):
            saved[name] = getattr(frames, name)
            setattr(frames, name, getattr(C, name))
    for name, value in PATHS[path].items():
        setattr(frames, name, value)
    try:
        protocol = Protocol(Side.SERVER if side else Side.CLIENT, max_size=max_size, max_fragments=max_fragments)
        protocol._mask = lambda: b"\x00\x00\x00\x00"  # the same key on every path
        protocol.defer_failures = defer
        log = []
        for chunk in chunks:
            try:
                events = protocol.receive_data(chunk)
            except Exception as exc:  # none expected: a difference if one path raises
                log.append(("raises", type(exc).__name__, str(exc)))
                break
            log.append(typed(events))
            log.append(
                (protocol.state, protocol.failure_pending, protocol.discarding, protocol.buffered, protocol.data_to_send())
            )
            if protocol.failure_pending and len(log) % 4 == 0:
                protocol.apply_deferred_failure()
        failure = protocol.failure
        log.append((protocol.close_rcvd, protocol.close_sent, failure and (failure.code, str(failure)), protocol.why))
        return log
    finally:
        for name, value in saved.items():
            setattr(frames, name, value)


# Mostly whole messages (the one-call path), with fragments, control frames and errors among them.
all_heads = st.one_of(st.sampled_from([0x81, 0x82] * 6 + [0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1]), st.integers(0, 255))
valid_texts = st.text(max_size=200).map(str.encode)


@settings(max_examples=600, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            all_heads, st.one_of(valid_texts, valid_texts, texts, payloads(3000)), st.integers(0, 15).map(lambda n: n == 0)
        ),
        max_size=10,
    ),
    side=st.booleans(),
    max_size=st.none() | st.integers(0, 400),
    max_fragments=st.none() | st.integers(1, 4),
    defer=st.booleans(),
    cuts=st.lists(st.integers(0, 2**32), max_size=4),
    garbage=st.binary(max_size=4),
)
def test_receive_data_is_the_same_on_every_path(specs, side, max_size, max_fragments, defer, cuts, garbage):
    wire = b""
    for head, payload, flip in specs:
        if head & 0x0F == 0x08 and payload:  # a close frame: a valid one, mostly
            payload = struct.pack("!H", 1000 + len(payload) % 15) + payload[:20]
        masked = side != flip  # flip: the wrong masking, now and then
        wire += frames.py_build_frame(head, payload, b"\x12\x34\x56\x78" if masked else None)
    wire += garbage
    bounds = sorted({cut % (len(wire) + 1) for cut in cuts} | {0, len(wire)})
    chunks = [memoryview(wire)[a:b] for a, b in zip(bounds, bounds[1:])] or [memoryview(b"")]
    results = {path: run_machine(path, chunks, side, max_size, max_fragments, defer) for path in PATHS}
    assert results["Python"] == results["C"]
    assert results["general"] == results["C"]


# ---------------------------------------------------------------------------
# usual_accept(): the usual handshake request, checked in one call


from wsio.exceptions import InvalidHandshake  # noqa: E402
from wsio.protocol.handshake import accept_key, validate_request  # noqa: E402
from wsio.protocol.http11 import Headers, Request  # noqa: E402

USUAL = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]
# Values each header of the handshake may take: the usual ones, in other cases, with
# lists and spaces, invalid, and keys of every kind (non-canonical last digit included).
VALUES = {
    "Host": ["example.com", "", "a b"],
    "Upgrade": ["websocket", "WebSocket", "WEBSOCKET", "websocket, h2c", "h2c", "websocket2", "", "wébsocket"],
    "Connection": ["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade, close", "close", "Upgradé", ""],
    "Sec-WebSocket-Key": [
        "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25j*Q==", "dGhlIHNhbXBsZSBub25jZQ===", "AAAAAAAAAAAAAAAAAAAAAA==", "+/+/+/+/+/+/+/+/+/+/+w==",
        "dGhlIHNhbXBsZSBub25jZQ=\x3d", "dGhlIHNhbXBsZSBub25jZQ==é", "",
    ],
    "Sec-WebSocket-Version": ["13", "8", "13, 8", " 13", "", "1"],
}  # fmt: skip


@st.composite
def handshake_headers(draw):
    """The usual request's headers, each dropped, repeated or given another value at random."""
    items = []
    for name, usual in USUAL:
        count = draw(st.sampled_from([1, 1, 1, 0, 2]))
        for _ in range(count):
            value = usual if draw(st.booleans()) else draw(st.sampled_from(VALUES[name]))
            items.append((draw(st.sampled_from([name, name.lower(), name.upper()])), value))
    if draw(st.booleans()):
        items.append(("Origin", "https://example.com"))
    return draw(st.permutations(items))


@given(handshake_headers())
@example(USUAL)
def test_usual_accept_agrees_with_validate_request(items):
    """An accept key only for a request validate_request() accepts, the same as accept_key()'s; None leaves it to them."""
    request = Request("/", Headers(items))
    accept = C.usual_accept(request.headers._dict)
    try:
        key = validate_request(request)
    except InvalidHandshake:
        assert accept is None
        return
    if accept is not None:
        assert accept == accept_key(key)
    # The usual request, as most clients send it, is the C path's: each header once, these values in any case.
    headers = request.headers
    if (
        all(len(headers.get_all(name)) == 1 for name, _ in USUAL)
        and headers["Upgrade"].lower() == "websocket"
        and headers["Connection"].lower() == "upgrade"
    ):
        assert accept == accept_key(key)


def test_usual_accept_rfc6455_example_and_odd_arguments():
    index = Headers(USUAL)._dict
    assert C.usual_accept(index) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
    assert C.usual_accept({}) is None
    assert C.usual_accept({**index, "host": "example.com"}) is None  # not a list of values
    assert C.usual_accept({**index, "upgrade": [b"websocket"]}) is None  # not str
    with pytest.raises(TypeError):
        C.usual_accept()
    assert C.usual_accept([]) is None


# ---------------------------------------------------------------------------
# clone_slots(): a copy of an object that is all __slots__


class Slotted:
    __slots__ = ("a", "b", "c")


class MoreSlotted(Slotted):
    __slots__ = ("d",)


def test_clone_slots_copies_references_and_leaves_unset_slots_unset():
    original = MoreSlotted()
    original.a, original.b, original.d = [1], "two", None
    copy = C.clone_slots(original)
    assert type(copy) is MoreSlotted and copy is not original
    assert copy.a is original.a and copy.b is original.b and copy.d is None
    with pytest.raises(AttributeError):
        copy.c
    copy.a = [2]  # its slots are its own
    assert original.a == [1]


class WithDict:
    pass


class WithWeakref:
    __slots__ = ("a", "__weakref__")


class OnAList(list):
    __slots__ = ("a",)


@pytest.mark.parametrize("obj", [WithDict(), WithWeakref(), OnAList(), 5, "text", Exception()])
def test_clone_slots_refuses_what_it_cannot_copy_whole(obj):
    """A __dict__, a weakref list or a C base's own state wouldn't be copied: TypeError, not half an object."""
    with pytest.raises(TypeError, match="aren't all __slots__"):
        C.clone_slots(obj)


def test_clone_slots_no_reference_leaks():
    original = Slotted()
    original.a = value = object()
    before = sys.getrefcount(value)
    copies = [C.clone_slots(original) for _ in range(100)]
    assert sys.getrefcount(value) == before + 100
    del copies
    assert sys.getrefcount(value) == before
