"""Tests for wsio.protocol.deflate: permessage-deflate (RFC 7692)."""

from __future__ import annotations

import itertools
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsio.exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from wsio.protocol import deflate
from wsio.protocol.deflate import (
    DEFAULT_COMPRESSION_THRESHOLD,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)

TAIL = b"\x00\x00\xff\xff"
ZLIB_DECOMPRESSOBJ = zlib.decompressobj  # before any monkeypatching
MiB = 1024 * 1024


def make(
    remote_nct: bool = False,
    local_nct: bool = False,
    remote_bits: int = 15,
    local_bits: int = 15,
    settings: dict | None = None,
) -> PerMessageDeflate:
    return PerMessageDeflate(remote_nct, local_nct, remote_bits, local_bits, settings)


def sample_messages() -> list[bytes]:
    rng = random.Random(7692)
    block = bytes(rng.randrange(256) for _ in range(1000))
    text = ("The quick brown fox jumps over the lazy dog. " * 40).encode()
    return [
        b"",
        b"x",
        text,
        text,  # the same again: with context takeover, refers back to the previous message
        block * 5,  # back references 1000 bytes away: beyond a small window
        bytes(rng.randrange(256) for _ in range(3000)),  # incompressible
        b"\x00" * 70_000,  # longer than any window
        bytes(range(256)) * 300,  # period 256 == the 8-bit window
        b"",
        text[:100],
    ]


def negotiate(
    client: ClientPerMessageDeflateFactory, server: ServerPerMessageDeflateFactory
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    offer = client.get_request_params()
    answer, server_ext = server.process_request_params(offer, [])
    client_ext = client.process_response_params(answer, [])
    return client_ext, server_ext


def send(sender: PerMessageDeflate, receiver: PerMessageDeflate, message: bytes) -> bytes:
    return receiver.decompress(sender.compress(message), True, None)


# --- PerMessageDeflate: compress / decompress ------------------------------------


def test_threshold() -> None:
    assert DEFAULT_COMPRESSION_THRESHOLD == 128


@pytest.mark.parametrize("local_nct", [False, True])
@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_round_trip(local_nct: bool, bits: int) -> None:
    sender = make(local_nct=local_nct, local_bits=bits)
    receiver = make(remote_nct=local_nct, remote_bits=bits)
    for message in sample_messages() * 2:
        assert send(sender, receiver, message) == message


def test_empty_message_is_one_zero_byte() -> None:
    # RFC 7692 section 7.2.3.6.
    assert make().compress(b"") == b"\x00"
    assert make().decompress(b"\x00", True, None) == b""
    assert make().decompress(b"", True, None) == b""


def test_compressed_payload_has_no_tail() -> None:
    payload = make().compress(b"hello " * 100)
    assert not payload.endswith(TAIL)
    assert len(payload) < 600


def test_accepts_bytearray_and_memoryview() -> None:
    sender, receiver = make(), make()
    message = b"buffer protocol " * 20
    payload = sender.compress(memoryview(bytearray(message)))
    assert receiver.decompress(bytearray(payload), True, None) == message
    assert receiver.decompress(memoryview(sender.compress(message)), True, 10_000) == message


def test_context_takeover_shrinks_repeated_messages() -> None:
    rng = random.Random(1)
    message = bytes(rng.randrange(256) for _ in range(2000))
    with_takeover = make()
    first, second = with_takeover.compress(message), with_takeover.compress(message)
    assert len(second) < len(first) // 10
    without = make(local_nct=True)
    assert without.compress(message) == without.compress(message)


def test_window_8_compresses_with_9_but_fits_in_8() -> None:
    # zlib refuses a raw window of 8; we compress with 9, and zlib's deflate
    # never looks back more than 2**9 - 262 = 250 bytes, so an 8-bit inflater
    # (256 bytes) decodes it. The period of 300 tempts a 300-byte back reference.
    with pytest.raises(ValueError):
        zlib.compressobj(wbits=-8)
    rng = random.Random(8)
    block = bytes(rng.randrange(256) for _ in range(300))
    sender = make(local_bits=8)
    inflater = zlib.decompressobj(-8)
    for message in [block * 20, block * 3, bytes(range(256)) * 8]:
        assert inflater.decompress(sender.compress(message) + TAIL) == message


# --- interop with plain zlib -------------------------------------------------------


@pytest.mark.parametrize("local_nct", [False, True])
def test_compress_interop_with_zlib(local_nct: bool) -> None:
    sender = make(local_nct=local_nct)
    inflater = zlib.decompressobj(-15)
    for message in sample_messages():
        if local_nct:
            inflater = zlib.decompressobj(-15)
        assert inflater.decompress(sender.compress(message) + TAIL) == message


@pytest.mark.parametrize("remote_nct", [False, True])
def test_decompress_interop_with_zlib(remote_nct: bool) -> None:
    receiver = make(remote_nct=remote_nct)
    deflater = zlib.compressobj(wbits=-15)
    for message in sample_messages():
        if remote_nct:
            deflater = zlib.compressobj(wbits=-15)
        payload = deflater.compress(message) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert payload.endswith(TAIL)
        assert receiver.decompress(payload[:-4], True, None) == message


def test_decompress_message_ending_with_bfinal_block() -> None:
    # RFC 7692 section 7.2.3.4: a sender may end a message with BFINAL=1;
    # the next message then starts a new DEFLATE stream.
    receiver = make()
    for message in [b"first " * 50, b"second " * 50, b""]:
        deflater = zlib.compressobj(wbits=-15)
        payload = deflater.compress(message) + deflater.flush(zlib.Z_FINISH)
        assert receiver.decompress(payload, True, 1000) == message
        assert receiver._decompressor is None


# --- fragmentation -----------------------------------------------------------------


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def decompress_frames(receiver: PerMessageDeflate, frames: list[bytes], limit: int | None) -> bytes:
    output = b""
    for index, frame in enumerate(frames):
        remaining = None if limit is None else limit - len(output)
        output += receiver.decompress(frame, index == len(frames) - 1, remaining)
    return output


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(
        st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(lambda t: (t * 5).encode())),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.lists(st.integers(min_value=0, max_value=4000), max_size=8), min_size=4, max_size=4),
    no_context_takeover=st.booleans(),
    bits=st.integers(min_value=8, max_value=15),
    limited=st.booleans(),
)
def test_fragmented_decompression(
    messages: list[bytes],
    cuts: list[list[int]],
    no_context_takeover: bool,
    bits: int,
    limited: bool,
) -> None:
    sender = make(local_nct=no_context_takeover, local_bits=bits)
    whole = make(remote_nct=no_context_takeover, remote_bits=bits)
    fragmented = make(remote_nct=no_context_takeover, remote_bits=bits)
    for message, message_cuts in zip(messages, cuts):
        payload = sender.compress(message)
        limit = len(message) if limited else None
        assert whole.decompress(payload, True, limit) == message
        frames = split(payload, message_cuts)
        assert decompress_frames(fragmented, frames, limit) == message


def test_empty_frames_in_a_fragmented_message() -> None:
    sender, receiver = make(), make()
    payload = sender.compress(b"abc" * 100)
    frames = [b"", payload[:5], b"", payload[5:], b""]
    assert decompress_frames(receiver, frames, None) == b"abc" * 100


# --- max_length: compression bombs -------------------------------------------------


class SpyDecompressor:
    """Wraps a zlib decompressor and records every output it hands back."""

    def __init__(self, wbits: int) -> None:
        self._inner = ZLIB_DECOMPRESSOBJ(wbits)
        self.outputs: list[int] = []

    def decompress(self, data, max_length: int = 0) -> bytes:  # type: ignore[no-untyped-def]
        output = self._inner.decompress(data, max_length)
        self.outputs.append(len(output))
        return output

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[SpyDecompressor]:
    created: list[SpyDecompressor] = []

    def decompressobj(wbits: int) -> SpyDecompressor:
        spy = SpyDecompressor(wbits)
        created.append(spy)
        return spy

    monkeypatch.setattr(deflate.zlib, "decompressobj", decompressobj)
    return created


@pytest.fixture(scope="module")
def bomb() -> bytes:
    payload = make().compress(b"\x00" * (10 * MiB))
    assert len(payload) < 20_000  # ~10 KB on the wire
    return payload


def test_bomb_is_stopped_at_the_limit(bomb: bytes, spies: list[SpyDecompressor]) -> None:
    receiver = make()
    with pytest.raises(PayloadTooBig) as excinfo:
        receiver.decompress(bomb, True, MiB)
    assert excinfo.value.code == 1009
    assert "1_048_576" in str(excinfo.value)
    (spy,) = spies
    assert sum(spy.outputs) <= MiB + 1
    assert receiver._decompressor is None  # the connection fails; nothing kept


def test_fragmented_bomb_is_stopped_at_the_limit(bomb: bytes, spies: list[SpyDecompressor]) -> None:
    receiver = make()
    frames = [bomb[i : i + 1000] for i in range(0, len(bomb), 1000)]
    with pytest.raises(PayloadTooBig):
        decompress_frames(receiver, frames, MiB)
    (spy,) = spies
    # Each call got the remaining budget; all together they never exceed it by more than 1 byte.
    assert sum(spy.outputs) <= MiB + 1


def test_bomb_without_limit_decompresses(bomb: bytes) -> None:
    assert make().decompress(bomb, True, None) == b"\x00" * (10 * MiB)


@pytest.mark.parametrize("size", [0, 1, 1000, 100_000])
def test_message_exactly_at_the_limit(size: int) -> None:
    message = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    payload = make().compress(message)
    assert make().decompress(payload, True, size) == message
    if size:
        with pytest.raises(PayloadTooBig):
            make().decompress(payload, True, size - 1)


def test_message_exactly_at_the_limit_fragmented() -> None:
    message = b"0123456789" * 10_000
    payload = make().compress(message)
    frames = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    assert decompress_frames(make(), frames, len(message)) == message
    with pytest.raises(PayloadTooBig):
        decompress_frames(make(), frames, len(message) - 1)


def test_negative_max_length_is_rejected() -> None:
    with pytest.raises(ValueError):
        make().decompress(b"\x00", True, -1)


# --- invalid compressed data -------------------------------------------------------


@pytest.mark.parametrize("payload", [b"\x07", b"\xff\xff\xff\xff", b"\x02\x00\x00\x00\xff\xfe"])
def test_invalid_data_is_a_protocol_error(payload: bytes) -> None:
    receiver = make()
    with pytest.raises(ProtocolError) as excinfo:
        receiver.decompress(payload, True, None)
    assert excinfo.value.code == 1002
    assert not isinstance(excinfo.value, PayloadTooBig)
    assert receiver._decompressor is None


def test_data_after_end_of_stream_is_a_protocol_error() -> None:
    deflater = zlib.compressobj(wbits=-15)
    payload = deflater.compress(b"done") + deflater.flush(zlib.Z_FINISH)
    receiver = make()
    with pytest.raises(ProtocolError) as excinfo:
        receiver.decompress(payload + b"garbage", True, None)
    assert excinfo.value.code == 1002
    # Same when the extra data comes in the next frame of the message.
    receiver = make()
    assert receiver.decompress(payload, False, None) == b"done"
    with pytest.raises(ProtocolError):
        receiver.decompress(b"more", True, None)


# --- memory: lazy zlib objects -----------------------------------------------------


def test_no_zlib_object_before_first_use() -> None:
    extension = make()
    assert extension._compressor is None
    assert extension._decompressor is None
    client_ext, server_ext = negotiate(ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory())
    for ext in (client_ext, server_ext):
        assert ext._compressor is None and ext._decompressor is None


def test_compressor_dropped_after_each_message_without_context_takeover() -> None:
    extension = make(local_nct=True)
    extension.compress(b"a" * 1000)
    assert extension._compressor is None
    assert extension._decompressor is None


def test_compressor_kept_with_context_takeover() -> None:
    extension = make(local_nct=False)
    extension.compress(b"a" * 1000)
    assert extension._compressor is not None
    assert extension._decompressor is None


def test_decompressor_dropped_after_each_message_without_context_takeover() -> None:
    payload = make().compress(b"b" * 1000)
    extension = make(remote_nct=True)
    extension.decompress(payload[:3], False, None)
    assert extension._decompressor is not None  # mid-message: needed for the next frame
    extension.decompress(payload[3:], True, None)
    assert extension._decompressor is None
    assert extension._compressor is None


def test_decompressor_kept_with_context_takeover() -> None:
    extension = make(remote_nct=False)
    extension.decompress(make().compress(b"b" * 1000), True, None)
    assert extension._decompressor is not None


def test_slots_keep_instances_small() -> None:
    with pytest.raises(AttributeError):
        make().unexpected = 1  # type: ignore[attr-defined]


# --- key ---------------------------------------------------------------------------


def test_key_is_none_with_context_takeover() -> None:
    assert make(local_nct=False).key is None


def test_key_ignores_remote_settings() -> None:
    a = make(remote_nct=False, local_nct=True, remote_bits=9, local_bits=12)
    b = make(remote_nct=True, local_nct=True, remote_bits=15, local_bits=12)
    assert a.key == b.key
    assert hash(a.key) == hash(b.key)


def test_key_normalizes_zlib_defaults_and_window_8() -> None:
    assert make(local_nct=True).key == make(local_nct=True, settings={"level": 6, "memLevel": 8}).key
    assert make(local_nct=True, settings={"level": -1}).key == make(local_nct=True).key
    assert make(local_nct=True, local_bits=8).key == make(local_nct=True, local_bits=9).key


@pytest.mark.parametrize(
    "other",
    [
        {"local_bits": 12},
        {"settings": {"memLevel": 5}},
        {"settings": {"level": 1}},
        {"settings": {"strategy": zlib.Z_FILTERED}},
    ],
)
def test_key_differs_when_output_may_differ(other: dict) -> None:
    assert make(local_nct=True).key != make(local_nct=True, **other).key


def test_equal_keys_give_equal_output() -> None:
    a = make(local_nct=True, remote_bits=9, local_bits=8, settings={"memLevel": 5})
    b = make(remote_nct=True, local_nct=True, local_bits=9, settings={"memLevel": 5})
    assert a.key == b.key
    a.compress(b"history that b never saw " * 50)
    for message in sample_messages():
        assert a.compress(message) == b.compress(message)


# --- constructors ------------------------------------------------------------------


@pytest.mark.parametrize("bits", [7, 16, 0, -9, True, "12", 12.0])
def test_window_bits_out_of_range(bits: object) -> None:
    with pytest.raises(ValueError):
        PerMessageDeflate(False, False, bits, 15)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PerMessageDeflate(False, False, 15, bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(server_max_window_bits=bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(server_max_window_bits=bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(client_max_window_bits=bits)  # type: ignore[arg-type]
    if bits is not True:
        with pytest.raises(ValueError):
            ClientPerMessageDeflateFactory(client_max_window_bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("settings", [{"wbits": -12}, {"zdict": b"abc"}, {"method": zlib.DEFLATED}])
def test_per_message_deflate_rejects_settings(settings: dict) -> None:
    with pytest.raises(ValueError):
        make(settings=settings)


@pytest.mark.parametrize("settings", [{"zdict": b"abc"}, {"wbits": 7}, {"wbits": 16}, {"wbits": "12"}])
def test_factories_reject_settings(settings: dict) -> None:
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(compress_settings=settings)
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(compress_settings=settings)


def test_require_client_max_window_bits_needs_a_value() -> None:
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(require_client_max_window_bits=True)


def test_factory_settings_are_copied() -> None:
    settings = {"memLevel": 5}
    factory = ServerPerMessageDeflateFactory(compress_settings=settings)
    settings["memLevel"] = 9
    _, extension = factory.process_request_params([], [])
    assert extension.compress_settings == {"memLevel": 5}


def test_reprs() -> None:
    assert "local_max_window_bits=12" in repr(make(local_bits=12))
    assert "client_max_window_bits=True" in repr(ClientPerMessageDeflateFactory())
    assert "require_client_max_window_bits=False" in repr(ServerPerMessageDeflateFactory())


# --- client negotiation ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, params",
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": False}, []),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 10,
                "client_max_window_bits": 11,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "10"),
                ("client_max_window_bits", "11"),
            ],
        ),
    ],
)
def test_client_request_params(kwargs: dict, params: list) -> None:
    assert ClientPerMessageDeflateFactory(**kwargs).get_request_params() == params


@pytest.mark.parametrize(
    "kwargs, response, expected",
    [
        # (remote_nct, local_nct, remote_bits, local_bits)
        ({}, [], (False, False, 15, 15)),
        ({}, [("server_no_context_takeover", None)], (True, False, 15, 15)),
        # The server may impose client_no_context_takeover unasked.
        ({}, [("client_no_context_takeover", None)], (False, True, 15, 15)),
        # We keep our promise even if the server does not echo it.
        ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
        # The server may limit its own window unasked.
        ({}, [("server_max_window_bits", "9")], (False, False, 9, 15)),
        ({"server_max_window_bits": 12}, [("server_max_window_bits", "12")], (False, False, 12, 15)),
        ({"server_max_window_bits": 12}, [("server_max_window_bits", "8")], (False, False, 8, 15)),
        ({}, [("client_max_window_bits", "10")], (False, False, 15, 10)),
        ({"client_max_window_bits": 11}, [], (False, False, 15, 11)),
        ({"client_max_window_bits": 11}, [("client_max_window_bits", "11")], (False, False, 15, 11)),
        ({"client_max_window_bits": 11}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
        # A preferred window below what the server allows.
        ({"compress_settings": {"wbits": 10}}, [], (False, False, 15, 10)),
        ({"compress_settings": {"wbits": -10}}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
    ],
)
def test_client_accepts_response(kwargs: dict, response: list, expected: tuple) -> None:
    extension = ClientPerMessageDeflateFactory(**kwargs).process_response_params(response, [])
    assert (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    ) == expected
    assert "wbits" not in extension.compress_settings


@pytest.mark.parametrize(
    "kwargs, response, error",
    [
        # Duplicates.
        ({}, [("server_no_context_takeover", None)] * 2, DuplicateParameter),
        ({}, [("client_no_context_takeover", None)] * 2, DuplicateParameter),
        ({}, [("server_max_window_bits", "10"), ("server_max_window_bits", "10")], DuplicateParameter),
        ({}, [("client_max_window_bits", "10"), ("client_max_window_bits", "9")], DuplicateParameter),
        # Unknown names.
        ({}, [("foo", None)], InvalidParameterName),
        ({}, [("Server_No_Context_Takeover", None)], InvalidParameterName),
        ({}, [("server_max_window_bits", "10"), ("x-extra", "1")], InvalidParameterName),
        # Bad values.
        ({}, [("server_no_context_takeover", "")], InvalidParameterValue),
        ({}, [("server_no_context_takeover", "true")], InvalidParameterValue),
        ({}, [("client_no_context_takeover", "1")], InvalidParameterValue),
        ({}, [("server_max_window_bits", None)], InvalidParameterValue),
        ({}, [("server_max_window_bits", "7")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "16")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "08")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "+9")], InvalidParameterValue),
        ({}, [("server_max_window_bits", " 9")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "ten")], InvalidParameterValue),
        ({}, [("client_max_window_bits", "0")], InvalidParameterValue),
        # A response must give client_max_window_bits a value.
        ({}, [("client_max_window_bits", None)], InvalidParameterValue),
        # Server answers a bigger window than offered, or none.
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")], NegotiationError),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "15")], NegotiationError),
        ({"server_max_window_bits": 10}, [], NegotiationError),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "12")], NegotiationError),
        # client_max_window_bits answered when not offered.
        ({"client_max_window_bits": None}, [("client_max_window_bits", "15")], NegotiationError),
        # server_no_context_takeover asked but not granted.
        ({"server_no_context_takeover": True}, [], NegotiationError),
    ],
)
def test_client_rejects_response(kwargs: dict, response: list, error: type[Exception]) -> None:
    with pytest.raises(error) as excinfo:
        ClientPerMessageDeflateFactory(**kwargs).process_response_params(response, [])
    assert isinstance(excinfo.value, NegotiationError)
    assert str(excinfo.value)


def test_client_rejects_permessage_deflate_twice() -> None:
    factory = ClientPerMessageDeflateFactory()
    first = factory.process_response_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_response_params([], [first])


def test_client_ignores_other_accepted_extensions() -> None:
    class Other:
        name = "x-other"

    assert ClientPerMessageDeflateFactory().process_response_params([], [Other()])


# --- server negotiation ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, request_params, response, expected",
    [
        # (remote_nct, local_nct, remote_bits, local_bits)
        ({}, [], [], (False, False, 15, 15)),
        (
            {},
            [("server_no_context_takeover", None)],
            [("server_no_context_takeover", None)],
            (False, True, 15, 15),
        ),
        (
            {"server_no_context_takeover": True},
            [],
            [("server_no_context_takeover", None)],
            (False, True, 15, 15),
        ),
        # The client's hint is echoed and lets us drop the decompressor.
        (
            {},
            [("client_no_context_takeover", None)],
            [("client_no_context_takeover", None)],
            (True, False, 15, 15),
        ),
        (
            {"client_no_context_takeover": True},
            [],
            [("client_no_context_takeover", None)],
            (True, False, 15, 15),
        ),
        # server_max_window_bits: honour the offer, never above our own limit.
        ({}, [("server_max_window_bits", "10")], [("server_max_window_bits", "10")], (False, False, 15, 10)),
        (
            {"server_max_window_bits": 12},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "10")],
            (False, False, 15, 10),
        ),
        (
            {"server_max_window_bits": 9},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "9")],
            (False, False, 15, 9),
        ),
        ({"server_max_window_bits": 12}, [], [("server_max_window_bits", "12")], (False, False, 15, 12)),
        # client_max_window_bits: answered only if offered.
        ({"client_max_window_bits": 12}, [], [], (False, False, 15, 15)),
        ({}, [("client_max_window_bits", None)], [], (False, False, 15, 15)),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", None)],
            [("client_max_window_bits", "12")],
            (False, False, 12, 15),
        ),
        ({}, [("client_max_window_bits", "10")], [("client_max_window_bits", "10")], (False, False, 10, 15)),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", "10")],
            [("client_max_window_bits", "10")],
            (False, False, 10, 15),
        ),
        (
            {"client_max_window_bits": 9, "require_client_max_window_bits": True},
            [("client_max_window_bits", "10")],
            [("client_max_window_bits", "9")],
            (False, False, 9, 15),
        ),
        # A preferred window we keep to ourselves.
        ({"compress_settings": {"wbits": 11}}, [], [], (False, False, 15, 11)),
        # Everything at once.
        (
            {"server_max_window_bits": 12, "client_max_window_bits": 12},
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "14"),
                ("client_max_window_bits", None),
            ],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
                ("client_max_window_bits", "12"),
            ],
            (True, True, 12, 12),
        ),
    ],
)
def test_server_accepts_request(kwargs: dict, request_params: list, response: list, expected: tuple) -> None:
    answer, extension = ServerPerMessageDeflateFactory(**kwargs).process_request_params(request_params, [])
    assert answer == response
    assert (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    ) == expected


@pytest.mark.parametrize(
    "kwargs, request_params, error",
    [
        ({}, [("server_no_context_takeover", None)] * 2, DuplicateParameter),
        ({}, [("client_max_window_bits", None), ("client_max_window_bits", "10")], DuplicateParameter),
        ({}, [("server_max_window_bits", "9"), ("server_max_window_bits", "9")], DuplicateParameter),
        ({}, [("unknown", None)], InvalidParameterName),
        ({}, [("client_no_context_takeover", "yes")], InvalidParameterValue),
        ({}, [("server_no_context_takeover", "")], InvalidParameterValue),
        ({}, [("server_max_window_bits", None)], InvalidParameterValue),
        ({}, [("server_max_window_bits", "7")], InvalidParameterValue),
        ({}, [("server_max_window_bits", "16")], InvalidParameterValue),
        ({}, [("client_max_window_bits", "7")], InvalidParameterValue),
        ({}, [("client_max_window_bits", "16")], InvalidParameterValue),
        ({}, [("client_max_window_bits", "012")], InvalidParameterValue),
        (
            {"client_max_window_bits": 10, "require_client_max_window_bits": True},
            [],
            NegotiationError,
        ),
    ],
)
def test_server_rejects_request(kwargs: dict, request_params: list, error: type[Exception]) -> None:
    with pytest.raises(error) as excinfo:
        ServerPerMessageDeflateFactory(**kwargs).process_request_params(request_params, [])
    assert isinstance(excinfo.value, NegotiationError)


def test_server_rejects_permessage_deflate_twice() -> None:
    factory = ServerPerMessageDeflateFactory()
    _, first = factory.process_request_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_request_params([], [first])


# --- client factory x server factory: every combination ----------------------------

CLIENT_CONFIGS = [
    dict(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb,
        client_max_window_bits=cmwb,
    )
    for snct, cnct, smwb, cmwb in itertools.product([False, True], [False, True], [None, 8, 12], [None, True, 10])
]

SERVER_CONFIGS = [
    dict(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb,
        client_max_window_bits=cmwb,
        require_client_max_window_bits=require,
    )
    for snct, cnct, smwb, (cmwb, require) in itertools.product(
        [False, True], [False, True], [None, 8, 15], [(None, False), (9, False), (9, True)]
    )
]

MESSAGES = sample_messages()


@pytest.mark.parametrize("client_config", CLIENT_CONFIGS, ids=repr)
def test_every_negotiation_round_trips(client_config: dict) -> None:
    for server_config in SERVER_CONFIGS:
        client = ClientPerMessageDeflateFactory(**client_config)
        server = ServerPerMessageDeflateFactory(**server_config)
        if server_config["require_client_max_window_bits"] and client_config["client_max_window_bits"] is None:
            with pytest.raises(NegotiationError):
                negotiate(client, server)
            continue
        client_ext, server_ext = negotiate(client, server)

        # Both sides agree on who resets, and nobody compresses with a window
        # larger than the peer inflates with.
        assert client_ext.local_no_context_takeover == server_ext.remote_no_context_takeover
        assert server_ext.local_no_context_takeover == client_ext.remote_no_context_takeover
        assert client_ext.local_max_window_bits <= server_ext.remote_max_window_bits
        assert server_ext.local_max_window_bits <= client_ext.remote_max_window_bits
        if client_config["server_no_context_takeover"] or server_config["server_no_context_takeover"]:
            assert server_ext.local_no_context_takeover
        if client_config["client_no_context_takeover"] or server_config["client_no_context_takeover"]:
            assert client_ext.local_no_context_takeover
        if client_config["server_max_window_bits"]:
            assert server_ext.local_max_window_bits <= client_config["server_max_window_bits"]

        for message in MESSAGES:
            assert send(client_ext, server_ext, message) == message
            assert send(server_ext, client_ext, message) == message


# --- enable_* ----------------------------------------------------------------------


def test_enable_client_defaults() -> None:
    (factory,) = enable_client_permessage_deflate(None)
    assert isinstance(factory, ClientPerMessageDeflateFactory)
    assert factory.get_request_params() == [("client_max_window_bits", None)]
    assert factory.compress_settings == {"memLevel": 5}
    # The server leaves our window free: we still compress with 12 bits.
    extension = factory.process_response_params([], [])
    assert extension.local_max_window_bits == 12
    assert extension.remote_max_window_bits == 15


def test_enable_server_defaults() -> None:
    (factory,) = enable_server_permessage_deflate(None)
    assert isinstance(factory, ServerPerMessageDeflateFactory)
    answer, extension = factory.process_request_params([("client_max_window_bits", None)], [])
    assert answer == [("server_max_window_bits", "12"), ("client_max_window_bits", "12")]
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (12, 12)
    assert extension.compress_settings == {"memLevel": 5}
    # A client that does not let us limit its window is still accepted.
    answer, extension = factory.process_request_params([], [])
    assert answer == [("server_max_window_bits", "12")]
    assert extension.remote_max_window_bits == 15


def test_enable_defaults_negotiate_together() -> None:
    (client,) = enable_client_permessage_deflate([])
    (server,) = enable_server_permessage_deflate([])
    client_ext, server_ext = negotiate(client, server)
    assert client_ext.local_max_window_bits == server_ext.remote_max_window_bits == 12
    assert server_ext.local_max_window_bits == client_ext.remote_max_window_bits == 12
    for message in MESSAGES:
        assert send(client_ext, server_ext, message) == message
        assert send(server_ext, client_ext, message) == message


@pytest.mark.parametrize(
    "enable, factory_class",
    [
        (enable_client_permessage_deflate, ClientPerMessageDeflateFactory),
        (enable_server_permessage_deflate, ServerPerMessageDeflateFactory),
    ],
)
def test_enable_keeps_existing_configuration(enable, factory_class) -> None:  # type: ignore[no-untyped-def]
    class Other:
        name = "x-other"

    other = Other()
    mine = factory_class(server_no_context_takeover=True)
    extensions = (other, mine)
    assert enable(extensions) == [other, mine]
    added = enable([other])
    assert added[0] is other and isinstance(added[1], factory_class)
    original = [other]
    enable(original)
    assert original == [other]  # not mutated
