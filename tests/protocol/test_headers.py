"""Tests for wsio.protocol.headers: WebSocket header values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsio.exceptions import InvalidHeader, InvalidHeaderFormat
from wsio.protocol.headers import (
    build_basic_auth,
    build_extension_header,
    build_subprotocol_list,
    is_token,
    parse_basic_auth,
    parse_connection,
    parse_extension_header,
    parse_subprotocol_list,
    parse_token_list,
    parse_upgrade,
)
from wsio.protocol.datastructures import Headers

# -- token lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        ("keep-alive,Upgrade", ["keep-alive", "Upgrade"]),
        ("  keep-alive \t,\t Upgrade  ", ["keep-alive", "Upgrade"]),
        (",Upgrade", ["Upgrade"]),
        ("Upgrade,", ["Upgrade"]),
        (", , a ,, b ,", ["a", "b"]),
    ],
)
def test_parse_token_list(value: str, expected: list[str]) -> None:
    assert parse_token_list("Connection", value) == expected


@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_parse_token_list_needs_one_element(value: str) -> None:
    with pytest.raises(InvalidHeaderFormat, match="expected at least one element"):
        parse_token_list("Connection", value)


@pytest.mark.parametrize(
    "value, pos, error",
    [
        ("a b", 2, "expected comma"),
        ("a, @", 3, "expected token"),
        ('"quoted"', 0, "expected token"),
        ("a;b", 1, "expected comma"),
    ],
)
def test_parse_token_list_errors(value: str, pos: int, error: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_token_list("X-Test", value)
    exc = excinfo.value
    assert isinstance(exc, InvalidHeader)
    assert exc.name == "X-Test"
    assert str(exc) == f"invalid X-Test header: {error} at {pos} in {value}"


def test_parse_connection() -> None:
    assert parse_connection("keep-alive, Upgrade") == ["keep-alive", "Upgrade"]
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_connection("Upgrade/1")
    assert excinfo.value.name == "Connection"


def test_parse_upgrade() -> None:
    assert parse_upgrade("websocket") == ["websocket"]
    assert parse_upgrade("HTTP/2.0, websocket, IRC/6.9") == ["HTTP/2.0", "websocket", "IRC/6.9"]
    for bad in ("websocket/", "/1", "a/b/c", "a b"):
        with pytest.raises(InvalidHeaderFormat) as excinfo:
            parse_upgrade(bad)
        assert excinfo.value.name == "Upgrade"


def test_repeated_header_lines_are_combined_by_callers() -> None:
    headers = Headers([("Connection", "keep-alive"), ("connection", "Upgrade")])
    assert parse_connection(", ".join(headers.get_all("Connection"))) == ["keep-alive", "Upgrade"]


# -- extensions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("foo", [("foo", [])]),
        ("foo, bar", [("foo", []), ("bar", [])]),
        (
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
            [
                (
                    "permessage-deflate",
                    [("client_max_window_bits", None), ("server_max_window_bits", "10")],
                )
            ],
        ),
        ('foo;x="10";y = 2 ;z', [("foo", [("x", "10"), ("y", "2"), ("z", None)])]),
        ('foo; x="a\\bc"', [("foo", [("x", "abc")])]),
        (
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            [("permessage-deflate", [("client_max_window_bits", None)]), ("permessage-deflate", [])],
        ),
        (",, foo ,", [("foo", [])]),
    ],
)
def test_parse_extension_header(value: str, expected: list) -> None:
    assert parse_extension_header(value) == expected


@pytest.mark.parametrize(
    "value, error",
    [
        ("", "expected at least one element"),
        ("foo;", "expected parameter name"),
        ("foo; =1", "expected parameter name"),
        ("foo; x=", "expected parameter value"),
        ('foo; x="a b"', "invalid quoted parameter value"),
        ('foo; x=""', "invalid quoted parameter value"),
        ('foo; x="unterminated', "expected quoted string"),
        ("foo bar", "expected comma"),
        ("; x", "expected extension name"),
    ],
)
def test_parse_extension_header_errors(value: str, error: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_extension_header(value)
    assert excinfo.value.name == "Sec-WebSocket-Extensions"
    assert error in str(excinfo.value)


def test_build_extension_header() -> None:
    value = build_extension_header(
        [
            ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
            ("x-foo", []),
        ]
    )
    assert value == ("permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-foo")


@pytest.mark.parametrize(
    "extensions",
    [[("bad name", [])], [("foo", [("bad name", None)])], [("foo", [("x", "a b")])]],
)
def test_build_extension_header_rejects_non_tokens(extensions: list) -> None:
    with pytest.raises(ValueError):
        build_extension_header(extensions)


# -- subprotocols ----------------------------------------------------------------------


def test_parse_subprotocol_list() -> None:
    assert parse_subprotocol_list("chat, superchat") == ["chat", "superchat"]
    assert parse_subprotocol_list("v1.chat.example.com") == ["v1.chat.example.com"]
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_subprotocol_list("chat/1")
    assert excinfo.value.name == "Sec-WebSocket-Protocol"


def test_build_subprotocol_list() -> None:
    assert build_subprotocol_list(["chat", "superchat"]) == "chat, superchat"
    with pytest.raises(ValueError, match="invalid subprotocol"):
        build_subprotocol_list(["chat room"])


# -- basic auth ---------------------------------------------------------------------------


def test_build_basic_auth_rfc7617_example() -> None:
    # RFC 7617 2: Aladdin / open sesame.
    assert build_basic_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_build_basic_auth_rejects_colon_in_username() -> None:
    with pytest.raises(ValueError, match="colon"):
        build_basic_auth("a:b", "c")


def test_parse_basic_auth() -> None:
    assert parse_basic_auth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == ("Aladdin", "open sesame")
    assert parse_basic_auth("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == ("Aladdin", "open sesame")
    assert parse_basic_auth(build_basic_auth("user", "pa:ss")) == ("user", "pa:ss")
    assert parse_basic_auth(build_basic_auth("tëst", "☃")) == ("tëst", "☃")


@pytest.mark.parametrize(
    "value, error",
    [
        ("Bearer abc", "unsupported auth scheme"),
        ("Basic", "expected space"),
        ("Basic ", "expected token68"),
        ("Basic a b", "expected token68"),
        ("Basic QWxhZGRpbg=", "invalid base64"),
        ("Basic QWxhZGRpbg==", "credentials without a colon"),
        ("Basic //8=", "invalid base64"),
        ("", "expected auth scheme"),
    ],
)
def test_parse_basic_auth_errors(value: str, error: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as excinfo:
        parse_basic_auth(value)
    assert excinfo.value.name == "Authorization"
    assert error in str(excinfo.value)


# -- properties -------------------------------------------------------------------------------

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=_TCHAR, min_size=1, max_size=12)
params = st.lists(st.tuples(tokens, st.none() | tokens), max_size=4)
extension_lists = st.lists(st.tuples(tokens, params), min_size=1, max_size=4)


def test_is_token() -> None:
    assert is_token("permessage-deflate")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token('"a"')


@given(extension_lists)
def test_extension_header_roundtrip(extensions: list) -> None:
    assert parse_extension_header(build_extension_header(extensions)) == extensions


@given(extension_lists)
def test_extension_header_quoted_values_are_unquoted(extensions: list) -> None:
    quoted = ", ".join("; ".join([name] + [p if v is None else f'{p}="{v}"' for p, v in ps]) for name, ps in extensions)
    assert parse_extension_header(quoted) == extensions


@given(st.lists(tokens, min_size=1, max_size=6))
def test_subprotocol_list_roundtrip(subprotocols: list[str]) -> None:
    assert parse_subprotocol_list(build_subprotocol_list(subprotocols)) == subprotocols


@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60))
def test_parsers_only_raise_invalid_header_format(value: str) -> None:
    for parse in (
        parse_connection,
        parse_upgrade,
        parse_extension_header,
        parse_subprotocol_list,
        parse_basic_auth,
    ):
        try:
            parse(value)
        except InvalidHeaderFormat:
            pass


@given(st.text(max_size=20).filter(lambda u: ":" not in u), st.text(max_size=20))
def test_basic_auth_roundtrip(username: str, password: str) -> None:
    assert parse_basic_auth(build_basic_auth(username, password)) == (username, password)
