"""Tests for wsio.protocol.handshake: both roles of the opening handshake."""

from __future__ import annotations

import base64
import http
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wsio.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
    SecurityError,
)
from wsio.protocol.handshake import (
    SERVER,
    USER_AGENT,
    ClientExtensionFactory,
    Extension,
    ExtensionBase,
    ExtensionParameter,
    ServerExtensionFactory,
    accept_key,
    client_handshake,
    client_request,
    generate_key,
    handshake_error_response,
    parse_uri,
    server_handshake,
    validate_request,
)
from wsio.protocol.http11 import Headers, Request, RequestParser, Response, ResponseParser

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def make_request(*extra: tuple[str, str], drop: Sequence[str] = (), **kwargs: str) -> Request:
    headers = Headers(
        [
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    for name in drop:
        del headers[name]
    headers.update(extra)
    return Request("/chat", headers, **kwargs)


def make_response(*extra: tuple[str, str], drop: Sequence[str] = ()) -> Response:
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)])
    for name in drop:
        del headers[name]
    headers.update(extra)
    return Response(101, "Switching Protocols", headers)


# -- fake extensions --------------------------------------------------------------------


@dataclass
class FakeExtension(ExtensionBase):
    name: str
    params: list[ExtensionParameter]


class FakeServerFactory(ExtensionBase):
    """Accepts offers whose parameters don't include ``refuse``."""

    def __init__(self, name: str = "x-fake", response: list[ExtensionParameter] | None = None):
        self.name = name
        self.response = response if response is not None else [("ok", None)]
        self.calls: list[tuple[list[ExtensionParameter], list[Extension]]] = []

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        self.calls.append((list(params), list(accepted_extensions)))
        if ("refuse", None) in params:
            raise NegotiationError("refused")
        return self.response, FakeExtension(self.name, list(params))


class FakeClientFactory(ExtensionBase):
    def __init__(self, name: str = "x-fake", offer: list[ExtensionParameter] | None = None):
        self.name = name
        self.offer = offer if offer is not None else [("a", "1"), ("b", None)]

    def get_request_params(self) -> list[ExtensionParameter]:
        return self.offer

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> Extension:
        if ("refuse", None) in params:
            raise NegotiationError(f"{self.name} refuses")
        return FakeExtension(self.name, list(params))


def test_fakes_satisfy_protocols() -> None:
    assert isinstance(FakeServerFactory(), ServerExtensionFactory)
    assert isinstance(FakeClientFactory(), ClientExtensionFactory)
    assert isinstance(FakeExtension("x", []), Extension)
    assert repr(FakeServerFactory()) == "<FakeServerFactory x-fake>"


# -- keys ---------------------------------------------------------------------------------


def test_accept_key_rfc6455_example() -> None:
    # RFC 6455 1.3.
    assert accept_key(KEY) == ACCEPT


def test_generate_key() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert generate_key() != key


# -- validate_request -------------------------------------------------------------------


def status_of(request: Request) -> InvalidHandshake:
    with pytest.raises(InvalidHandshake) as excinfo:
        validate_request(request)
    return excinfo.value


class TestValidateRequest:
    def test_valid_request_returns_key(self) -> None:
        assert validate_request(make_request()) == KEY

    def test_method_must_be_get(self) -> None:
        exc = status_of(make_request(method="POST"))
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 405

    def test_version_must_be_http11(self) -> None:
        exc = status_of(make_request(version="HTTP/1.0"))
        assert exc.status == 400
        assert "only HTTP/1.1" in str(exc)

    def test_host_required(self) -> None:
        exc = status_of(make_request(drop=["Host"]))
        assert isinstance(exc, InvalidHeader)
        assert exc.status == 400
        assert str(exc) == "missing Host header"

    def test_host_exactly_once(self) -> None:
        exc = status_of(make_request(("Host", "evil.example.com")))
        assert exc.status == 400
        assert "more than one value" in str(exc)

    def test_upgrade_required(self) -> None:
        exc = status_of(make_request(drop=["Upgrade"]))
        assert isinstance(exc, InvalidUpgrade)
        assert exc.status == 426
        assert str(exc) == "missing Upgrade header"

    def test_upgrade_must_contain_websocket(self) -> None:
        exc = status_of(make_request(("Upgrade", "h2c"), drop=["Upgrade"]))
        assert isinstance(exc, InvalidUpgrade)
        assert str(exc) == "invalid Upgrade header: h2c"

    @pytest.mark.parametrize("value", ["WebSocket", "h2c, websocket", "WEBSOCKET"])
    def test_upgrade_case_insensitive_and_listed(self, value: str) -> None:
        assert validate_request(make_request(("Upgrade", value), drop=["Upgrade"])) == KEY

    def test_upgrade_repeated_lines_are_combined(self) -> None:
        request = make_request(("Upgrade", "h2c"), ("Upgrade", "websocket"), drop=["Upgrade"])
        assert validate_request(request) == KEY

    def test_malformed_upgrade(self) -> None:
        exc = status_of(make_request(("Upgrade", "web socket"), drop=["Upgrade"]))
        assert isinstance(exc, InvalidHeaderFormat)
        assert exc.status == 400

    def test_connection_required(self) -> None:
        exc = status_of(make_request(drop=["Connection"]))
        assert isinstance(exc, InvalidUpgrade)
        assert str(exc) == "missing Connection header"

    def test_connection_must_contain_upgrade(self) -> None:
        exc = status_of(make_request(("Connection", "keep-alive"), drop=["Connection"]))
        assert isinstance(exc, InvalidUpgrade)
        assert str(exc) == "invalid Connection header: keep-alive"

    def test_connection_list(self) -> None:
        request = make_request(("Connection", "keep-alive, upgrade"), drop=["Connection"])
        assert validate_request(request) == KEY

    def test_key_required(self) -> None:
        exc = status_of(make_request(drop=["Sec-WebSocket-Key"]))
        assert exc.status == 400
        assert str(exc) == "missing Sec-WebSocket-Key header"

    def test_duplicate_key_is_400(self) -> None:
        exc = status_of(make_request(("Sec-WebSocket-Key", KEY)))
        assert isinstance(exc, InvalidHeader)
        assert exc.status == 400
        assert "more than one value" in str(exc)

    @pytest.mark.parametrize(
        "key",
        [
            "not base64!",
            base64.b64encode(b"x" * 15).decode(),
            base64.b64encode(b"x" * 17).decode(),
            "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
            "dGhlIHNhbXBsZSBub25j ZQ==",
            "",
            "dGhlIHNhbXBsZSBub25jZQ==é",
        ],
    )
    def test_invalid_key(self, key: str) -> None:
        exc = status_of(make_request(("Sec-WebSocket-Key", key), drop=["Sec-WebSocket-Key"]))
        assert isinstance(exc, InvalidHeaderValue)
        assert exc.status == 400
        assert exc.name == "Sec-WebSocket-Key"

    @given(
        st.one_of(
            st.binary(max_size=20).map(lambda raw: base64.b64encode(raw).decode()),
            # What a header value may hold: printable ASCII and ISO-8859-1 letters.
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=26),
        )
    )
    @example("dGhlIHNhbXBsZSBub25jZR==")  # "R" carries bits past the 16th byte: base64 ignores them, as websockets does
    def test_a_key_is_valid_when_it_is_base64_of_16_bytes(self, key: str) -> None:
        """Exactly what base64 decodes, strictly, to a 16-byte nonce (RFC 6455 4.1), a non-canonical last digit included."""
        try:
            valid = len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
        except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
            valid = False
        request = make_request(("Sec-WebSocket-Key", key), drop=["Sec-WebSocket-Key"])
        if valid:
            assert validate_request(request) == key
        else:
            assert isinstance(status_of(request), InvalidHeaderValue)

    @pytest.mark.parametrize("versions", [[], ["8"], ["13", "13"], ["13, 8"], ["14"]])
    def test_version_must_be_13_once(self, versions: list[str]) -> None:
        extra = [("Sec-WebSocket-Version", v) for v in versions]
        exc = status_of(make_request(*extra, drop=["Sec-WebSocket-Version"]))
        assert isinstance(exc, InvalidHeaderValue)
        assert exc.status == 426
        assert exc.name == "Sec-WebSocket-Version"


# -- server_handshake ---------------------------------------------------------------------


class TestServerHandshake:
    def test_success(self) -> None:
        result = server_handshake(make_request())
        assert result.error is None
        response = result.response
        assert response.status_code == 101
        assert response.reason_phrase == "Switching Protocols"
        assert response.headers["Upgrade"] == "websocket"
        assert response.headers["Connection"] == "Upgrade"
        assert response.headers["Sec-WebSocket-Accept"] == ACCEPT
        assert response.headers["Server"] == SERVER
        assert "Sec-WebSocket-Protocol" not in response.headers
        assert "Sec-WebSocket-Extensions" not in response.headers
        assert response.body == b""
        assert result.subprotocol is None
        assert result.extensions == []

    def test_server_header_none_is_omitted(self) -> None:
        result = server_handshake(make_request(), server_header=None)
        assert "Server" not in result.response.headers
        result = server_handshake(make_request(drop=["Host"]), server_header=None)
        assert "Server" not in result.response.headers

    def test_custom_server_header(self) -> None:
        result = server_handshake(make_request(), server_header="acme/1")
        assert result.response.headers["Server"] == "acme/1"

    def test_a_server_header_checked_once_never_lets_another_through_unchecked(self) -> None:
        """The header last found valid is sent without a second check; any other value is checked."""
        for _ in range(2):
            assert server_handshake(make_request(), server_header="acme/2").response.headers["Server"] == "acme/2"
        for _ in range(2):  # refused again: a value that failed its check isn't remembered as checked
            with pytest.raises(ValueError, match="Server header"):
                server_handshake(make_request(), server_header="acme/3\r\nSet-Cookie: x=1")
        assert server_handshake(make_request(), server_header="acme/2").response.serialize().count(b"\r\n\r\n") == 1

    @pytest.mark.parametrize(
        "extra",
        [Headers(X="1"), {"X": "1"}, [("X", "1")]],
    )
    def test_extra_headers(self, extra: object) -> None:
        result = server_handshake(make_request(), extra_headers=extra)  # type: ignore[arg-type]
        assert result.response.headers["X"] == "1"
        assert list(result.response.headers.raw_items())[-1] == ("X", "1")

    def test_extra_headers_callable(self) -> None:
        seen = []

        def extra(path: str, request_headers: Headers) -> dict[str, str]:
            seen.append((path, request_headers["Host"]))
            return {"Set-Cookie": "a=1"}

        result = server_handshake(make_request(), extra_headers=extra)
        assert result.response.headers["Set-Cookie"] == "a=1"
        assert seen == [("/chat", "server.example.com")]

    def test_extra_headers_callable_failing_is_500(self) -> None:
        def extra(path: str, request_headers: Headers) -> None:
            raise RuntimeError("secret detail")

        result = server_handshake(make_request(), extra_headers=extra)
        assert result.response.status_code == 500
        assert isinstance(result.error, RuntimeError)
        assert b"secret" not in result.response.body

    def test_error_response_for_missing_upgrade(self) -> None:
        result = server_handshake(make_request(drop=["Upgrade", "Connection"]))
        response = result.response
        assert isinstance(result.error, InvalidUpgrade)
        assert response.status_code == 426
        assert response.headers["Upgrade"] == "websocket"
        assert "upgrade" in response.headers["Connection"].lower()
        assert response.headers["Sec-WebSocket-Version"] == "13"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert b"missing Upgrade header" in response.body
        assert "Sec-WebSocket-Accept" not in response.headers

    def test_426_for_version_carries_supported_version(self) -> None:
        request = make_request(("Sec-WebSocket-Version", "8"), drop=["Sec-WebSocket-Version"])
        result = server_handshake(request)
        assert result.response.status_code == 426
        assert result.response.headers["Sec-WebSocket-Version"] == "13"
        assert b"Sec-WebSocket-Version" in result.response.body

    def test_405_carries_allow(self) -> None:
        result = server_handshake(make_request(method="POST"))
        assert result.response.status_code == 405
        assert result.response.headers["Allow"] == "GET"

    def test_duplicate_key_is_never_101(self) -> None:
        result = server_handshake(make_request(("Sec-WebSocket-Key", generate_key())))
        assert result.response.status_code == 400
        assert result.error is not None
        assert result.response.headers["Connection"] == "close"
        assert int(result.response.headers["Content-Length"]) == len(result.response.body)

    def test_error_response_is_parseable(self) -> None:
        result = server_handshake(make_request(drop=["Sec-WebSocket-Key"]))
        parsed = ResponseParser().feed(result.response.serialize())
        assert parsed == result.response

    # origins

    def test_origins_none_allows_anything(self) -> None:
        assert server_handshake(make_request(("Origin", "https://evil"))).error is None
        assert server_handshake(make_request()).error is None

    def test_origin_allowed(self) -> None:
        result = server_handshake(make_request(("Origin", "https://good.example")), origins=["https://good.example"])
        assert result.error is None

    def test_origin_forbidden_is_403(self) -> None:
        result = server_handshake(make_request(("Origin", "https://evil.example")), origins=["https://good.example"])
        assert isinstance(result.error, InvalidOrigin)
        assert result.response.status_code == 403
        assert b"https://evil.example" in result.response.body

    def test_missing_origin(self) -> None:
        result = server_handshake(make_request(), origins=["https://good.example"])
        assert result.response.status_code == 403
        assert str(result.error) == "missing Origin header"
        result = server_handshake(make_request(), origins=["https://good.example", None])
        assert result.error is None

    def test_none_in_origins_does_not_allow_any_origin(self) -> None:
        result = server_handshake(make_request(("Origin", "https://evil")), origins=[None])
        assert result.response.status_code == 403

    def test_origin_pattern_fullmatch(self) -> None:
        origins = [re.compile(r"https://[a-z]+\.example\.com")]
        ok = server_handshake(make_request(("Origin", "https://app.example.com")), origins=origins)
        assert ok.error is None
        bad = server_handshake(make_request(("Origin", "https://app.example.com.evil.net")), origins=origins)
        assert bad.response.status_code == 403

    def test_duplicate_origin_is_rejected(self) -> None:
        result = server_handshake(
            make_request(("Origin", "https://good"), ("Origin", "https://evil")),
            origins=["https://good"],
        )
        assert result.response.status_code == 403

    # subprotocols

    def test_subprotocol_server_preference(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "chat, superchat"))
        result = server_handshake(request, subprotocols=["superchat", "chat"])
        assert result.subprotocol == "superchat"
        assert result.response.headers["Sec-WebSocket-Protocol"] == "superchat"

    def test_subprotocol_lines_combined(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "chat"))
        assert server_handshake(request, subprotocols=["chat"]).subprotocol == "chat"

    def test_subprotocol_no_match_still_accepts(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "other"))
        result = server_handshake(request, subprotocols=["chat"])
        assert result.response.status_code == 101
        assert result.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in result.response.headers

    def test_subprotocol_client_offers_none(self) -> None:
        result = server_handshake(make_request(), subprotocols=["chat"])
        assert result.response.status_code == 101
        assert result.subprotocol is None

    def test_subprotocol_ignored_without_server_subprotocols(self) -> None:
        result = server_handshake(make_request(("Sec-WebSocket-Protocol", "chat")))
        assert result.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in result.response.headers

    def test_malformed_subprotocol_header(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "a b"))
        result = server_handshake(request, subprotocols=["a"])
        assert result.response.status_code == 400
        assert isinstance(result.error, InvalidHeaderFormat)

    def test_select_subprotocol(self) -> None:
        calls = []

        def select(client: list[str], server: list[str]) -> str | None:
            calls.append((client, server))
            return client[-1]

        request = make_request(("Sec-WebSocket-Protocol", "a, b"))
        result = server_handshake(request, subprotocols=["a"], select_subprotocol=select)
        assert result.subprotocol == "b"
        assert calls == [(["a", "b"], ["a"])]

    def test_select_subprotocol_none(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "a"))
        result = server_handshake(request, select_subprotocol=lambda c, s: None)
        assert result.response.status_code == 101
        assert result.subprotocol is None

    def test_select_subprotocol_unoffered_is_500(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "a"))
        result = server_handshake(request, select_subprotocol=lambda c, s: "z")
        assert result.response.status_code == 500
        assert isinstance(result.error, NegotiationError)
        assert "didn't offer" in str(result.error)

    def test_select_subprotocol_raising_is_500(self) -> None:
        def select(client: list[str], server: list[str]) -> str | None:
            raise ZeroDivisionError

        result = server_handshake(make_request(), select_subprotocol=select)
        assert result.response.status_code == 500
        assert isinstance(result.error, ZeroDivisionError)

    # extensions

    def test_extension_accepted(self) -> None:
        factory = FakeServerFactory(response=[("ok", None), ("bits", "10")])
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; a=1"))
        result = server_handshake(request, extensions=[factory])
        assert result.extensions == [FakeExtension("x-fake", [("a", "1")])]
        assert result.response.headers["Sec-WebSocket-Extensions"] == "x-fake; ok; bits=10"

    def test_extension_declined_offer_tries_next(self) -> None:
        factory = FakeServerFactory()
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; refuse, x-fake; b=2"))
        result = server_handshake(request, extensions=[factory])
        assert result.extensions == [FakeExtension("x-fake", [("b", "2")])]
        assert len(factory.calls) == 2

    def test_extension_all_offers_declined(self) -> None:
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; refuse"))
        result = server_handshake(request, extensions=[FakeServerFactory()])
        assert result.response.status_code == 101
        assert result.extensions == []
        assert "Sec-WebSocket-Extensions" not in result.response.headers

    def test_extension_accepted_once(self) -> None:
        factory = FakeServerFactory()
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; a=1, x-fake; a=2"))
        result = server_handshake(request, extensions=[factory])
        assert result.extensions == [FakeExtension("x-fake", [("a", "1")])]
        assert len(factory.calls) == 1

    def test_extensions_in_client_order_with_previous_accepted(self) -> None:
        first, second = FakeServerFactory("x-one"), FakeServerFactory("x-two")
        request = make_request(("Sec-WebSocket-Extensions", "x-two"), ("Sec-WebSocket-Extensions", "x-unknown, x-one"))
        result = server_handshake(request, extensions=[first, second])
        assert [e.name for e in result.extensions] == ["x-two", "x-one"]
        assert first.calls == [([], [FakeExtension("x-two", [])])]
        assert result.response.headers["Sec-WebSocket-Extensions"] == "x-two; ok, x-one; ok"

    def test_malformed_extensions_ignored_without_factories(self) -> None:
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; ="))
        assert server_handshake(request).response.status_code == 101

    def test_malformed_extensions_rejected_with_factories(self) -> None:
        request = make_request(("Sec-WebSocket-Extensions", "x-fake; ="))
        result = server_handshake(request, extensions=[FakeServerFactory()])
        assert result.response.status_code == 400
        assert isinstance(result.error, InvalidHeaderFormat)


# -- handshake_error_response ------------------------------------------------------------


class TestHandshakeErrorResponse:
    def test_parser_errors(self) -> None:
        with pytest.raises(SecurityError) as excinfo:
            RequestParser().feed(b"GET /" + b"a" * 10000)
        response = handshake_error_response(excinfo.value)
        assert response.status_code == 414
        assert response.reason_phrase == http.HTTPStatus(414).phrase
        assert b"max_line=8192" in response.body

    def test_405_from_parser(self) -> None:
        with pytest.raises(InvalidMessage) as excinfo:
            RequestParser().feed(b"POST / HTTP/1.1\r\n")
        response = handshake_error_response(excinfo.value)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET"

    def test_431(self) -> None:
        response = handshake_error_response(SecurityError("too many", 431))
        assert response.status_code == 431
        assert response.reason_phrase == "Request Header Fields Too Large"

    def test_other_exceptions_are_500_without_details(self) -> None:
        response = handshake_error_response(KeyError("internal"), server_header=None)
        assert response.status_code == 500
        assert b"internal" not in response.body
        assert "Server" not in response.headers


# -- client_request -------------------------------------------------------------------------


class TestClientRequest:
    def test_basic(self) -> None:
        request = client_request(parse_uri("ws://example.com/chat?x=1"), key=KEY)
        assert request.method == "GET"
        assert request.path == "/chat?x=1"
        headers = request.headers
        assert headers["Host"] == "example.com"
        assert headers["Upgrade"] == "websocket"
        assert headers["Connection"] == "Upgrade"
        assert headers["Sec-WebSocket-Key"] == KEY
        assert headers["Sec-WebSocket-Version"] == "13"
        assert headers["User-Agent"] == USER_AGENT
        for name in ("Origin", "Authorization", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"):
            assert name not in headers
        # What we send, we accept.
        assert validate_request(request) == KEY

    @pytest.mark.parametrize(
        "uri, host",
        [
            ("ws://example.com:80/", "example.com"),
            ("wss://example.com:443/", "example.com"),
            ("ws://example.com:443/", "example.com:443"),
            ("wss://example.com:80/", "example.com:80"),
            ("ws://example.com:8765/", "example.com:8765"),
            ("ws://[::1]/", "[::1]"),
            ("ws://[::1]:8000/", "[::1]:8000"),
            ("ws://127.0.0.1:8000/", "127.0.0.1:8000"),
        ],
    )
    def test_host_header(self, uri: str, host: str) -> None:
        assert client_request(parse_uri(uri), key=KEY).headers["Host"] == host

    def test_all_options(self) -> None:
        request = client_request(
            parse_uri("wss://user:pass@example.com/"),
            key=KEY,
            origin="https://example.com",
            subprotocols=["chat", "superchat"],
            extensions=[FakeClientFactory(), FakeClientFactory("x-two", [])],
            extra_headers={"Cookie": "a=1"},
            user_agent_header=None,
        )
        headers = request.headers
        assert headers["Origin"] == "https://example.com"
        assert headers["Sec-WebSocket-Protocol"] == "chat, superchat"
        assert headers["Sec-WebSocket-Extensions"] == "x-fake; a=1; b, x-two"
        assert headers["Authorization"] == "Basic dXNlcjpwYXNz"
        assert headers["Cookie"] == "a=1"
        assert "User-Agent" not in headers

    def test_extra_headers_override_defaults(self) -> None:
        request = client_request(
            parse_uri("ws://u:p@example.com/"),
            key=KEY,
            origin="https://a",
            extra_headers=[
                ("User-Agent", "mine"),
                ("Origin", "https://b"),
                ("Authorization", "Bearer t"),
                ("Host", "other"),
            ],
        )
        assert request.headers["User-Agent"] == "mine"
        assert request.headers["Origin"] == "https://b"
        assert request.headers["Authorization"] == "Bearer t"
        assert request.headers["Host"] == "other"

    def test_invalid_subprotocol(self) -> None:
        with pytest.raises(ValueError):
            client_request(parse_uri("ws://x/"), key=KEY, subprotocols=["a b"])


# -- client_handshake ------------------------------------------------------------------------


class TestClientHandshake:
    def test_success(self) -> None:
        request = make_request()
        assert client_handshake(request, make_response(), key=KEY) == (None, [])

    def test_non_101(self) -> None:
        response = Response.from_status(403, "go away")
        with pytest.raises(InvalidStatus) as excinfo:
            client_handshake(make_request(), response, key=KEY)
        assert excinfo.value.response is response
        assert excinfo.value.status_code == 403
        assert excinfo.value.body == b"go away"

    def test_missing_upgrade(self) -> None:
        with pytest.raises(InvalidUpgrade, match="missing Upgrade header"):
            client_handshake(make_request(), make_response(drop=["Upgrade"]), key=KEY)

    @pytest.mark.parametrize("value", ["h2c", "websocket, h2c"])
    def test_wrong_upgrade(self, value: str) -> None:
        response = make_response(("Upgrade", value), drop=["Upgrade"])
        with pytest.raises(InvalidUpgrade, match="invalid Upgrade header"):
            client_handshake(make_request(), response, key=KEY)

    def test_upgrade_case_insensitive(self) -> None:
        response = make_response(("Upgrade", "WebSocket"), drop=["Upgrade"])
        assert client_handshake(make_request(), response, key=KEY) == (None, [])

    def test_missing_connection(self) -> None:
        with pytest.raises(InvalidUpgrade, match="missing Connection header"):
            client_handshake(make_request(), make_response(drop=["Connection"]), key=KEY)

    def test_wrong_connection(self) -> None:
        response = make_response(("Connection", "close"), drop=["Connection"])
        with pytest.raises(InvalidUpgrade, match="invalid Connection header: close"):
            client_handshake(make_request(), response, key=KEY)

    def test_missing_accept(self) -> None:
        with pytest.raises(InvalidHeaderValue, match="missing Sec-WebSocket-Accept"):
            client_handshake(make_request(), make_response(drop=["Sec-WebSocket-Accept"]), key=KEY)

    def test_wrong_accept(self) -> None:
        with pytest.raises(InvalidHeaderValue) as excinfo:
            client_handshake(make_request(), make_response(), key=generate_key())
        assert excinfo.value.name == "Sec-WebSocket-Accept"

    def test_duplicate_accept(self) -> None:
        response = make_response(("Sec-WebSocket-Accept", ACCEPT))
        with pytest.raises(InvalidHeaderValue):
            client_handshake(make_request(), response, key=KEY)

    def test_subprotocol(self) -> None:
        response = make_response(("Sec-WebSocket-Protocol", "chat"))
        result = client_handshake(make_request(), response, key=KEY, subprotocols=["x", "chat"])
        assert result == ("chat", [])

    def test_subprotocol_defaults_to_request_offer(self) -> None:
        request = make_request(("Sec-WebSocket-Protocol", "chat"))
        response = make_response(("Sec-WebSocket-Protocol", "chat"))
        assert client_handshake(request, response, key=KEY) == ("chat", [])

    def test_subprotocol_not_offered(self) -> None:
        response = make_response(("Sec-WebSocket-Protocol", "evil"))
        with pytest.raises(NegotiationError, match="didn't offer: evil"):
            client_handshake(make_request(), response, key=KEY, subprotocols=["chat"])
        with pytest.raises(NegotiationError):
            client_handshake(make_request(), response, key=KEY)

    def test_several_subprotocols(self) -> None:
        response = make_response(("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b"))
        with pytest.raises(InvalidHeader, match="more than one subprotocol"):
            client_handshake(make_request(), response, key=KEY, subprotocols=["a", "b"])

    def test_extensions(self) -> None:
        response = make_response(("Sec-WebSocket-Extensions", "x-two, x-fake; a=1"))
        _, extensions = client_handshake(
            make_request(),
            response,
            key=KEY,
            extensions=[FakeClientFactory(), FakeClientFactory("x-two")],
        )
        assert extensions == [FakeExtension("x-two", []), FakeExtension("x-fake", [("a", "1")])]

    def test_extension_not_offered(self) -> None:
        response = make_response(("Sec-WebSocket-Extensions", "x-other"))
        with pytest.raises(NegotiationError, match="didn't offer: x-other"):
            client_handshake(make_request(), response, key=KEY, extensions=[FakeClientFactory()])

    def test_extension_accepted_twice(self) -> None:
        response = make_response(("Sec-WebSocket-Extensions", "x-fake, x-fake"))
        with pytest.raises(NegotiationError):
            client_handshake(make_request(), response, key=KEY, extensions=[FakeClientFactory()])

    def test_extension_refused_by_factory(self) -> None:
        response = make_response(("Sec-WebSocket-Extensions", "x-fake; refuse"))
        with pytest.raises(NegotiationError, match="x-fake refuses"):
            client_handshake(make_request(), response, key=KEY, extensions=[FakeClientFactory()])

    def test_extension_second_factory_with_same_name(self) -> None:
        class Picky(FakeClientFactory):
            def process_response_params(self, params, accepted_extensions):  # type: ignore[no-untyped-def]
                raise NegotiationError("picky")

        response = make_response(("Sec-WebSocket-Extensions", "x-fake"))
        _, extensions = client_handshake(make_request(), response, key=KEY, extensions=[Picky(), FakeClientFactory()])
        assert extensions == [FakeExtension("x-fake", [])]

    def test_malformed_extensions(self) -> None:
        response = make_response(("Sec-WebSocket-Extensions", "x-fake;;"))
        with pytest.raises(InvalidHeaderFormat):
            client_handshake(make_request(), response, key=KEY, extensions=[FakeClientFactory()])


# -- end to end ------------------------------------------------------------------------------------

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=_TCHAR, min_size=1, max_size=10)


@given(
    st.lists(tokens, max_size=4, unique=True),
    st.lists(tokens, max_size=4, unique=True),
    st.lists(st.sampled_from(["x-a", "x-b", "x-c"]), max_size=3, unique=True),
    st.lists(st.sampled_from(["x-a", "x-b", "x-c"]), max_size=3, unique=True),
    st.binary(max_size=10),
)
def test_handshake_end_to_end(
    client_subprotocols: list[str],
    server_subprotocols: list[str],
    client_extensions: list[str],
    server_extensions: list[str],
    frames: bytes,
) -> None:
    key = generate_key()
    client_factories = [FakeClientFactory(name, []) for name in client_extensions]
    request = client_request(
        parse_uri("ws://example.com:8000/path"),
        key=key,
        subprotocols=client_subprotocols,
        extensions=client_factories,
    )
    parser = RequestParser()
    received = parser.feed(request.serialize() + frames)
    assert received == request
    assert parser.leftover == frames

    result = server_handshake(
        received,
        subprotocols=server_subprotocols,
        extensions=[FakeServerFactory(name, []) for name in server_extensions],
    )
    assert result.error is None
    expected_subprotocol = next((s for s in server_subprotocols if s in client_subprotocols), None)
    assert result.subprotocol == expected_subprotocol
    assert [e.name for e in result.extensions] == [name for name in client_extensions if name in server_extensions]

    response_parser = ResponseParser()
    response = response_parser.feed(result.response.serialize() + frames)
    assert response == result.response
    assert response_parser.leftover == frames
    subprotocol, extensions = client_handshake(
        request, response, key=key, subprotocols=client_subprotocols, extensions=client_factories
    )
    assert subprotocol == expected_subprotocol
    assert extensions == result.extensions
