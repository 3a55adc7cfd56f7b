"""The sans-I/O proxy rules: URIs, the environment, NO_PROXY, the CONNECT request and the proxy's answer."""

from __future__ import annotations

import base64

import pytest

from wsio.exceptions import InvalidProxy
from wsio.protocol.proxy import (
    PROXY_RESPONSE_LIMITS,
    ConnectTunnel,
    ProxyURI,
    parse_proxy_uri,
    proxy_bypassed,
    proxy_error_is_retryable,
    proxy_from_environment,
    select_proxy,
    socks_options,
)

# -- URIs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("http://proxy:3128", ProxyURI("http", "proxy", 3128)),
        ("http://proxy", ProxyURI("http", "proxy", 80)),
        ("proxy.corp:8080", ProxyURI("http", "proxy.corp", 8080)),
        ("HTTPS://Proxy.Corp", ProxyURI("https", "proxy.corp", 443)),
        ("socks5h://10.0.0.1", ProxyURI("socks5h", "10.0.0.1", 1080)),
        ("socks4a://[::1]:9050", ProxyURI("socks4a", "::1", 9050)),
        ("http://user:p%40ss%3Aw@proxy:1", ProxyURI("http", "proxy", 1, "user", "p@ss:w")),
        ("http://user@proxy:1/", ProxyURI("http", "proxy", 1, "user", None)),
    ],
)
def test_parse_proxy_uri(uri: str, expected: ProxyURI) -> None:
    assert parse_proxy_uri(uri) == expected


@pytest.mark.parametrize(
    "uri, message",
    [
        ("ftp://proxy:21", "unsupported proxy scheme"),
        ("http://", "no host"),
        ("http://proxy:99999", "invalid proxy URI"),
        ("http://proxy:3128/path", "no path"),
        ("http://user:secret@proxy:notaport", "invalid proxy URI"),
    ],
)
def test_parse_proxy_uri_rejects(uri: str, message: str) -> None:
    with pytest.raises(InvalidProxy, match=message) as info:
        parse_proxy_uri(uri)
    assert "secret" not in str(info.value) and "secret" not in repr(info.value.args)
    assert not proxy_error_is_retryable(info.value)


def test_password_never_shown() -> None:
    proxy = parse_proxy_uri("http://bob:TopSecret@proxy:3128")
    assert "TopSecret" not in repr(proxy)
    assert "TopSecret" not in str(proxy)
    assert proxy.redacted == "http://bob:***@proxy:3128"
    assert parse_proxy_uri("socks5://[::1]:1").redacted == "socks5://[::1]:1"


def test_flags() -> None:
    assert parse_proxy_uri("socks5://h").is_socks and not parse_proxy_uri("https://h").is_socks
    assert parse_proxy_uri("socks5h://h").remote_dns and not parse_proxy_uri("socks5://h").remote_dns
    assert parse_proxy_uri("socks4a://h").remote_dns and not parse_proxy_uri("socks4://h").remote_dns


def test_socks_options() -> None:
    from python_socks import ProxyType

    options = socks_options(parse_proxy_uri("socks5h://u:p@h:1"))
    assert options == dict(proxy_type=ProxyType.SOCKS5, host="h", port=1, username="u", password="p", rdns=True)
    assert socks_options(parse_proxy_uri("socks4://h"))["proxy_type"] is ProxyType.SOCKS4


# -- NO_PROXY ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host, port, no_proxy, bypassed",
    [
        ("example.com", 80, "*", True),
        ("example.com", 80, "", False),
        ("example.com", 80, None, False),
        ("example.com", 80, "example.com", True),
        ("api.example.com", 80, "example.com", True),
        ("api.example.com", 80, ".example.com", True),
        ("api.example.com", 80, "*.example.com", True),
        ("example.com", 80, ".example.com", True),
        ("badexample.com", 80, "example.com", False),
        ("EXAMPLE.com.", 80, "Example.COM", True),
        ("example.org", 80, "example.com, other.net", False),
        ("other.net", 80, "example.com, other.net", True),
        ("other.net", 80, "example.com other.net", True),
        ("example.com", 8080, "example.com:8080", True),
        ("example.com", 8081, "example.com:8080", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("127.0.0.1", 80, "127.0.0.1", True),
        ("127.0.0.1", 80, "127.0.0.2", False),
        ("::1", 80, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("::1", 80, "[::1]:443", False),
        ("fd00::5", 80, "fd00::/8", True),
        ("localhost", 80, "127.0.0.1", False),  # nothing is resolved
        ("1.0.0.1", 80, "0.0.1", False),  # an IP address is not a domain suffix
        ("example.com", 80, "example.com:notaport", True),
    ],
)
def test_proxy_bypassed(host: str, port: int, no_proxy: str | None, bypassed: bool) -> None:
    assert proxy_bypassed(host, port, no_proxy) is bypassed


# -- the environment -----------------------------------------------------------------------------------------


def test_environment_by_scheme() -> None:
    env = {"HTTP_PROXY": "http://plain:1", "HTTPS_PROXY": "http://secure:2"}
    assert proxy_from_environment(False, "h", 80, env) == "http://plain:1"
    assert proxy_from_environment(True, "h", 443, env) == "http://secure:2"


def test_environment_lowercase_wins_and_all_proxy_fallback() -> None:
    env = {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2", "ALL_PROXY": "socks5://all:3"}
    assert proxy_from_environment(False, "h", 80, env) == "http://lower:1"
    assert proxy_from_environment(True, "h", 443, env) == "socks5://all:3"
    assert proxy_from_environment(True, "h", 443, {"all_proxy": " "}) is None


def test_environment_no_proxy() -> None:
    env = {"HTTP_PROXY": "http://p:1", "no_proxy": "internal.corp"}
    assert proxy_from_environment(False, "ws.internal.corp", 80, env) is None
    assert proxy_from_environment(False, "ws.example.com", 80, env) == "http://p:1"


def test_environment_ignores_uppercase_http_proxy_in_cgi() -> None:
    # "httpoxy": in a CGI script, HTTP_PROXY may come from a request header.
    assert proxy_from_environment(False, "h", 80, {"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}) is None


def test_environment_default_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://from-env:8443")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert select_proxy(True, True, "h", 443) == ProxyURI("https", "from-env", 8443)


def test_select_proxy() -> None:
    env = {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}
    assert select_proxy(None, False, "h", 80, env) is None
    assert select_proxy(False, False, "h", 80, env) is None
    assert select_proxy(True, False, "h", 80, env) is None  # NO_PROXY=*
    assert select_proxy(True, False, "h", 80, {"HTTP_PROXY": "http://p:1"}) == ProxyURI("http", "p", 1)
    # An explicit proxy is used even for hosts in NO_PROXY.
    assert select_proxy("socks5://s:2", False, "h", 80, env) == ProxyURI("socks5", "s", 2)
    with pytest.raises(TypeError):
        select_proxy(3, False, "h", 80, env)  # type: ignore[arg-type]


# -- CONNECT ----------------------------------------------------------------------------------------------------


def test_connect_request() -> None:
    tunnel = ConnectTunnel(parse_proxy_uri("http://proxy:3128"), "example.com", 443, user_agent="wsio-test")
    assert tunnel.request() == (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: wsio-test\r\n\r\n")


def test_connect_request_ipv6_and_auth() -> None:
    tunnel = ConnectTunnel(parse_proxy_uri("http://us%C3%A9r:p%3Ass@proxy"), "::1", 8765)
    request = tunnel.request()
    assert request.startswith(b"CONNECT [::1]:8765 HTTP/1.1\r\nHost: [::1]:8765\r\n")
    credentials = base64.b64encode("usér:p:ss".encode()).decode()
    assert f"Proxy-Authorization: Basic {credentials}\r\n".encode() in request


def test_connect_request_idna() -> None:
    tunnel = ConnectTunnel(parse_proxy_uri("http://proxy"), "bücher.example", 80)
    assert tunnel.request().startswith(b"CONNECT xn--bcher-kva.example:80 ")


def test_connect_needs_http_proxy() -> None:
    with pytest.raises(ValueError):
        ConnectTunnel(parse_proxy_uri("socks5://proxy"), "h", 1)


def tunnel() -> ConnectTunnel:
    return ConnectTunnel(parse_proxy_uri("http://u:Secret9@proxy:3128"), "example.com", 443)


def test_answer_200_in_pieces() -> None:
    connect = tunnel()
    answer = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n"
    for byte in answer[:-1]:
        assert connect.receive_data(bytes([byte])) is None
    response = connect.receive_data(answer[-1:])
    assert response is not None and response.status_code == 200


def test_answer_200_http10_with_content_length_has_no_body() -> None:
    # RFC 9110 9.3.6: a 2xx to CONNECT has no body, whatever its headers say.
    response = tunnel().receive_data(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n")
    assert response is not None and response.status_code == 200


@pytest.mark.parametrize("status", [403, 407, 502, 503])
def test_refusal_carries_status(status: int) -> None:
    connect = tunnel()
    with pytest.raises(InvalidProxy) as info:
        connect.receive_data(f"HTTP/1.1 {status} No\r\nProxy-Authenticate: Basic realm=x\r\n\r\n<html>".encode())
    assert info.value.proxy_status == status
    assert "Secret9" not in str(info.value)
    assert proxy_error_is_retryable(info.value) is (status in (502, 503))
    if status == 407:
        assert "wrong user name or password" in str(info.value) and "Basic realm=x" in str(info.value)


def test_data_after_the_answer_is_refused() -> None:
    with pytest.raises(InvalidProxy, match="sent data"):
        tunnel().receive_data(b"HTTP/1.1 200 OK\r\n\r\nunexpected")


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
    ],
)
def test_malformed_answer(answer: bytes) -> None:
    with pytest.raises(InvalidProxy, match="invalid answer to CONNECT") as info:
        tunnel().receive_data(answer)
    assert info.value.proxy_status is None
    assert not proxy_error_is_retryable(info.value)


def test_endless_status_line() -> None:
    connect = tunnel()
    connect.receive_data(b"HTTP/1.1 200 ")
    with pytest.raises(InvalidProxy, match="invalid answer"):
        for _ in range(100):
            connect.receive_data(b"x" * 1000)
    assert connect._parser.buffered == 0


def test_too_many_headers() -> None:
    connect = tunnel()
    connect.receive_data(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(InvalidProxy, match="invalid answer"):
        for index in range(PROXY_RESPONSE_LIMITS.max_headers + 1):
            connect.receive_data(f"X-{index}: y\r\n".encode())


def test_oversized_head() -> None:
    connect = tunnel()
    connect.receive_data(b"HTTP/1.1 200 OK\r\n")
    header = b"X-Big: " + b"y" * 4000 + b"\r\n"
    with pytest.raises(InvalidProxy, match="invalid answer"):
        for _ in range(PROXY_RESPONSE_LIMITS.max_size // len(header) + 2):
            connect.receive_data(header)


def test_eof_before_answer() -> None:
    connect = tunnel()
    connect.receive_data(b"HTTP/1.1 200")
    with pytest.raises(InvalidProxy, match="closed the connection") as info:
        connect.receive_eof()
    assert isinstance(info.value.__cause__, EOFError)
    assert proxy_error_is_retryable(info.value)


def test_errors_are_sticky() -> None:
    connect = tunnel()
    with pytest.raises(InvalidProxy):
        connect.receive_data(b"garbage\r\n")
    with pytest.raises(InvalidProxy):
        connect.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
