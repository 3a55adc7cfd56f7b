"""Helpers for the wsio.sync tests: servers in threads, self-signed certificates, raw peers."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any, Callable, Iterator

from tests.helpers import self_signed_cert  # noqa: F401  (the sync tests import it from here)
from wsio.sync import Server, serve


@contextlib.contextmanager
def run_server(handler: Callable[..., Any], **kwargs: Any) -> Iterator[Server]:
    """A wsio.sync server on 127.0.0.1 serving in a thread; shut down on exit."""
    server = serve(handler, "127.0.0.1", 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown(timeout=10)
        thread.join(10)
        server.__exit__(None, None, None)


def uri(server: Server, path: str = "/", scheme: str = "ws") -> str:
    host, port = server.socket.getsockname()[:2]
    return f"{scheme}://{host}:{port}{path}"


def echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


def server_ssl_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@contextlib.contextmanager
def raw_server(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 whose connections ``behaviour`` handles; yield its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    threads = []

    def accept_loop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            thread = threading.Thread(target=behaviour, args=(sock,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()


def handshake_then(action: Callable[[socket.socket, Any], None]) -> Callable[[socket.socket], None]:
    """A raw peer: accept the WebSocket handshake with the sans-I/O core, then run ``action(sock, protocol)``."""
    from wsio.protocol import ServerProtocol

    def behaviour(sock: socket.socket) -> None:
        protocol = ServerProtocol()
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                events = protocol.receive_data(data)
                if events:
                    break
            protocol.send_response(protocol.accept(events[0]))
            sock.sendall(protocol.data_to_send())
            action(sock, protocol)
        except OSError:
            pass
        finally:
            sock.close()

    return behaviour


__all__ = ["run_server", "uri", "echo", "self_signed_cert", "server_ssl_context", "raw_server", "handshake_then"]
