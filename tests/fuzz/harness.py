"""Fuzz targets for wsio's parsers: one function per parser, bytes in, nothing out.

Each target raises only on a bug: an exception the parser is not allowed to
raise, a limit that lets memory grow, or (for the differential target) the C
accelerator and the pure-Python reference disagreeing. The same functions run
under atheris (``run.py``), under the hypothesis fallback and in the corpus
replay test (``test_corpus.py``).

The first byte of an input is a configuration byte for the targets that have
choices (role, compression, chunking, limits); the rest is what the peer sends.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from wsio.exceptions import InvalidHandshake
from wsio.protocol import frames
from wsio.protocol.machine import ClientProtocol, ServerProtocol, State
from wsio.protocol.deflate import enable_client_permessage_deflate, enable_server_permessage_deflate
from wsio.protocol.events import Fragment
from wsio.protocol.frames import Close
from wsio.protocol.handshake import accept_key, parse_uri
from wsio.protocol.http11 import HandshakeLimits, Request, RequestParser, ResponseParser

try:
    from wsio.protocol import _speedups as C
except ImportError:  # pragma: no cover - not built: the differential target compares Python with itself
    C = None

__all__ = ["TARGETS", "fuzz_request", "fuzz_response", "fuzz_frames", "fuzz_differential", "frame_path", "outcome"]

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
URI = parse_uri("ws://example.com/chat")
#: Small limits, so inputs of a few KiB reach every limit branch.
SMALL_LIMITS = HandshakeLimits(max_line=256, max_headers=16, max_size=2048, max_body=1024)
#: The largest message the frame targets accept in their small-limit mode.
SMALL_MAX_SIZE = 4096

_PY_FUNCS = {"parse_frames": frames.py_parse_frames, "apply_mask": frames.py_apply_mask, "build_frame": frames.py_build_frame}
_C_FUNCS = (
    {"parse_frames": C.parse_frames, "apply_mask": C.apply_mask, "build_frame": C.build_frame}
    if C is not None
    else dict(_PY_FUNCS)
)


@contextlib.contextmanager
def frame_path(which: str) -> Iterator[None]:
    """Run the core on the C frame functions (``"c"``) or the pure-Python ones (``"py"``)."""
    funcs = _C_FUNCS if which == "c" else _PY_FUNCS
    saved = {name: getattr(frames, name) for name in funcs}
    for name, fn in funcs.items():
        setattr(frames, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(frames, name, fn)


def _chunks(data: bytes, config: int) -> Iterator[bytes]:
    """Split the input as a socket might: whole, byte by byte, or in chunks of 2..64."""
    mode = config & 0x07
    if mode == 0:
        yield data
        return
    size = 1 if mode == 1 else 1 << (mode - 1)
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---------------------------------------------------------------------------
# Handshake request (what a server parses)


def _feed_all(parser: Any, body: bytes, config: int) -> Any:
    """Feed ``body`` to an HTTP parser in the chunks ``config`` picks; only InvalidHandshake may escape."""
    try:
        for chunk in _chunks(body, config):
            if parser.feed(chunk) is not None:
                break
        else:
            parser.feed_eof()
    except InvalidHandshake:
        pass
    return parser


def fuzz_request(data: bytes) -> None:
    """The request parser and the server's validation of the request.

    The parser may raise only :exc:`InvalidHandshake`; a parsed request goes
    through ``ServerProtocol`` (receive, accept, respond), which must never
    raise and must answer every rejection with an HTTP error status.
    """
    if not data:
        return
    config, body = data[0], data[1:]
    limits = SMALL_LIMITS if config & 0x80 else HandshakeLimits()
    parser = _feed_all(RequestParser(limits), body, config)
    assert parser.buffered <= limits.max_line + 2 + limits.max_size, "the request parser buffered past its limits"

    server = ServerProtocol(extensions=enable_server_permessage_deflate(None), limits=limits, server_header=None)
    request = None
    for chunk in _chunks(body, config):
        events = server.receive_data(chunk)
        if events:
            request = events[0]
            assert isinstance(request, Request)
            break
        if server.state is State.CLOSED:
            break
    if request is None:
        if server.state is State.CLOSED:
            assert server.response is not None and 400 <= server.response.status_code < 500
        server.receive_eof()
        return
    response = server.accept(request)
    server.send_response(response)
    assert response.status_code == 101 or 400 <= response.status_code < 500, response.status_code
    if response.status_code == 101:
        assert server.state is State.OPEN
        # The handshake rules that the hostile tests rely on, as invariants.
        assert len(request.headers.get_all("Sec-WebSocket-Key")) == 1
        assert request.headers.get("Sec-WebSocket-Version") == "13"
    else:
        assert server.state is State.CLOSED
    server.data_to_send()


# ---------------------------------------------------------------------------
# Handshake response (what a client parses)


def fuzz_response(data: bytes) -> None:
    """The response parser and the client's check of the response: only ``InvalidHandshake`` may escape the parser."""
    if not data:
        return
    config, body = data[0], data[1:]
    limits = SMALL_LIMITS if config & 0x80 else HandshakeLimits()
    parser = _feed_all(ResponseParser(limits), body, config)
    assert parser.buffered <= limits.max_line + 2 + limits.max_size + limits.max_body, (
        "the response parser buffered past its limits"
    )

    extensions = enable_client_permessage_deflate(None) if config & 0x40 else None
    client = ClientProtocol(URI, extensions=extensions, limits=limits)
    client.send_request(client.connect())
    client.key = KEY  # a fixed key, so a corpus entry can hold a valid Sec-WebSocket-Accept
    for chunk in _chunks(body, config):
        client.receive_data(chunk)
        if client.state is not State.CONNECTING:
            break
    client.receive_eof()
    if client.response is not None and client.handshake_exc is None:
        assert client.response.status_code == 101


# ---------------------------------------------------------------------------
# Frames, through the connection state machine


def _open_server(deflate: bool, max_size: int | None) -> ServerProtocol:
    server = ServerProtocol(
        extensions=enable_server_permessage_deflate(None) if deflate else None,
        max_size=max_size,
        max_fragments=64 if max_size is not None and max_size == SMALL_MAX_SIZE else 4096,
        server_header=None,
    )
    head = (
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        + ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else "")
        + "\r\n"
    )
    (request,) = server.receive_data(head.encode())
    server.send_response(server.accept(request))
    assert server.state is State.OPEN and (server.deflate is not None) == deflate
    server.data_to_send()
    return server


def _open_client(deflate: bool, max_size: int | None) -> ClientProtocol:
    client = ClientProtocol(
        URI,
        extensions=enable_client_permessage_deflate(None) if deflate else None,
        max_size=max_size,
        max_fragments=64 if max_size is not None and max_size == SMALL_MAX_SIZE else 4096,
    )
    client.send_request(client.connect())
    client.data_to_send()
    head = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(client.key)}\r\n"
        + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else "")
        + "\r\n"
    )
    client.receive_data(head.encode())
    assert client.state is State.OPEN and (client.deflate is not None) == deflate
    client._mask = lambda: b"\x5a\xa5\x0f\xf0"  # fixed, so the C and Python runs write the same bytes
    return client


def _describe_event(event: Any) -> Any:
    if isinstance(event, Fragment):
        return ("fragment", event.data, event.last)
    if isinstance(event, Close):
        return ("close", event.code, event.reason)
    if isinstance(event, (str, bytes)):
        return (type(event).__name__, event)
    return (type(event).__name__, getattr(event, "data", None))


def outcome(data: bytes) -> tuple[Any, ...]:
    """Feed ``data`` (configuration byte first) to an open connection; return everything observable.

    Configuration bits: 0-2 chunking, 3 client role (else server), 4 permessage-deflate,
    5 small ``max_size`` (4 KiB, 64 fragments), 6 end with EOF.
    """
    config, body = data[0], data[1:]
    deflate = bool(config & 0x10)
    max_size = SMALL_MAX_SIZE if config & 0x20 else 1 << 20
    connection = _open_client(deflate, max_size) if config & 0x08 else _open_server(deflate, max_size)
    events: list[Any] = []
    received = 0
    for chunk in _chunks(body, config):
        new = connection.receive_data(chunk)
        if connection.failure_pending:
            connection.apply_deferred_failure()
        for event in new:
            if isinstance(event, (str, bytes, Fragment)):
                size = len(event.data) if isinstance(event, Fragment) else len(event)
                # A message can't be larger than max_size, even after decompression.
                received = 0 if not isinstance(event, Fragment) or event.last else received + size
                if not isinstance(event, Fragment):
                    size = len(event.encode()) if isinstance(event, str) else size
                    assert size <= max_size, f"a message of {size} bytes passed max_size={max_size}"
        events.extend(_describe_event(event) for event in new)
    if config & 0x40:
        events.extend(_describe_event(event) for event in connection.receive_eof())
    assert len(connection._buf) <= max(len(body), 1 << 16), "the frame buffer grew past the input"
    failure = connection.failure
    return (
        events,
        connection.data_to_send(),
        connection.state,
        None if failure is None else (type(failure).__name__, failure.code if hasattr(failure, "code") else None),
        None if connection.close_rcvd is None else (connection.close_rcvd.code, connection.close_rcvd.reason),
    )


def fuzz_frames(data: bytes) -> None:
    """Frames through ``ServerProtocol``/``ClientProtocol.receive_data`` (C path when built): nothing may raise."""
    if not data:
        return
    outcome(data)


def fuzz_differential(data: bytes) -> None:
    """The C accelerator and the pure-Python reference agree: on ``parse_frames`` alone and through the connection."""
    if not data:
        return
    config, body = data[0], data[1:]
    expect_masked, rsv1_ok = bool(config & 0x01), bool(config & 0x02)
    raw = [_parse(_PY_FUNCS, body, expect_masked, rsv1_ok), _parse(_C_FUNCS, body, expect_masked, rsv1_ok)]
    assert raw[0] == raw[1], f"parse_frames differs: py={raw[0]!r} c={raw[1]!r}"
    with frame_path("py"):
        reference = outcome(data)
    with frame_path("c"):
        accelerated = outcome(data)
    assert reference == accelerated, f"the connection differs: py={reference!r} c={accelerated!r}"


def _parse(funcs: dict[str, Callable[..., Any]], body: bytes, expect_masked: bool, rsv1_ok: bool) -> Any:
    saved = frames.apply_mask
    frames.apply_mask = funcs["apply_mask"]  # the reference parser looks it up as a global
    try:
        frames_out, pos, error = funcs["parse_frames"](body, 0, expect_masked, rsv1_ok)
        return ([(head, type(payload).__name__, payload) for head, payload in frames_out], pos, error)
    except Exception as exc:  # both must raise the same way, if at all
        return ("raises", type(exc).__name__)
    finally:
        frames.apply_mask = saved


#: Parser name -> target, as ``run.py`` and the corpus directories name them.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "request": fuzz_request,
    "response": fuzz_response,
    "frames": fuzz_frames,
    "differential": fuzz_differential,
}
