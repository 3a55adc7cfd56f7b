"""WebSocket URIs (wsio.protocol.uri): what parses, what doesn't and why, and that whatever parses makes a valid request."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsio.exceptions import InvalidURI
from wsio.protocol.handshake import client_request
from wsio.protocol.http11 import RequestParser
from wsio.protocol.uri import WebSocketURI, parse_uri

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class TestParseUri:
    @pytest.mark.parametrize(
        "uri, expected",
        [
            ("ws://localhost/", WebSocketURI(False, "localhost", 80, "/", "")),
            ("wss://localhost/", WebSocketURI(True, "localhost", 443, "/", "")),
            ("ws://localhost", WebSocketURI(False, "localhost", 80, "/", "")),
            ("ws://localhost:8765/a/b?c=d&e", WebSocketURI(False, "localhost", 8765, "/a/b", "c=d&e")),
            ("WS://LocalHost/", WebSocketURI(False, "localhost", 80, "/", "")),
            ("ws://localhost?x", WebSocketURI(False, "localhost", 80, "/", "x")),
            ("ws://[::1]:9/", WebSocketURI(False, "::1", 9, "/", "")),
            ("ws://u:p@h/", WebSocketURI(False, "h", 80, "/", "", "u", "p")),
            ("ws://u%40x:p%3Aw@h/", WebSocketURI(False, "h", 80, "/", "", "u@x", "p:w")),
            ("ws://bücher.example/", WebSocketURI(False, "xn--bcher-kva.example", 80, "/", "")),
            ("ws://h/a b", WebSocketURI(False, "h", 80, "/a%20b", "")),
            ("ws://h/caf\u00e9?q=\u00e9", WebSocketURI(False, "h", 80, "/caf%C3%A9", "q=%C3%A9")),
            ("ws://h/a%20b?x=%2F", WebSocketURI(False, "h", 80, "/a%20b", "x=%2F")),
            ('ws://h/a"<>{}', WebSocketURI(False, "h", 80, "/a%22%3C%3E%7B%7D", "")),
            ("ws://h/p:@!$&'()*+,;=?/?", WebSocketURI(False, "h", 80, "/p:@!$&'()*+,;=", "/?")),
        ],
    )
    def test_valid(self, uri: str, expected: WebSocketURI) -> None:
        assert parse_uri(uri) == expected

    @pytest.mark.parametrize(
        "uri, reason",
        [
            ("http://localhost/", "scheme"),
            ("localhost/", "scheme"),
            ("ws:///path", "hostname"),
            ("ws://", "hostname"),
            ("ws://localhost/#frag", "fragment"),
            ("ws://localhost/#", "fragment"),
            ("ws://localhost:port/", "port"),
            ("ws://localhost:70000/", "port"),
            ("ws://localhost:0/", "port"),
            ("ws://[::1/", ""),
            ("ws://[zz::1]/", "IPv6"),
            ("ws://exa mple.com/", "hostname"),
            ("ws://exa<mple.com/", "hostname"),
        ],
    )
    def test_invalid(self, uri: str, reason: str) -> None:
        with pytest.raises(InvalidURI) as excinfo:
            parse_uri(uri)
        assert excinfo.value.uri == uri
        assert reason in str(excinfo.value)
        assert "isn't a valid WebSocket URI" in str(excinfo.value)

    def test_resource_name_and_user_info(self) -> None:
        uri = parse_uri("ws://user@h/x?y")
        assert uri.resource_name == "/x?y"
        assert uri.user_info == ("user", "")
        assert parse_uri("ws://h").resource_name == "/"
        assert parse_uri("ws://h").user_info is None
        assert WebSocketURI(False, "h", 80, "", "").resource_name == "/"


_uri_text = st.text(alphabet=st.sampled_from("ws:/[]@?#%.:aZ09é ☃\t\n-_~!$&'()*+,;=\"<>{}|\\^`"), max_size=40)


@given(
    st.one_of(
        st.text(max_size=60),
        st.tuples(st.sampled_from(["ws://", "wss://", "WS://"]), _uri_text).map("".join),
    )
)
def test_parse_uri_only_raises_invalid_uri(uri: str) -> None:
    try:
        parsed = parse_uri(uri)
    except InvalidURI:
        return
    # Whatever parses yields a request line our own server accepts.
    request = client_request(parsed, key=KEY)
    assert RequestParser().feed(request.serialize()) == request
