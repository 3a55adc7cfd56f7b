"""asyncio transports through a proxy, for the asyncio client; the rules live in :mod:`wsio.protocol.proxy`."""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module

from ..exceptions import InvalidProxy
from ..protocol.http11 import Response
from ..protocol.proxy import ConnectTunnel, ProxyURI, import_python_socks, socks_error, socks_options

__all__ = ["open_http_tunnel", "open_socks_socket"]


class _TunnelProtocol(asyncio.Protocol):
    """Sends CONNECT and waits for the answer; the WebSocket connection takes the transport over after."""

    def __init__(self, tunnel: ConnectTunnel, answer: asyncio.Future[Response]) -> None:
        self.tunnel = tunnel
        self.answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.tunnel.request())  # type: ignore[attr-defined]  # a TCP connection's: a Transport

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return  # nothing is expected before the WebSocket request; the parser rejects it
        try:
            response = self.tunnel.receive_data(data)
        except InvalidProxy as exc:
            self.answer.set_exception(exc)
            return
        if response is not None:
            self.answer.set_result(response)

    def eof_received(self) -> bool:
        if not self.answer.done():
            try:
                self.tunnel.receive_eof()
            except InvalidProxy as exc:
                self.answer.set_exception(exc)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            error = InvalidProxy(self.tunnel.proxy.redacted, f"connection to the proxy lost: {exc or 'EOF'}")
            error.__cause__ = exc or EOFError()
            self.answer.set_exception(error)


async def open_http_tunnel(
    proxy: ProxyURI,
    host: str,
    port: int,
    *,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    user_agent: str | None = None,
    local_addr: tuple[str, int] | None = None,
) -> asyncio.Transport:
    """Return a transport whose bytes reach ``host:port`` through an HTTP(S) CONNECT proxy.

    For an https:// proxy the transport is TLS to the proxy (``proxy_ssl``,
    default: a verifying default context; the name checked in its
    certificate and sent in SNI is ``proxy_server_hostname``, default the
    proxy URI's host); TLS to the server, if any, goes
    on top with :meth:`asyncio.loop.start_tls`. The caller bounds the time.

    Raises :class:`InvalidProxy`: unreachable (``OSError`` as ``__cause__``),
    refused (``proxy_status``), or a malformed answer.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Response] = loop.create_future()
    context = None
    if proxy.scheme == "https":
        context = proxy_ssl or ssl_module.create_default_context()
    try:
        transport, _ = await loop.create_connection(
            lambda: _TunnelProtocol(ConnectTunnel(proxy, host, port, user_agent), answer),
            proxy.host,
            proxy.port,
            ssl=context,
            server_hostname=(proxy_server_hostname or proxy.host) if context is not None else None,
            local_addr=local_addr,
        )
    except OSError as exc:  # ssl.SSLError included
        raise InvalidProxy(proxy.redacted, f"can't connect to the proxy: {exc}") from exc
    try:
        await answer
    except BaseException:
        transport.abort()
        raise
    return transport


async def open_socks_socket(proxy: ProxyURI, host: str, port: int, *, local_addr: tuple[str, int] | None = None) -> socket.socket:
    """Return a non-blocking socket connected to ``host:port`` through a SOCKS proxy (python-socks).

    Raises :class:`ImportError` without python-socks, :class:`InvalidProxy` if the proxy fails.
    """
    asyncio_socks = import_python_socks("async_.asyncio")
    python_socks = import_python_socks("")
    socks_proxy = asyncio_socks.Proxy(**socks_options(proxy), loop=asyncio.get_running_loop())
    try:
        # The caller's open_timeout bounds the whole; python-socks wants a number.
        sock: socket.socket = await socks_proxy.connect(host, port, timeout=3600, local_addr=local_addr)
    except (python_socks.ProxyError, python_socks.ProxyConnectionError, OSError) as exc:
        raise socks_error(proxy, exc) from exc
    return sock
