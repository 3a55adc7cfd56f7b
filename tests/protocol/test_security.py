"""Security rules of the sans-I/O layer: response splitting, secrets in error texts, redirects."""

from __future__ import annotations

import http

import pytest

from wsio.exceptions import InvalidHandshake, InvalidHeaderFormat, InvalidHeaderValue, InvalidURI, RedirectError
from wsio.protocol.handshake import (
    Redirect,
    follow_redirect,
    handshake_error_response,
    parse_uri,
    redact_path,
    redact_uri,
)
from wsio.protocol.headers import parse_basic_auth
from wsio.protocol.http11 import Headers, Request, RequestParser, Response

HEAD = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def request_error(data: bytes) -> InvalidHandshake:
    with pytest.raises(InvalidHandshake) as excinfo:
        RequestParser().feed(data)
    return excinfo.value


# -- response splitting ---------------------------------------------------------------


@pytest.mark.parametrize("reason", ["OK\r\nSet-Cookie: evil=1", "OK\nSet-Cookie: evil=1", "OK\rX", "O\x00K", "OK\x7f"])
def test_reason_phrase_with_control_characters_is_refused(reason: str) -> None:
    with pytest.raises(ValueError, match="reason phrase can't contain CR, LF"):
        Response(200, reason, Headers())


def test_reason_phrase_set_later_is_refused_too() -> None:
    response = Response(200, "OK", Headers())
    with pytest.raises(ValueError, match="reason phrase"):
        response.reason_phrase = "OK\r\nSet-Cookie: evil=1"
    assert response.serialize() == b"HTTP/1.1 200 OK\r\n\r\n"


@pytest.mark.parametrize("status", ["200 OK\r\nSet-Cookie: evil=1", 99, 1000, True, 200.0])
def test_status_code_must_be_a_three_digit_integer(status: object) -> None:
    with pytest.raises(ValueError, match="invalid HTTP status code"):
        Response(status, "OK", Headers())  # type: ignore[arg-type]


def test_valid_reason_phrases_and_statuses_still_serialize() -> None:
    assert Response(http.HTTPStatus.OK, "Fine\tthanks", Headers()).serialize() == b"HTTP/1.1 200 Fine\tthanks\r\n\r\n"
    assert Response(599, "", Headers()).serialize() == b"HTTP/1.1 599 \r\n\r\n"
    assert Response(200, "Swïtching", Headers()).serialize() == "HTTP/1.1 200 Swïtching\r\n\r\n".encode("latin-1")
    with pytest.raises(ValueError, match="ISO-8859-1"):
        Response(200, "€", Headers())


@pytest.mark.parametrize(
    "fields", [{"path": "/x\r\nX-Evil: 1"}, {"path": "/a b"}, {"path": ""}, {"method": "GET\r\n"}, {"version": "HTTP/1.1\n"}]
)
def test_request_line_with_spaces_or_control_characters_is_refused(fields: dict[str, str]) -> None:
    arguments = {"path": "/", **fields}
    with pytest.raises(ValueError, match="invalid request"):
        Request(headers=Headers(), **arguments)


# -- header values never echoed -----------------------------------------------------------


def test_header_value_error_names_the_header_and_character_not_the_value() -> None:
    with pytest.raises(ValueError) as excinfo:
        Headers({"Authorization": "Bearer SECRET\r\nX-Evil: 1"})
    text = str(excinfo.value)
    assert "Authorization" in text and "'\\r' at position 13" in text
    assert "SECRET" not in text


def test_header_value_outside_latin1_error_hides_the_value() -> None:
    with pytest.raises(ValueError) as excinfo:
        Headers({"X-Api-Key": "SECRET€"})
    assert "X-Api-Key" in str(excinfo.value) and "SECRET" not in str(excinfo.value)


@pytest.mark.parametrize("line", [b"Authorization: Bearer SECRET\x01", b"Cookie: session=SECRET\x7f"])
def test_malformed_credentials_are_named_not_echoed(line: bytes) -> None:
    exc = request_error(HEAD + line + b"\r\n\r\n")
    assert exc.status == 400
    name = line.split(b":")[0].decode()
    assert f"invalid character in {name} header value" in str(exc)
    body = handshake_error_response(exc).serialize()
    assert b"SECRET" not in body and "SECRET" not in str(exc)
    assert name.encode() in body


def test_header_line_without_colon_is_not_echoed() -> None:
    exc = request_error(HEAD + b"Authorization Bearer SECRET\r\n\r\n")
    assert "without colon" in str(exc) and "SECRET" not in str(exc)


def test_request_line_errors_hide_the_query() -> None:
    exc = request_error(b"GET /chat?token=SECRET HTTP/1.1 extra\r\n\r\n")
    assert "invalid request line" in str(exc) and "/chat?***" in str(exc)
    assert "SECRET" not in str(exc)
    exc = request_error(b"GET chat?token=SECRET HTTP/1.1\r\n\r\n")
    assert "invalid request target" in str(exc) and "SECRET" not in str(exc)


def test_invalid_credential_headers_hide_their_value() -> None:
    exc = InvalidHeaderValue("Authorization", "Bearer SECRET")
    assert str(exc) == "invalid Authorization header (value not shown)"
    assert "SECRET" not in repr(exc) and exc.value == "Bearer SECRET"
    assert str(InvalidHeaderValue("Sec-WebSocket-Version", "8")) == "invalid Sec-WebSocket-Version header: 8"
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_basic_auth("Basic SECRET!!")
    assert str(excinfo.value) == "invalid Authorization header: expected token68 at 6"
    assert "SECRET" not in repr(excinfo.value)


# -- redaction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("ws://user:secret@host/", "ws://user:***@host/"),
        ("wss://user:secret@host:8443/chat?token=secret&room=1", "wss://user:***@host:8443/chat?token=***&room=***"),
        ("ws://user@host/", "ws://user@host/"),
        ("ws://host/?secret", "ws://host/?***"),
        ("ws://host/?a=&b=secret", "ws://host/?a=&b=***"),
        ("ws://u:sec%40ret@[::1]:9/", "ws://u:***@[::1]:9/"),
        # Malformed: a password with an unescaped / or # still doesn't show.
        ("ws://user:sec/ret@host/", "ws://user:***@host/"),
        ("ws://user:sec#ret@host", "ws://user:***@host"),
        ("ws://user:secret@host:port/", "ws://user:***@host:port/"),
        ("ws://host/", "ws://host/"),
    ],
)
def test_redact_uri(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


@pytest.mark.parametrize(
    ("path", "redacted"),
    [
        ("/", "/"),
        ("/chat", "/chat"),
        ("/chat?token=SECRET", "/chat?token=***"),
        ("/chat?token=SECRET&room=1", "/chat?token=***&room=***"),
        ("/chat?SECRET", "/chat?***"),
        ("ws://user:secret@host/x?t=SECRET", "ws://user:***@host/x?t=***"),
    ],
)
def test_redact_path(path: str, redacted: str) -> None:
    assert redact_path(path) == redacted


def test_invalid_uri_text_hides_the_password() -> None:
    with pytest.raises(InvalidURI) as excinfo:
        parse_uri("ws://user:secret@host:notaport/?token=secret")
    assert "secret" not in str(excinfo.value) and "secret" not in repr(excinfo.value)
    assert str(excinfo.value).startswith("ws://user:***@host:notaport/?token=*** isn't a valid WebSocket URI")
    assert excinfo.value.uri == "ws://user:secret@host:notaport/?token=secret"


# -- redirects ------------------------------------------------------------------------------


def redirect(
    location: str, status: int = 302, uri: str = "ws://user:secret@127.0.0.1:8000/start", pinned: str | None = None
) -> Redirect | None:
    response = Response.from_status(status, headers={"Location": location})
    return follow_redirect(uri, parse_uri(uri), response, origin=parse_uri(uri), pinned=pinned)


def test_not_a_redirect() -> None:
    assert redirect("/x", status=200) is None
    response = Response.from_status(302)
    assert follow_redirect("ws://h/", parse_uri("ws://h/"), response, origin=parse_uri("ws://h/")) is None


def test_relative_redirect_keeps_the_origin_and_credentials() -> None:
    result = redirect("/next")
    assert result is not None and result.same_origin
    assert result.wsuri.path == "/next" and result.wsuri.user_info == ("user", "secret")


def test_absolute_redirect_on_the_same_origin_keeps_the_user_info() -> None:
    result = redirect("ws://127.0.0.1:8000/next")
    assert result is not None and result.same_origin
    assert result.wsuri.user_info == ("user", "secret")


@pytest.mark.parametrize(
    "location", ["ws://localhost:8000/", "ws://127.0.0.1:8001/", "wss://127.0.0.1:8000/", "//127.0.0.2:8000/"]
)
def test_another_scheme_host_or_port_is_another_origin_without_credentials(location: str) -> None:
    result = redirect(location)
    assert result is not None and not result.same_origin
    assert result.wsuri.user_info is None


def test_another_origin_is_refused_when_the_caller_pinned_where_to_connect() -> None:
    with pytest.raises(RedirectError, match="connect\\(\\) was given host="):
        redirect("ws://localhost:8000/", pinned="host=")
    result = redirect("/same", pinned="host=")
    assert result is not None and result.same_origin


def test_tls_downgrade_and_invalid_locations_are_refused_without_secrets() -> None:
    with pytest.raises(RedirectError, match="wss:// to ws://") as excinfo:
        redirect("ws://127.0.0.1:8000/?token=SECRET", uri="wss://user:secret@127.0.0.1:8000/")
    assert "SECRET" not in str(excinfo.value)
    with pytest.raises(RedirectError, match="invalid URI") as excinfo:
        redirect("http://user:secret@example.com/")
    assert "secret" not in str(excinfo.value)


def test_two_location_headers_are_refused() -> None:
    response = Response.from_status(302, headers=[("Location", "/a"), ("Location", "ws://elsewhere/")])
    with pytest.raises(RedirectError, match="2 Location headers"):
        follow_redirect("ws://h/", parse_uri("ws://h/"), response, origin=parse_uri("ws://h/"))
