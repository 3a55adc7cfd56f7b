"""Tests for wsio.protocol.http11: Headers, messages, and the limited parsers."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wsio.exceptions import InvalidHandshake, InvalidMessage, SecurityError
from wsio.protocol.http11 import (
    HandshakeLimits,
    Headers,
    MultipleValuesError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
)

HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def parse_request(data: bytes, limits: HandshakeLimits = HandshakeLimits()) -> Request | None:
    return RequestParser(limits).feed(data)


def request_error(data: bytes, limits: HandshakeLimits = HandshakeLimits()) -> InvalidHandshake:
    with pytest.raises(InvalidHandshake) as excinfo:
        parse_request(data, limits)
    return excinfo.value


def response_error(data: bytes, limits: HandshakeLimits = HandshakeLimits()) -> InvalidHandshake:
    parser = ResponseParser(limits)
    with pytest.raises(InvalidHandshake) as excinfo:
        parser.feed(data)
        parser.feed_eof()
    return excinfo.value


# -- Headers -------------------------------------------------------------------


class TestHeaders:
    def test_getitem_is_case_insensitive(self) -> None:
        headers = Headers({"Content-Type": "text/plain"})
        assert headers["content-type"] == "text/plain"
        assert headers["CONTENT-TYPE"] == "text/plain"

    def test_setitem_appends(self) -> None:
        headers = Headers()
        headers["Set-Cookie"] = "a=1"
        headers["set-cookie"] = "b=2"
        assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]

    def test_getitem_missing_raises_keyerror(self) -> None:
        with pytest.raises(KeyError):
            Headers()["Host"]

    def test_getitem_multiple_values_raises(self) -> None:
        headers = Headers([("A", "1"), ("a", "2")])
        with pytest.raises(MultipleValuesError) as excinfo:
            headers["A"]
        assert isinstance(excinfo.value, KeyError)
        assert "get_all" in str(excinfo.value)

    def test_get(self) -> None:
        headers = Headers([("A", "1"), ("B", "2"), ("b", "3")])
        assert headers.get("a") == "1"
        assert headers.get("missing") is None
        assert headers.get("missing", "x") == "x"
        # Several values are an error, not silently the default.
        with pytest.raises(MultipleValuesError):
            headers.get("B")

    def test_get_all_missing_is_empty(self) -> None:
        assert Headers().get_all("X") == []

    def test_delitem_removes_every_value(self) -> None:
        headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
        del headers["a"]
        assert "A" not in headers
        assert list(headers.raw_items()) == [("B", "2")]

    def test_delitem_missing_raises_keyerror(self) -> None:
        with pytest.raises(KeyError):
            del Headers()["A"]

    def test_contains(self) -> None:
        headers = Headers(Host="x")
        assert "host" in headers
        assert "HOST" in headers
        assert "Origin" not in headers
        assert 42 not in headers

    def test_iter_and_len_count_distinct_names(self) -> None:
        headers = Headers([("B", "1"), ("A", "2"), ("b", "3")])
        assert list(headers) == ["b", "a"]
        assert len(headers) == 2

    def test_raw_items_keep_order_and_case(self) -> None:
        pairs = [("X-One", "1"), ("x-two", "2"), ("X-ONE", "3")]
        assert list(Headers(pairs).raw_items()) == pairs

    def test_items_yield_every_pair(self) -> None:
        pairs = [("A", "1"), ("B", "2"), ("A", "3")]
        headers = Headers(pairs)
        assert list(headers.items()) == pairs
        assert dict(Headers([("A", "1"), ("B", "2")]).items()) == {"A": "1", "B": "2"}
        assert list(headers.values()) == ["1", "2", "3"]

    def test_constructors(self) -> None:
        expected = [("A", "1"), ("B", "2")]
        assert list(Headers({"A": "1", "B": "2"}).raw_items()) == expected
        assert list(Headers(expected).raw_items()) == expected
        assert list(Headers(Headers(expected)).raw_items()) == expected
        assert list(Headers(A="1", B="2").raw_items()) == expected
        assert len(Headers()) == 0

    def test_copy_is_independent(self) -> None:
        headers = Headers(A="1")
        copy = headers.copy()
        copy["A"] = "2"
        assert headers.get_all("A") == ["1"]
        assert copy.get_all("A") == ["1", "2"]

    def test_update_appends(self) -> None:
        headers = Headers(A="1")
        headers.update({"A": "2"})
        headers.update([("a", "3")])
        headers.update(Headers(A="4"))
        headers.update(A="5")
        assert headers.get_all("a") == ["1", "2", "3", "4", "5"]

    def test_update_rejects_several_positional(self) -> None:
        with pytest.raises(TypeError):
            Headers().update({}, {})

    def test_clear(self) -> None:
        headers = Headers(A="1")
        headers.clear()
        assert len(headers) == 0
        assert list(headers.raw_items()) == []

    def test_eq_is_case_insensitive_on_names(self) -> None:
        assert Headers(A="1") == Headers(a="1")
        assert Headers(A="1") != Headers(A="2")
        assert Headers([("A", "1"), ("A", "2")]) != Headers([("A", "2"), ("A", "1")])
        assert Headers(A="1") != {"A": "1"}

    def test_repr(self) -> None:
        assert repr(Headers(A="1")) == "Headers([('A', '1')])"

    def test_str_is_the_header_block(self) -> None:
        headers = Headers([("Host", "x"), ("Upgrade", "websocket")])
        assert str(headers) == "Host: x\r\nUpgrade: websocket\r\n\r\n"
        assert headers.serialize() == b"Host: x\r\nUpgrade: websocket\r\n\r\n"

    @pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb"])
    def test_rejects_header_injection(self, value: str) -> None:
        with pytest.raises(ValueError, match="invalid character"):
            Headers()["X-Test"] = value

    @pytest.mark.parametrize("name", ["", "Bad Name", "Bad:Name", "Bad\r\nName", "é"])
    def test_rejects_invalid_names(self, name: str) -> None:
        with pytest.raises(ValueError, match="invalid header name"):
            Headers()[name] = "x"

    def test_rejects_non_latin1_values(self) -> None:
        with pytest.raises(ValueError, match="ISO-8859-1"):
            Headers()["X"] = "snowman ☃"

    def test_rejects_non_str_values(self) -> None:
        with pytest.raises(TypeError):
            Headers()["X"] = 1  # type: ignore[assignment]

    def test_latin1_values_serialize_as_latin1(self) -> None:
        assert Headers(X="café").serialize() == b"X: caf\xe9\r\n\r\n"

    def test_tab_allowed_in_values(self) -> None:
        headers = Headers()
        headers["X"] = "a\tb"
        assert headers["X"] == "a\tb"

    def test_pop_uses_single_value(self) -> None:
        headers = Headers(A="1")
        assert headers.pop("a") == "1"
        assert "A" not in headers


# -- messages ---------------------------------------------------------------------


class TestMessages:
    def test_request_defaults_and_serialize(self) -> None:
        request = Request("/chat", Headers(Host="example.com"))
        assert request.method == "GET"
        assert request.version == "HTTP/1.1"
        assert request.serialize() == b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n"

    def test_response_serialize_with_body(self) -> None:
        response = Response(200, "OK", Headers([("Content-Length", "2")]), b"hi")
        assert response.serialize() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        assert response.status == 200

    def test_from_status_with_text_body(self) -> None:
        response = Response.from_status(403, "nope ☃")
        assert response.status_code == 403
        assert response.reason_phrase == "Forbidden"
        assert response.body == "nope ☃".encode()
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Content-Length"] == str(len(response.body))
        assert response.headers["Connection"] == "close"

    def test_from_status_101_has_no_body_headers(self) -> None:
        response = Response.from_status(101, headers={"Upgrade": "websocket"})
        assert response.reason_phrase == "Switching Protocols"
        assert "Connection" not in response.headers
        assert "Content-Length" not in response.headers
        assert response.headers["Upgrade"] == "websocket"

    def test_from_status_empty_body_has_zero_length(self) -> None:
        response = Response.from_status(404)
        assert response.headers["Content-Length"] == "0"
        assert "Content-Type" not in response.headers
        assert Response.from_status(204).headers.get("Content-Length") is None

    def test_from_status_keeps_given_headers(self) -> None:
        response = Response.from_status(400, b"x", Headers([("Content-Type", "text/html"), ("Connection", "keep-alive")]))
        assert response.headers["Content-Type"] == "text/html"
        assert response.headers["Connection"] == "keep-alive"

    def test_from_status_unknown_status(self) -> None:
        assert Response.from_status(599).reason_phrase == ""

    def test_limits_defaults(self) -> None:
        limits = HandshakeLimits()
        assert (limits.max_line, limits.max_headers, limits.max_size, limits.max_body) == (
            8192,
            128,
            65536,
            1 << 20,
        )
        with pytest.raises(AttributeError):
            limits.max_line = 1  # type: ignore[misc]


# -- RequestParser -----------------------------------------------------------------


class TestRequestParser:
    def test_parses_handshake(self) -> None:
        request = parse_request(HANDSHAKE)
        assert request is not None
        assert request.method == "GET"
        assert request.path == "/chat"
        assert request.version == "HTTP/1.1"
        assert request.headers["Host"] == "server.example.com"
        assert request.headers["sec-websocket-version"] == "13"
        assert list(request.headers.raw_items())[0] == ("Host", "server.example.com")

    def test_returns_none_until_complete(self) -> None:
        parser = RequestParser()
        assert parser.feed(HANDSHAKE[:-1]) is None
        assert parser.feed(HANDSHAKE[-1:]) is not None

    def test_leftover(self) -> None:
        parser = RequestParser()
        assert parser.feed(HANDSHAKE + b"\x81\x85frame") is not None
        assert parser.leftover == b"\x81\x85frame"
        assert parser.feed(b"more") is None
        assert parser.leftover == b"\x81\x85framemore"

    def test_leftover_empty(self) -> None:
        parser = RequestParser()
        parser.feed(HANDSHAKE)
        assert parser.leftover == b""

    def test_accepts_bytearray_and_memoryview(self) -> None:
        assert RequestParser().feed(bytearray(HANDSHAKE)) is not None
        assert RequestParser().feed(memoryview(HANDSHAKE)) is not None

    def test_strips_ows_around_values(self) -> None:
        request = parse_request(b"GET / HTTP/1.1\r\nHost: \t x \t\r\nEmpty:\r\n\r\n")
        assert request is not None
        assert request.headers["Host"] == "x"
        assert request.headers["Empty"] == ""

    def test_header_values_decoded_as_latin1(self) -> None:
        request = parse_request(b"GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n")
        assert request is not None
        assert request.headers["X"] == "café"

    def test_absolute_form_target(self) -> None:
        request = parse_request(b"GET ws://example.com/chat HTTP/1.1\r\n\r\n")
        assert request is not None
        assert request.path == "ws://example.com/chat"

    @pytest.mark.parametrize("target", [b"chat", b"*", b"/caf\xe9", b"/a\x7fb", b"/a\x00b"])
    def test_rejects_invalid_targets(self, target: bytes) -> None:
        exc = request_error(b"GET " + target + b" HTTP/1.1\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400

    def test_request_line_too_long_is_414(self) -> None:
        exc = request_error(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        assert isinstance(exc, SecurityError)
        assert exc.status == 414
        assert "request line" in str(exc)
        assert "max_line=8192" in str(exc)

    def test_request_line_too_long_message(self) -> None:
        limits = HandshakeLimits(max_line=20)
        line = b"GET /" + b"a" * 7 + b" HTTP/1.1"  # 21 bytes
        exc = request_error(line + b"\r\n\r\n", limits)
        assert exc.status == 414
        # Rejected as soon as max_line + CR bytes hold no LF: the size is a bound.
        assert str(exc) == "request line of at least 21 bytes exceeds max_line=20"

    def test_line_exactly_max_line_is_accepted(self) -> None:
        line = b"GET /" + b"a" * 8 + b" HTTP/1.1"
        assert parse_request(line + b"\r\n\r\n", HandshakeLimits(max_line=len(line))) is not None

    def test_header_line_too_long_is_431(self) -> None:
        header = b"X: " + b"a" * 8997  # 9000 bytes
        exc = request_error(b"GET / HTTP/1.1\r\n" + header + b"\r\n\r\n")
        assert isinstance(exc, SecurityError)
        assert exc.status == 431
        assert "header line of" in str(exc)
        assert "exceeds max_line=8192" in str(exc)

    def test_exact_message_for_complete_header_line(self) -> None:
        limits = HandshakeLimits(max_line=100)
        header = b"X: " + b"a" * 197
        parser = RequestParser(limits)
        with pytest.raises(SecurityError) as excinfo:
            for byte in b"GET / HTTP/1.1\r\n" + header + b"\r\n":
                parser.feed(bytes([byte]))
        # Rejected before the line ends: it's reported as "at least".
        assert str(excinfo.value) == "header line of at least 102 bytes exceeds max_line=100"

    def test_too_many_headers_is_431(self) -> None:
        head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(129)) + b"\r\n"
        exc = request_error(head)
        assert isinstance(exc, SecurityError)
        assert exc.status == 431
        assert "max_headers=128" in str(exc)

    def test_max_headers_exactly_is_accepted(self) -> None:
        head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(128)) + b"\r\n"
        request = parse_request(head)
        assert request is not None
        assert len(request.headers) == 128

    def test_head_too_big_is_431(self) -> None:
        limits = HandshakeLimits(max_size=1000)
        head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 90) for i in range(20))
        exc = request_error(head + b"\r\n", limits)
        assert isinstance(exc, SecurityError)
        assert exc.status == 431
        assert "max_size=1000" in str(exc)
        assert str(exc).startswith("request head of ")

    def test_head_too_big_detected_before_line_ends(self) -> None:
        limits = HandshakeLimits(max_size=100, max_line=1000)
        exc = request_error(b"GET / HTTP/1.1\r\nX: " + b"a" * 200, limits)
        assert exc.status == 431
        assert "at least" in str(exc)

    @pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9"])
    def test_rejects_other_http_versions(self, version: bytes) -> None:
        exc = request_error(b"GET / " + version + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400
        assert "only HTTP/1.1 is supported" in str(exc)

    @pytest.mark.parametrize("version", [b"HTTP/1.11", b"http/1.1", b"HTTP/2", b"FOO"])
    def test_rejects_malformed_versions(self, version: bytes) -> None:
        exc = request_error(b"GET / " + version + b"\r\n\r\n")
        assert exc.status == 400
        assert "invalid HTTP version" in str(exc)

    @pytest.mark.parametrize("method", [b"POST", b"HEAD", b"get", b"CONNECT"])
    def test_rejects_other_methods_with_405(self, method: bytes) -> None:
        exc = request_error(method + b" / HTTP/1.1\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 405
        assert "only GET" in str(exc)

    @pytest.mark.parametrize(
        "line",
        [b"GET /", b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b"GET\t/\tHTTP/1.1", b"", b" GET / HTTP/1.1"],
    )
    def test_rejects_malformed_request_lines(self, line: bytes) -> None:
        exc = request_error(line + b"\r\nHost: x\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400

    def test_rejects_invalid_method_token(self) -> None:
        exc = request_error(b"G(T / HTTP/1.1\r\n\r\n")
        assert "invalid HTTP method" in str(exc)

    @pytest.mark.parametrize("length", [b"1", b"10", b"0, 1", b"abc", b"-1", b"+0"])
    def test_rejects_request_body(self, length: bytes) -> None:
        exc = request_error(b"GET / HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400

    def test_content_length_zero_is_accepted(self) -> None:
        request = parse_request(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert request is not None

    @pytest.mark.parametrize("coding", [b"chunked", b"identity", b"gzip, chunked"])
    def test_rejects_transfer_encoding(self, coding: bytes) -> None:
        exc = request_error(b"GET / HTTP/1.1\r\nTransfer-Encoding: " + coding + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400
        assert "Transfer-Encoding" in str(exc)

    def test_rejects_obsolete_line_folding(self) -> None:
        exc = request_error(b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert "obsolete line folding" in str(exc)
        exc = request_error(b"GET / HTTP/1.1\r\n\tX: a\r\n\r\n")
        assert "obsolete line folding" in str(exc)

    @pytest.mark.parametrize(
        "data",
        [
            b"GET / HTTP/1.1\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"\nGET / HTTP/1.1\r\n\r\n",
        ],
    )
    def test_rejects_bare_lf(self, data: bytes) -> None:
        exc = request_error(data)
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400
        assert "LF without CR" in str(exc)

    @pytest.mark.parametrize(
        "data",
        [b"GET / HTTP/1.1\rHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", b"GET / HTTP/1.1\r\r\n\r\n"],
    )
    def test_rejects_bare_cr(self, data: bytes) -> None:
        exc = request_error(data)
        assert isinstance(exc, InvalidMessage)
        assert "CR without LF" in str(exc)

    @pytest.mark.parametrize("value", [b"a\x00b", b"a\x01b", b"a\x1fb", b"a\x7fb", b"a\x0bb"])
    def test_rejects_control_characters_in_values(self, value: bytes) -> None:
        exc = request_error(b"GET / HTTP/1.1\r\nX: " + value + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert "invalid character in X header value" in str(exc)

    @pytest.mark.parametrize("line", [b"Host : x", b"Ho st: x", b": x", b"H\x00st: x", b"H\xe9: x", b"Host"])
    def test_rejects_invalid_header_names(self, line: bytes) -> None:
        exc = request_error(b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert exc.status == 400

    def test_errors_are_sticky(self) -> None:
        parser = RequestParser()
        with pytest.raises(InvalidMessage) as first:
            parser.feed(b"POST / HTTP/1.1\r\n")
        with pytest.raises(InvalidMessage) as second:
            parser.feed(b"\r\n")
        assert second.value is first.value

    def test_feed_eof(self) -> None:
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\n")
        with pytest.raises(InvalidMessage, match="connection closed"):
            parser.feed_eof()
        parser = RequestParser()
        parser.feed(HANDSHAKE)
        parser.feed_eof()  # complete: nothing to report

    def test_endless_line_is_rejected_with_bounded_buffer(self) -> None:
        max_seen = 0

        class SpyParser(RequestParser):
            def _process(self) -> None:
                nonlocal max_seen
                max_seen = max(max_seen, len(self._buf))
                super()._process()

        parser = SpyParser()
        with pytest.raises(SecurityError) as excinfo:
            parser.feed(b"GET /" + b"a" * (1 << 20))  # one 1 MiB chunk
        assert excinfo.value.status == 414
        assert max_seen <= parser.limits.max_line + 2
        assert parser.buffered == 0  # dropped on error

    def test_scan_offset_avoids_rescanning(self) -> None:
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\nX-Long: ")
        for _ in range(100):
            parser.feed(b"a")
        # The partial line was searched up to its end once; the next feed
        # only looks at the new byte.
        assert parser._scan == parser.buffered == len("X-Long: ") + 100

    def test_byte_at_a_time_60k_head(self) -> None:
        headers = b"".join(b"X-H%03d: %s\r\n" % (i, b"v" * 500) for i in range(120))
        head = b"GET /chat HTTP/1.1\r\n" + headers + b"\r\n"
        assert 60_000 < len(head) < HandshakeLimits().max_size
        parser = RequestParser()
        result = None
        for i in range(len(head)):
            result = parser.feed(head[i : i + 1])
            assert result is None or i == len(head) - 1
        assert result is not None
        assert len(result.headers) == 120


# -- ResponseParser ----------------------------------------------------------------


RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


class TestResponseParser:
    def test_parses_101_with_leftover(self) -> None:
        parser = ResponseParser()
        response = parser.feed(RESPONSE_101 + b"\x81\x02hi")
        assert response is not None
        assert response.status_code == 101
        assert response.reason_phrase == "Switching Protocols"
        assert response.headers["Upgrade"] == "websocket"
        assert response.body == b""
        assert parser.leftover == b"\x81\x02hi"
        assert parser.feed(b"!") is None
        assert parser.leftover == b"\x81\x02hi!"
        assert parser.feed_eof() is None

    def test_101_ignores_content_length(self) -> None:
        parser = ResponseParser()
        response = parser.feed(b"HTTP/1.1 101 OK\r\nContent-Length: 5\r\n\r\nframe")
        assert response is not None and response.body == b""
        assert parser.leftover == b"frame"

    def test_content_length_body(self) -> None:
        parser = ResponseParser()
        assert parser.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nno") is None
        response = parser.feed(b"pe!extra")
        assert response is not None
        assert response.status == 403
        assert response.body == b"nope!"
        assert parser.leftover == b"extra"

    def test_zero_content_length(self) -> None:
        response = ResponseParser().feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        assert response is not None and response.body == b""

    @pytest.mark.parametrize("status", [b"204", b"304", b"100", b"199"])
    def test_statuses_without_body(self, status: bytes) -> None:
        response = ResponseParser().feed(b"HTTP/1.1 " + status + b" X\r\n\r\n")
        assert response is not None
        assert response.body == b""

    def test_chunked_body(self) -> None:
        data = (
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n"
            b"6\r\n world\r\n"
            b"0\r\nTrailer: x\r\n\r\nleft"
        )
        parser = ResponseParser()
        response = parser.feed(data)
        assert response is not None
        assert response.body == b"hello world"
        assert parser.leftover == b"left"

    def test_chunked_body_byte_at_a_time(self) -> None:
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"
        parser = ResponseParser()
        results = [parser.feed(data[i : i + 1]) for i in range(len(data))]
        assert results[-1] is not None
        assert results[-1].body == b"0123456789"
        assert all(r is None for r in results[:-1])

    def test_body_until_eof(self) -> None:
        parser = ResponseParser()
        assert parser.feed(b"HTTP/1.1 400 Bad Request\r\n\r\nsome ") is None
        assert parser.feed(b"text") is None
        response = parser.feed_eof()
        assert response is not None
        assert response.body == b"some text"
        assert parser.feed_eof() is None

    def test_http10_error_page_is_accepted(self) -> None:
        response = ResponseParser().feed(b"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        assert response is not None and response.status_code == 502

    def test_101_over_http10_is_rejected(self) -> None:
        exc = response_error(b"HTTP/1.0 101 Switching Protocols\r\n\r\n")
        assert isinstance(exc, InvalidMessage)

    def test_status_line_without_reason(self) -> None:
        for line in (b"HTTP/1.1 101", b"HTTP/1.1 101 "):
            response = ResponseParser().feed(line + b"\r\n\r\n")
            assert response is not None
            assert response.reason_phrase == ""

    def test_reason_decoded_as_latin1(self) -> None:
        response = ResponseParser().feed(b"HTTP/1.1 101 Sw\xeftching\r\n\r\n")
        assert response is not None and response.reason_phrase == "Swïtching"

    @pytest.mark.parametrize(
        "line",
        [
            b"HTTP/1.1 1010 X",
            b"HTTP/1.1 abc X",
            b"HTTP/1.1 099 X",
            b"HTTP/1.1 600 X",
            b"HTTP/3.0 101 X",
            b"ICY 200 OK",
            b"HTTP/1.1 101 a\x00b",
            b"",
        ],
    )
    def test_rejects_malformed_status_lines(self, line: bytes) -> None:
        exc = response_error(line + b"\r\n\r\n")
        assert isinstance(exc, InvalidMessage)

    def test_content_length_over_max_body(self) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", HandshakeLimits(max_body=1000))
        assert isinstance(exc, SecurityError)
        assert str(exc) == "response body of 2000 bytes exceeds max_body=1000"

    def test_eof_body_over_max_body(self) -> None:
        parser = ResponseParser(HandshakeLimits(max_body=1000))
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        with pytest.raises(SecurityError, match="max_body=1000"):
            for _ in range(100):
                parser.feed(b"x" * 100)
        assert parser.buffered == 0

    def test_eof_body_over_max_body_in_one_chunk_is_not_buffered(self) -> None:
        parser = ResponseParser(HandshakeLimits(max_body=1000))
        with pytest.raises(SecurityError):
            parser.feed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (1 << 20))
        assert len(parser._body) <= 1001

    def test_chunked_body_over_max_body(self) -> None:
        exc = response_error(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" + b"x" * 512 + b"\r\n" + b"200\r\n",
            HandshakeLimits(max_body=1000),
        )
        assert isinstance(exc, SecurityError)
        assert "max_body=1000" in str(exc)

    def test_huge_chunk_size(self) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n")
        assert isinstance(exc, SecurityError)

    @pytest.mark.parametrize("size", [b"x", b"", b"-1", b"1" * 17, b"0x10"])
    def test_rejects_bad_chunk_size(self, size: bytes) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n")
        assert isinstance(exc, InvalidMessage)
        assert "invalid chunk size" in str(exc)

    def test_rejects_chunk_without_crlf(self) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert "not followed by CRLF" in str(exc)

    def test_rejects_other_transfer_codings(self) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        assert isinstance(exc, InvalidMessage)
        assert "unsupported Transfer-Encoding" in str(exc)

    def test_rejects_conflicting_content_length(self) -> None:
        exc = response_error(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        assert "conflicting Content-Length" in str(exc)

    def test_identical_content_lengths_are_merged(self) -> None:
        response = ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab")
        assert response is not None and response.body == b"ab"

    def test_rejects_malformed_headers(self) -> None:
        exc = response_error(b"HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n")
        assert isinstance(exc, InvalidMessage)

    def test_status_line_too_long(self) -> None:
        exc = response_error(b"HTTP/1.1 200 " + b"a" * 10000)
        assert isinstance(exc, SecurityError)
        assert "status line of at least" in str(exc)

    def test_eof_before_anything(self) -> None:
        parser = ResponseParser()
        with pytest.raises(InvalidMessage, match="connection closed before the HTTP response"):
            parser.feed_eof()

    def test_eof_in_head(self) -> None:
        parser = ResponseParser()
        parser.feed(b"HTTP/1.1 101 Switching")
        with pytest.raises(InvalidMessage, match="while reading the HTTP response head"):
            parser.feed_eof()

    def test_eof_in_content_length_body(self) -> None:
        parser = ResponseParser()
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        with pytest.raises(InvalidMessage, match="after 3 bytes of a 10-byte response body"):
            parser.feed_eof()

    def test_eof_in_chunked_body(self) -> None:
        parser = ResponseParser()
        parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
        with pytest.raises(InvalidMessage, match="chunked"):
            parser.feed_eof()


# -- properties ------------------------------------------------------------------

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=_TCHAR, min_size=1, max_size=20)
# Field values: visible latin-1 and inner SP/HTAB, no leading/trailing OWS.
_value_chars = st.characters(min_codepoint=0, max_codepoint=0xFF).filter(lambda c: c in "\t " or (ord(c) >= 0x21 and c != "\x7f"))
header_values = st.text(alphabet=_value_chars, max_size=40).map(lambda v: v.strip(" \t"))
paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(lambda p: "/" + p)
header_lists = st.lists(
    st.tuples(tokens, header_values).filter(lambda kv: kv[0].lower() not in ("content-length", "transfer-encoding")),
    max_size=20,
)


@st.composite
def requests_and_splits(draw: st.DrawFn) -> tuple[Request, list[int]]:
    request = Request(draw(paths), Headers(draw(header_lists)))
    size = len(request.serialize())
    cuts = draw(st.lists(st.integers(0, size), max_size=10))
    return request, sorted(cuts)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@given(requests_and_splits(), st.binary(max_size=20))
def test_request_roundtrip_any_split(case: tuple[Request, list[int]], trailer: bytes) -> None:
    request, cuts = case
    data = request.serialize() + trailer
    parser = RequestParser()
    results = [parser.feed(chunk) for chunk in split(data, cuts)]
    parsed = [r for r in results if r is not None]
    assert parsed == [request]
    assert list(parsed[0].headers.raw_items()) == list(request.headers.raw_items())
    assert parser.leftover == trailer


@given(
    st.integers(100, 599),
    st.text(alphabet=_TCHAR + " ", max_size=20).map(str.strip),
    header_lists,
    st.binary(max_size=200),
    st.lists(st.integers(0, 400), max_size=8),
    st.sampled_from(["length", "chunked", "eof"]),
)
def test_response_roundtrip_any_split(
    status: int,
    reason: str,
    header_pairs: list[tuple[str, str]],
    body: bytes,
    cuts: list[int],
    framing: str,
) -> None:
    headers = Headers(header_pairs)
    has_body = not (100 <= status < 200 or status in (204, 304))
    if not has_body:
        body = b""
    if framing == "length":
        headers["Content-Length"] = str(len(body))
        payload = body
    elif framing == "chunked" and has_body:
        headers["Transfer-Encoding"] = "chunked"
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:7], body[7:]) if c)
        payload += b"0\r\n\r\n"
    else:
        payload = body
    response = Response(status, reason, headers, body)
    data = Response(status, reason, headers, payload).serialize()
    parser = ResponseParser()
    results = [parser.feed(chunk) for chunk in split(data, sorted(c for c in cuts if c <= len(data)))]
    results.append(parser.feed_eof())
    parsed = [r for r in results if r is not None]
    assert parsed == [response]


_http_like = st.lists(
    st.sampled_from(
        [
            b"GET / HTTP/1.1",
            b"HTTP/1.1 200 OK",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b" ",
            b"\t",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"0",
            b"ff",
            b"X: y",
            b"\x00",
            b"\xff",
            b"abc",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), _http_like), st.lists(st.integers(0, 300), max_size=5))
def test_any_bytes_only_raise_handshake_errors(data: bytes, cuts: list[int]) -> None:
    limits = HandshakeLimits(max_line=64, max_headers=4, max_size=200, max_body=50)
    chunks = split(data, sorted(c for c in cuts if c <= len(data)))
    for parser_class in (RequestParser, ResponseParser):
        parser = parser_class(limits)
        try:
            for chunk in chunks:
                result = parser.feed(chunk)
                assert result is None or isinstance(result, (Request, Response))
            parser.feed_eof()
        except InvalidHandshake:
            pass
        assert parser.buffered <= limits.max_line + 2


_request_like = st.lists(
    st.sampled_from(
        [
            b"GET / HTTP/1.1",
            b"GET /x?a=b HTTP/1.1",
            b"POST / HTTP/1.1",
            b"GET / HTTP/1.0",
            b"\r\n",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b" ",
            b"\t",
            b"Host: h",
            b"Upgrade: websocket",
            b"Content-Length: 3",
            b"Content-Length: 0",
            b"Transfer-Encoding: chunked",
            b"X: y",
            b"X : y",
            b"\x00",
            b"\xff",
            b"a" * 70,
        ]
    ),
    max_size=30,
).map(b"".join)


# Mostly well-formed heads with one thing wrong here and there.
_request_heads = st.builds(
    lambda start, headers, end: start + b"".join(b"\r\n" + header for header in headers) + end,
    st.sampled_from([b"GET / HTTP/1.1", b"GET /x?a=b HTTP/1.1", b"POST / HTTP/1.1", b"GET / HTTP/1.0", b"GET  / HTTP/1.1", b""]),
    st.lists(
        st.sampled_from(
            [
                b"Host: h",
                b"Upgrade: websocket",
                b"X: y",
                b"X : y",
                b" folded",
                b"Content-Length: 3",
                b"Content-Length: 0",
                b"Transfer-Encoding: chunked",
                b"X: a\x00b",
                b"X: \xff",
                b"Bad\rLine: 1",
                b"Bad\nLine: 1",
                b"",
                b"Y:",
                b"Long: " + b"a" * 60,
                b"Ws: \t a b\t \t",
                b"Ws:\t\t",
                b"Tab: a\tb",
                b"Obs: caf\xe9",
                b"Del: y\x7f",
                b"Paren(: y",
                b"Sp: \x20",
            ]
        ),
        max_size=6,
    ),
    st.sampled_from([b"\r\n\r\n", b"\r\n\r\n", b"\r\n\r\n", b"\r\n", b"\n\n", b"\r\n\n"]),
)


class _IncrementalOnly(RequestParser):
    """The parser without its one-pass path for a whole head."""

    def _feed_whole_head(self, data: bytes) -> Request | None:
        return None


def _outcome(parser: RequestParser, chunks: list[bytes]) -> object:
    try:
        for chunk in chunks:
            result = parser.feed(chunk)
            if result is not None:
                headers = result.headers
                lookups = {name.lower(): headers.get_all(name) for name, _ in headers.raw_items()}
                return (result.method, result.path, list(headers.raw_items()), lookups, parser.leftover)
        return None
    except InvalidHandshake as exc:
        return (type(exc), str(exc), getattr(exc, "status", None))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_request_heads, _request_like), st.binary(max_size=10))
@example(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"\x81\x00")
@example(b"GET / HTTP/1.1\r\nBad\nLine: 1\r\n\r\n", b"")  # a bare LF
@example(b"GET / HTTP/1.1\r\nBad\rLine: 1\r\n\r\n", b"")  # a bare CR
@example(b"GET / HTTP/1.1\r\nLong: " + b"a" * 60 + b"\r\n\r\n", b"")  # a line over max_line
@example(b"GET / HTTP/1.1\r\n" + b"X: 0123456789abcdef0123456789abcdef0123456789\r\n" * 4 + b"\r\n", b"")  # max_size
@example(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 5 + b"\r\n", b"")  # max_headers
@example(b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"")
@example(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"")
@example(b"GET / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", b"")
@example(b"GET ws://h/p HTTP/1.1\r\nA: 1\r\na: 2\r\nB:\r\n\r\n", b"")  # absolute-form, a repeated name
@example(b"GET h/p HTTP/1.1\r\nA: 1\r\n\r\n", b"")  # neither origin-form nor absolute-form
@example(b"GET /  HTTP/1.1\r\n\r\n", b"")  # two spaces
@example(b"GET / HTTP/1.0\r\n\r\n", b"")
@example(b"POST / HTTP/1.1\r\n\r\n", b"")
@example(b"GET / HTTP/1.1\r\n A: 1\r\n\r\n", b"")  # obs-fold
@example(b"GET / HTTP/1.1\r\nA : 1\r\n\r\n", b"")  # a space before the colon
@example(b"GET / HTTP/1.1\r\nA: 1\r\n\r", b"")  # not quite the end of the head
def test_a_request_in_one_read_parses_as_on_the_incremental_path(data: bytes, trailer: bytes) -> None:
    """The one-pass path for a head that came in one read decides exactly as the incremental one."""
    limits = HandshakeLimits(max_line=64, max_headers=4, max_size=200)
    data += trailer
    assert _outcome(RequestParser(limits), [data]) == _outcome(_IncrementalOnly(limits), [data])


# No deadline: with 1-byte chunks an example is 16,000 feed() calls, which
# takes 300 ms on Python 3.10 (100 ms on 3.11) with nothing else running.
@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=1, max_size=64).filter(lambda b: b"\n" not in b), st.integers(1, 8192))
def test_garbage_line_rejected_with_bounded_buffer(pattern: bytes, chunk_size: int) -> None:
    limits = HandshakeLimits()
    garbage = (pattern * ((1 << 20) // len(pattern) + 1))[: 1 << 20]
    for parser in (RequestParser(limits), ResponseParser(limits)):
        with pytest.raises(InvalidHandshake):
            for start in range(0, len(garbage), chunk_size):
                parser.feed(garbage[start : start + chunk_size])
                assert parser.buffered <= limits.max_line + 2
        # Rejected within the first max_line + 2 + chunk bytes, not at the end.
        assert start <= limits.max_line + 2 + chunk_size


def test_common_header_strings_are_shared_between_requests_and_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server keeps every request's headers: repeated names and values are one str, not one per connection."""
    from wsio.protocol import http11

    def request(origin: str) -> Request:
        head = f"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nOrigin: {origin}\r\nSec-WebSocket-Key: {origin}\r\n\r\n"
        result = RequestParser().feed(head.encode())
        assert result is not None
        return result

    monkeypatch.setattr(http11, "_NAMES", {})
    monkeypatch.setattr(http11, "_VALUES", {})
    first, second = request("https://a.example"), request("https://a.example")
    pairs = list(zip(first.headers.raw_items(), second.headers.raw_items()))
    for (name1, value1), (name2, value2) in pairs:
        assert name1 is name2
        assert (value1 is value2) == (name1 != "Sec-WebSocket-Key"), name1  # a key is never the same twice
    # Endless distinct values fill the table up to its bound, then are decoded as before.
    for i in range(http11._SHARED_MAX + 100):
        assert request(f"https://{i}.example").headers["Origin"] == f"https://{i}.example"
    assert len(http11._VALUES) == http11._SHARED_MAX


def test_a_long_header_name_and_many_distinct_names_parse_as_on_the_incremental_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names too long for the C path's shared tables, and tables that are full, change nothing but sharing."""
    from wsio.protocol import http11

    monkeypatch.setattr(http11, "_NAMES", {})
    monkeypatch.setattr(http11, "_LOWER_NAMES", {})
    long_name = b"X-" + b"Long" * 30
    for i in range(http11._SHARED_MAX + 50):
        head = b"GET /p HTTP/1.1\r\nHost: h\r\nX-Name-%d: %d\r\n%s: v\r\n\r\n" % (i, i, long_name)
        outcome = _outcome(RequestParser(), [head])
        assert outcome == _outcome(_IncrementalOnly(), [head])
        assert outcome[3][f"x-name-{i}"] == [str(i)]  # type: ignore[index]
    assert len(http11._NAMES) == http11._SHARED_MAX
    if http11.parse_request_head is not None:  # the C path shares the index's lower-case names too
        assert len(http11._LOWER_NAMES) == http11._SHARED_MAX
