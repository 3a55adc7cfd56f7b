"""The opening handshake through ServerProtocol and ClientProtocol, talking to each other in memory."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsio.exceptions import InvalidHandshake, InvalidHeader, InvalidHeaderValue, InvalidMessage, InvalidStatus
from wsio.protocol import frames
from wsio.protocol.machine import ClientProtocol, ServerProtocol, State
from wsio.protocol.deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from wsio.protocol.events import Fragment, Ping
from wsio.protocol.frames import Close
from wsio.protocol.handshake import accept_key, parse_uri
from wsio.protocol.http11 import Request, Response

try:
    from wsio.protocol import _speedups as C
except ImportError:  # pragma: no cover - not built
    C = None

IMPLS = ["py"] + (["c"] if C is not None and not os.environ.get("WSIO_NO_SPEEDUPS") else [])


@pytest.fixture(scope="module", params=IMPLS, autouse=True)
def impl(request: pytest.FixtureRequest) -> Any:
    """Run every test on the pure-Python frame functions and on the C ones."""
    if request.param == "py":
        funcs = {"parse_frames": frames.py_parse_frames, "apply_mask": frames.py_apply_mask, "build_frame": frames.py_build_frame}
    else:
        funcs = {"parse_frames": C.parse_frames, "apply_mask": C.apply_mask, "build_frame": C.build_frame}
    saved = {name: getattr(frames, name) for name in funcs}
    for name, fn in funcs.items():
        setattr(frames, name, fn)
    yield request.param
    for name, fn in saved.items():
        setattr(frames, name, fn)


URI = parse_uri("ws://example.com/chat?room=1")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x01\x02\x03\x04"


def collapse(events: list[Any]) -> list[Any]:
    """Join the Fragments of each message into the message."""
    out: list[Any] = []
    pieces: list[Any] = []
    for event in events:
        if isinstance(event, Fragment):
            pieces.append(event.data)
            if event.last:
                out.append(pieces[0][:0].join(pieces))
                pieces = []
        else:
            out.append(event)
    return out


def masked_frame(head: int, payload: bytes) -> bytes:
    return frames.py_build_frame(head, payload, MASK)


def request_bytes(*lines: str, method: str = "GET", version: str = "HTTP/1.1", drop: tuple[str, ...] = ()) -> bytes:
    headers = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    text = f"{method} /chat {version}\r\n"
    text += "".join(f"{name}: {value}\r\n" for name, value in headers if name not in drop)
    text += "".join(line + "\r\n" for line in lines)
    return (text + "\r\n").encode()


def open_server(server: ServerProtocol, data: bytes) -> Response:
    """Feed a request; accept it; return the response sent."""
    events = server.receive_data(data)
    assert len(events) == 1 and isinstance(events[0], Request)
    response = server.accept(events[0])
    server.send_response(response)
    return response


def connect(
    client_kwargs: dict[str, Any] | None = None, server_kwargs: dict[str, Any] | None = None
) -> tuple[ClientProtocol, ServerProtocol]:
    """A client and a server, through the whole handshake."""
    client = ClientProtocol(URI, **(client_kwargs or {}))
    server = ServerProtocol(**(server_kwargs or {}))
    client.send_request(client.connect())
    open_server(server, client.data_to_send())
    assert server.receive_data(b"") == []
    events = client.receive_data(server.data_to_send())
    assert len(events) == 1 and isinstance(events[0], Response)
    return client, server


# ---------------------------------------------------------------------------
# Server side


def test_server_states() -> None:
    server = ServerProtocol()
    assert server.state is State.CONNECTING
    events = server.receive_data(request_bytes())
    assert server.state is State.CONNECTING
    (request,) = events
    assert request.path == "/chat"
    assert request.headers["Sec-WebSocket-Key"] == KEY
    assert server.request is request
    response = server.accept(request)
    assert response.status_code == 101
    assert response.headers["Sec-WebSocket-Accept"] == accept_key(KEY)
    assert response.headers["Upgrade"] == "websocket"
    assert server.state is State.CONNECTING
    assert server.data_to_send() == b""
    server.send_response(response)
    assert server.state is State.OPEN
    assert server.response is response
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert out == response.serialize()
    assert server.handshake_exc is None
    # Now it speaks WebSocket.
    assert server.receive_data(masked_frame(0x81, b"hi")) == ["hi"]
    assert server.send_message("yo") == b"\x81\x02yo"


# The objects ServerProtocol's __init__ makes for each protocol, which no two may share.
MUTABLE = (list, dict, set, bytearray)


def slot_values(obj: Any) -> dict[str, Any]:
    names = [name for klass in type(obj).__mro__ for name in getattr(klass, "__slots__", ())]
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}


def test_server_protocol_maker_makes_what_the_constructor_does() -> None:
    """Made by maker() (a copy of a prototype with the accelerator), a protocol is one __init__ would make."""
    kwargs: dict[str, Any] = dict(subprotocols=["chat"], server_header="test", max_size=1000)
    new = ServerProtocol.maker(**kwargs)
    first, second, built = new(), new(), ServerProtocol(**kwargs)
    for made in (first, second):
        assert type(made) is ServerProtocol
        assert slot_values(made).keys() == slot_values(built).keys()
        for name, value in slot_values(made).items():
            assert type(value) is type(slot_values(built)[name]), name
            if not isinstance(value, MUTABLE):
                assert value == slot_values(built)[name], name
    # Settings are the objects passed (as the constructor has them); the state is each protocol's own.
    shared = [
        name
        for name, value in slot_values(first).items()
        if isinstance(value, MUTABLE) and value is getattr(second, name) and value is not getattr(built, name)
    ]
    assert shared == []
    # Each works on its own.
    client, server = ClientProtocol(URI), first
    client.send_request(client.connect())
    open_server(server, client.data_to_send())
    assert server.state is State.OPEN and second.state is State.CONNECTING and second.data_to_send() == b""


def test_server_protocol_maker_follows_the_logger_level() -> None:
    """DEBUG switched on while a server runs: its next connections log their frames, as __init__ would have them."""
    import logging

    logger = logging.getLogger("wsio.test.maker")
    logger.setLevel(logging.INFO)
    new = ServerProtocol.maker(logger=logger)
    assert new().debug is False
    logger.setLevel(logging.DEBUG)
    assert new().debug is True


def test_server_protocol_maker_calls_a_subclass_own_init() -> None:
    class Counted(ServerProtocol):
        made = 0

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            type(self).made += 1

    new = Counted.maker()
    assert Counted.made == 0
    assert type(new()) is Counted and type(new()) is Counted
    assert Counted.made == 2


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 10**6), max_size=30))
def test_server_request_in_arbitrary_chunks(cuts: list[int]) -> None:
    server = ServerProtocol()
    frames_after = masked_frame(0x81, b"early") + masked_frame(0x89, b"p")
    data = request_bytes() + frames_after
    cuts = sorted(cut % (len(data) + 1) for cut in cuts) + [len(data)]
    events: list[Any] = []
    prev = 0
    for cut in cuts:
        events += server.receive_data(data[prev:cut])
        prev = cut
    # The request and nothing else: frames wait for the response.
    assert len(events) == 1 and isinstance(events[0], Request)
    assert server.state is State.CONNECTING
    server.send_response(server.accept(events[0]))
    assert server.data_to_send().startswith(b"HTTP/1.1 101")
    assert server.receive_data(b"") == ["early", Ping(b"p")]
    assert server.data_to_send() == b"\x8a\x01p"


def test_server_request_byte_by_byte() -> None:
    server = ServerProtocol()
    data = request_bytes()
    events: list[Any] = []
    for i in range(len(data)):
        events += server.receive_data(data[i : i + 1])
        if i < len(data) - 1:
            assert events == []
    assert len(events) == 1


def test_server_frames_between_request_and_response() -> None:
    """Frames that arrive while the application decides are kept, in order."""
    server = ServerProtocol()
    (request,) = server.receive_data(request_bytes() + masked_frame(0x01, b"one "))
    assert server.receive_data(masked_frame(0x80, b"two")) == []
    assert server.receive_data(masked_frame(0x82, b"three")[:3]) == []
    server.send_response(server.accept(request))
    events = server.receive_data(masked_frame(0x82, b"three")[3:])
    assert events == [Fragment("one ", False), Fragment("two", True), b"three"]


def test_server_frames_behind_request_fail_after_open() -> None:
    server = ServerProtocol()
    (request,) = server.receive_data(request_bytes() + frames.py_build_frame(0x81, b"unmasked"))
    server.send_response(server.accept(request))
    server.data_to_send()
    assert server.receive_data(b"") == []
    assert server.failure is not None and server.failure.code == 1002
    assert server.data_to_send()[2:4] == b"\x03\xea"


def check_rejected(server: ServerProtocol, status: int) -> bytes:
    assert server.state is State.CLOSED
    assert server.handshake_exc is not None
    out = server.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out
    assert server.response is not None and server.response.status_code == status
    # Nothing the client sends afterwards counts, nor is answered.
    assert server.receive_data(masked_frame(0x81, b"hi") + masked_frame(0x89, b"")) == []
    assert server.receive_data(b"") == []
    assert server.data_to_send() == b""
    with pytest.raises(Exception):
        server.send_message("x")
    return out


def rejected_by_accept(data: bytes, status: int) -> bytes:
    server = ServerProtocol()
    response = open_server(server, data + masked_frame(0x81, b"behind"))
    assert response.status_code == status
    return check_rejected(server, status)


def test_server_rejects_duplicate_key() -> None:
    out = rejected_by_accept(request_bytes("Sec-WebSocket-Key: " + KEY), 400)
    assert b"Sec-WebSocket-Key" in out


def test_server_rejects_wrong_version() -> None:
    out = rejected_by_accept(request_bytes("Sec-WebSocket-Version: 8", drop=("Sec-WebSocket-Version",)), 426)
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in out
    out = rejected_by_accept(request_bytes(drop=("Sec-WebSocket-Version",)), 426)
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in out


def test_server_rejects_plain_http() -> None:
    out = rejected_by_accept(request_bytes(drop=("Upgrade", "Connection", "Sec-WebSocket-Key")), 426)
    assert b"\r\nUpgrade: websocket\r\n" in out


def test_server_rejects_bad_origin() -> None:
    server = ServerProtocol(origins=["https://good.example"])
    response = open_server(server, request_bytes("Origin: https://evil.example"))
    assert response.status_code == 403
    check_rejected(server, 403)


@pytest.mark.parametrize(
    "data, status, header",
    [
        (request_bytes(version="HTTP/1.0"), 400, None),
        (request_bytes(method="POST"), 405, b"\r\nAllow: GET\r\n"),
        (request_bytes("Content-Length: 5") + b"hello", 400, None),
        (request_bytes("Transfer-Encoding: chunked") + b"0\r\n\r\n", 400, None),
        (b"GET /chat HTTP/1.1\nHost: x\n\n", 400, None),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 60 + b"\r\n", 400, None),  # TLS to a plain port
    ],
)
def test_server_rejects_bad_requests_in_the_parser(data: bytes, status: int, header: bytes | None) -> None:
    server = ServerProtocol()
    assert server.receive_data(data) == []
    assert isinstance(server.handshake_exc, InvalidMessage)
    out = check_rejected(server, status)
    if header is not None:
        assert header in out
    assert b"Connection: close" in out


def test_server_rejects_by_sending_another_response() -> None:
    server = ServerProtocol()
    (request,) = server.receive_data(request_bytes())
    server.send_response(Response.from_status(403, "go away"))
    check_rejected(server, 403)
    assert isinstance(server.handshake_exc, InvalidHandshake)


def test_server_eof_during_handshake() -> None:
    server = ServerProtocol()
    server.receive_data(request_bytes()[:20])
    assert server.receive_eof() == []
    assert server.state is State.CLOSED
    assert isinstance(server.handshake_exc, InvalidHandshake)
    assert server.why == "EOF during the opening handshake"


# ---------------------------------------------------------------------------
# Client side


def server_response_for(client: ClientProtocol, **server_kwargs: Any) -> bytes:
    server = ServerProtocol(**server_kwargs)
    open_server(server, client.data_to_send())
    return server.data_to_send()


def test_client_states() -> None:
    client = ClientProtocol(URI)
    assert client.state is State.CONNECTING
    request = client.connect()
    assert request.path == "/chat?room=1"
    assert request.headers["Host"] == "example.com"
    assert request.headers["Sec-WebSocket-Key"] == client.key
    assert client.data_to_send() == b""
    client.send_request(request)
    out = client.data_to_send()
    assert out.startswith(b"GET /chat?room=1 HTTP/1.1\r\n")
    assert out == request.serialize()
    assert client.request is request
    server = ServerProtocol()
    open_server(server, out)
    events = client.receive_data(server.data_to_send())
    assert len(events) == 1 and events[0].status_code == 101
    assert client.response is events[0]
    assert client.state is State.OPEN
    assert client.handshake_exc is None


def test_client_keys_are_fresh() -> None:
    keys = set()
    for _ in range(50):
        client = ClientProtocol(URI)
        client.connect()
        keys.add(client.key)
    assert len(keys) == 50


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 10**6), max_size=20))
def test_client_response_and_frames_in_any_chunks(cuts: list[int]) -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    data = server_response_for(client) + b"\x81\x05hello" + b"\x89\x01p" + b"\x02\x02ab" + b"\x80\x01c"
    cuts = sorted(cut % (len(data) + 1) for cut in cuts) + [len(data)]
    events: list[Any] = []
    prev = 0
    for cut in cuts:
        events += client.receive_data(data[prev:cut])
        prev = cut
    assert isinstance(events[0], Response)
    assert collapse(events[1:]) == ["hello", Ping(b"p"), b"abc"]
    assert client.state is State.OPEN
    # The pong is masked, like all client frames.
    pong = client.data_to_send()
    assert pong[0] == 0x8A and pong[1] == 0x81


def test_client_response_and_frames_in_one_chunk() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    data = server_response_for(client) + b"\x81\x05hello" + b"\x88\x02\x03\xe8"
    events = client.receive_data(data)
    assert isinstance(events[0], Response)
    assert events[1:] == ["hello", Close(1000)]
    assert client.state is State.CLOSED
    assert client.data_to_send()[:2] == b"\x88\x82"  # the masked echo


def test_client_response_and_bad_frame_in_one_chunk() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    events = client.receive_data(server_response_for(client) + masked_frame(0x81, b"masked"))
    assert events == [client.response]
    if client.failure_pending:  # the failure may wait for the Response to be handled
        client.apply_deferred_failure()
    assert client.failure is not None and client.failure.code == 1002
    assert client.state is State.CLOSED
    out = client.data_to_send()
    assert out[0] == 0x88 and out[1] & 0x80  # a masked close frame


def test_client_rejects_wrong_accept_key() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    wrong = accept_key("AAAAAAAAAAAAAAAAAAAAAA==").encode()
    response = server_response_for(client).replace(accept_key(client.key).encode(), wrong)
    events = client.receive_data(response + b"\x81\x02hi")
    assert len(events) == 1 and isinstance(events[0], Response)
    assert client.state is State.CLOSED
    assert isinstance(client.handshake_exc, InvalidHeaderValue)
    assert "Sec-WebSocket-Accept" in str(client.handshake_exc)
    # Frames from a server that failed the handshake never reach the application.
    assert client.receive_data(b"\x81\x02hi") == []
    assert client.receive_data(b"") == []
    assert client.data_to_send() == b""


def test_client_rejects_missing_upgrade() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    response = server_response_for(client).replace(b"Upgrade: websocket\r\n", b"")
    client.receive_data(response)
    assert client.state is State.CLOSED
    assert isinstance(client.handshake_exc, InvalidHeader)


@pytest.mark.parametrize("status", [200, 301, 403, 404, 500, 503])
def test_client_non_101_is_invalid_status(status: int) -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    body = f"no websocket here ({status})".encode()
    data = Response.from_status(status, body).serialize()
    events = client.receive_data(data[:10]) + client.receive_data(data[10:])
    assert len(events) == 1 and events[0].status_code == status
    assert client.state is State.CLOSED
    exc = client.handshake_exc
    assert isinstance(exc, InvalidStatus)
    assert exc.status_code == status
    assert exc.body == body
    assert exc.response.headers["Content-Length"] == str(len(body))


def test_client_non_101_body_until_eof() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    assert client.receive_data(b"HTTP/1.1 500 Internal Server Error\r\n\r\nboom") == []
    events = client.receive_eof()
    assert len(events) == 1
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.body == b"boom"
    assert client.state is State.CLOSED


def test_client_server_rejection() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    server = ServerProtocol(origins=["https://good.example"])
    open_server(server, client.data_to_send())
    client.receive_data(server.data_to_send())
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.status_code == 403
    assert b"Origin" in client.handshake_exc.body


def test_client_malformed_response() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    assert client.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n") == []
    assert client.state is State.CLOSED
    assert isinstance(client.handshake_exc, InvalidHandshake)
    assert client.receive_data(b"\x81\x02hi") == []


def test_client_eof_during_handshake() -> None:
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    client.receive_data(b"HTTP/1.1 101 Switching")
    client.receive_eof()
    assert client.state is State.CLOSED
    assert isinstance(client.handshake_exc, InvalidHandshake)


# ---------------------------------------------------------------------------
# Negotiation between the two roles


@pytest.mark.parametrize(
    "offered, supported, chosen",
    [
        (["chat", "superchat"], ["superchat", "chat"], "superchat"),
        (["chat"], ["chat"], "chat"),
        (["chat"], ["other"], None),
        (None, ["chat"], None),
        (["chat"], None, None),
    ],
)
def test_subprotocol_negotiation(offered: list[str] | None, supported: list[str] | None, chosen: str | None) -> None:
    client, server = connect({"subprotocols": offered}, {"subprotocols": supported})
    assert client.subprotocol == server.subprotocol == chosen
    assert client.state is server.state is State.OPEN


def test_subprotocol_select_callback() -> None:
    client, server = connect({"subprotocols": ["a", "b", "c"]}, {"select_subprotocol": lambda client, server: client[-1]})
    assert client.subprotocol == server.subprotocol == "c"


def test_server_chooses_subprotocol_not_offered() -> None:
    client = ClientProtocol(URI, subprotocols=["chat"])
    client.send_request(client.connect())
    response = server_response_for(client, subprotocols=["chat"]).replace(
        b"Sec-WebSocket-Protocol: chat", b"Sec-WebSocket-Protocol: evil"
    )
    client.receive_data(response)
    assert client.state is State.CLOSED
    assert isinstance(client.handshake_exc, InvalidHandshake)


def exchange(client: ClientProtocol, server: ServerProtocol) -> None:
    for message in ["hello " * 100, b"\x00\xff" * 500, "", "é" * 1000, b"x"]:
        assert server.receive_data(client.send_message(message)) == [message]
        assert client.receive_data(server.send_message(message)) == [message]


@pytest.mark.parametrize(
    "client_factory, server_factory",
    [
        (ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory()),
        (
            ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True),
            ServerPerMessageDeflateFactory(),
        ),
        (ClientPerMessageDeflateFactory(server_max_window_bits=10), ServerPerMessageDeflateFactory(client_max_window_bits=9)),
        (ClientPerMessageDeflateFactory(client_max_window_bits=None), ServerPerMessageDeflateFactory(server_max_window_bits=8)),
        (enable_client_permessage_deflate(None)[0], enable_server_permessage_deflate(None)[0]),
    ],
)
def test_permessage_deflate_negotiation(client_factory: Any, server_factory: Any) -> None:
    client, server = connect({"extensions": [client_factory]}, {"extensions": [server_factory]})
    assert isinstance(client.deflate, PerMessageDeflate) and isinstance(server.deflate, PerMessageDeflate)
    assert client.extensions == [client.deflate] and server.extensions == [server.deflate]
    # What one side compresses with, the other inflates with.
    assert client.deflate.local_no_context_takeover == server.deflate.remote_no_context_takeover
    assert server.deflate.local_no_context_takeover == client.deflate.remote_no_context_takeover
    assert client.deflate.local_max_window_bits <= server.deflate.remote_max_window_bits
    assert server.deflate.local_max_window_bits <= client.deflate.remote_max_window_bits
    # Large messages really go compressed (RSV1), and come back intact.
    data = client.send_message("hello " * 100)
    assert data[0] == 0xC1 and len(data) < 100
    assert server.receive_data(data) == ["hello " * 100]
    exchange(client, server)


def test_permessage_deflate_only_when_both_want_it() -> None:
    client, server = connect({"extensions": [ClientPerMessageDeflateFactory()]}, {})
    assert client.deflate is None and server.deflate is None
    assert client.send_message("x" * 1000)[0] == 0x81
    exchange(client, server)
    client, server = connect({}, {"extensions": [ServerPerMessageDeflateFactory()]})
    assert client.deflate is None and server.deflate is None
    exchange(client, server)
    # Without it, RSV1 is a protocol error.
    assert server.receive_data(masked_frame(0xC1, b"x")) == []
    assert server.failure is not None and server.failure.code == 1002


def test_permessage_deflate_with_subprotocol_and_fragments() -> None:
    client, server = connect(
        {"extensions": [ClientPerMessageDeflateFactory()], "subprotocols": ["chat"]},
        {"extensions": [ServerPerMessageDeflateFactory()], "subprotocols": ["chat"]},
    )
    assert client.subprotocol == "chat" and server.deflate is not None
    data = (
        client.send_fragment("abc", first=True, last=False)
        + client.send_ping(b"p")
        + client.send_fragment("def", first=False, last=True)
    )
    assert server.receive_data(data) == [Fragment("abc", False), Ping(b"p"), Fragment("def", True)]
    assert client.receive_data(server.data_to_send()) != []
    exchange(client, server)


def test_max_size_passed_to_roles() -> None:
    client, server = connect({"max_size": 100}, {"max_size": 50})
    assert server.receive_data(client.send_message(b"x" * 50)) == [b"x" * 50]
    assert client.receive_data(server.send_message(b"x" * 100)) == [b"x" * 100]
    server.receive_data(client.send_message(b"x" * 51))
    assert server.failure is not None and server.failure.code == 1009


def test_closing_handshake_between_roles() -> None:
    client, server = connect()
    assert server.receive_data(client.send_close(1001, "going")) == [Close(1001, "going")]
    assert client.receive_data(server.data_to_send()) == [Close(1001, "going")]  # the reason comes back
    assert client.state is server.state is State.CLOSED
    assert client.close_rcvd_then_sent is False and server.close_rcvd_then_sent is True
