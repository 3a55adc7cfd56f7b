"""The ``wsio`` command: a client for the terminal and for scripts, and quick servers.

::

    wsio ws://localhost:8765              # type lines to send; received messages print with "< "
    echo hello | wsio ws://localhost:8765 # not a terminal: send each line, print the replies, exit
    wsio --trace ws://localhost:8765      # also show the handshake and every frame on stderr
    wsio serve --echo 8765                # an echo server, for a quick test
    wsio serve app:handler --port 8765 --workers 4 --origin https://example.com
    wsio serve app:handler --ssl-certfile cert.pem --ssl-keyfile key.pem --log-level info

On exit the client prints the close code and why the connection closed, on
stderr; received messages go to stdout. ``wsio serve`` prints one line per
listening socket on stdout, ``listening on ws://127.0.0.1:8765/`` (``wss://``
with a certificate), once it accepts connections; its logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import socket
import ssl
import sys
import threading
import urllib.parse
from typing import Any, Sequence, TextIO

from . import version

__all__ = ["main", "build_parser", "build_serve_parser", "echo", "DEFAULT_EOF_WAIT"]

#: With piped input, after the input ends: seconds to wait for more messages
#: (counted from the end of the input or the last message received, whichever
#: is later) before closing, unless the server closes first.
DEFAULT_EOF_WAIT = 2.0

#: Trace mode: how much of a message the preview shows.
PREVIEW_CHARS = 60

#: Trace mode: headers whose values are never shown (also any header whose name
#: contains one of SECRET_WORDS).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey")

#: ``wsio serve --log-level``: the choices, and the format of the lines on stderr
#: (workers of ``--workers N`` add ``worker-N`` after the time).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Where `wsio serve` finds an encrypted key's password unless --ssl-keyfile-password gives it.
KEYFILE_PASSWORD_ENV = "WSIO_SSL_KEYFILE_PASSWORD"


def _version_text() -> str:
    from .protocol.frames import SPEEDUPS

    python = ".".join(map(str, sys.version_info[:3]))
    return f"wsio {version} (Python {python}, C speedups {'on' if SPEEDUPS else 'off'})"


# -- options ------------------------------------------------------------------------------------


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _parse_origin(text: str) -> str:
    """An Origin as browsers send it: ``scheme://host[:port]``, nothing after."""
    parts = urllib.parse.urlsplit(text)
    if text != "null" and (not parts.scheme or not parts.netloc or parts.path or parts.query or parts.fragment):
        raise argparse.ArgumentTypeError(
            f"expected an origin such as https://example.com or http://localhost:8080 "
            f"(scheme://host[:port], no path, not even '/'), got {text!r}"
        )
    return text


def _parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, or inf, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The client's options: ``wsio URI [options]``."""
    parser = argparse.ArgumentParser(
        prog="wsio",
        description=f"WebSocket client (wsio {version}); 'wsio serve --help' for servers.",
        epilog=(
            "With a terminal, type lines to send them; Ctrl-D closes. With piped input, every "
            "line is sent, then the client waits for the replies (see --eof-wait) and closes. "
            "Received messages print on stdout as '< message'; everything else goes to stderr. "
            "Exit status: 0 after a normal closure (1000 or 1001), 1 otherwise."
        ),
    )
    parser.add_argument("uri", help="ws:// or wss:// URI to connect to (ws://user:password@host/ sends Basic auth)")
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument(
        "--header", "-H", action="append", type=_parse_header, default=[], metavar="'NAME: VALUE'",
        help="add a header to the opening handshake; repeatable",
    )  # fmt: skip
    parser.add_argument("--origin", type=_parse_origin, help="send this Origin header, as a browser would (default: none)")
    parser.add_argument("--subprotocol", action="append", default=[], help="subprotocol to offer; repeatable")
    parser.add_argument(
        "--eof-wait", type=_parse_seconds, default=DEFAULT_EOF_WAIT, metavar="SECONDS",
        help="with piped input, once it ends: close after SECONDS without a message, unless the "
        f"server closes first; 'inf' waits for the server (default: {DEFAULT_EOF_WAIT:g})",
    )  # fmt: skip
    parser.add_argument(
        "--trace", "-v", action="store_true",
        help="show the handshake and every frame on stderr (secrets in headers and URI redacted)",
    )  # fmt: skip
    parser.add_argument("--insecure", "-k", action="store_true", help="don't verify the TLS certificate")
    parser.add_argument("--proxy", help="proxy URI (http://, https://, socks5://); default: from the environment")
    parser.add_argument("--no-proxy", action="store_true", help="ignore HTTP_PROXY / HTTPS_PROXY")
    parser.add_argument("--no-compression", action="store_true", help="don't offer permessage-deflate")
    parser.add_argument(
        "--ping-interval", type=float, default=20.0, help="keepalive ping interval in s, 0 disables (default: 20)"
    )
    return parser


def build_serve_parser() -> argparse.ArgumentParser:
    """The servers' options: ``wsio serve ...``."""
    parser = argparse.ArgumentParser(
        prog="wsio serve",
        description="Run a WebSocket server until Ctrl-C or SIGTERM.",
        epilog=(
            "TARGET is module:attribute, e.g. app:handler for 'async def handler(websocket)' in "
            "app.py; the module is looked for in --app-dir first. Once the server accepts "
            "connections, it prints one line per listening socket on stdout: "
            "'listening on ws://127.0.0.1:8765/', or wss:// with --ssl-certfile. Logs and "
            "errors go to stderr."
        ),
    )
    parser.add_argument("target", nargs="?", help="the handler to serve, as module:attribute")
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument("--echo", type=int, metavar="PORT", help="serve an echo server on PORT (0 picks a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on, 0 picks a free one (default: 8765)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (default: 1)")
    parser.add_argument(
        "--app-dir", default=".", metavar="DIR",
        help="directory to import TARGET's module from, before the Python path (default: the current directory)",
    )  # fmt: skip
    parser.add_argument(
        "--origin", action="append", type=_parse_origin, default=[], metavar="ORIGIN",
        help="accept only handshakes whose Origin header is ORIGIN (e.g. https://example.com); "
        "repeatable; others get 403. Defends servers that authenticate with cookies against "
        "cross-site WebSocket hijacking. Default: any origin",
    )  # fmt: skip
    parser.add_argument(
        "--allow-no-origin", action="store_true",
        help="with --origin, also accept handshakes without an Origin header (non-browser clients)",
    )  # fmt: skip
    parser.add_argument(
        "--ssl-certfile", "--certfile", metavar="PATH",
        help="serve wss://: the PEM file of the server's certificate (then the intermediate "
        "ones), with its private key unless --ssl-keyfile gives it (default: no TLS)",
    )  # fmt: skip
    parser.add_argument(
        "--ssl-keyfile", "--keyfile", metavar="PATH",
        help="the PEM file of the certificate's private key (default: in --ssl-certfile)",
    )  # fmt: skip
    parser.add_argument(
        "--ssl-keyfile-password", metavar="PASSWORD", default=os.environ.get(KEYFILE_PASSWORD_ENV) or None,
        help="the password of an encrypted private key; other users may see a command line, so "
        f"prefer the {KEYFILE_PASSWORD_ENV} environment variable (default: that variable if set and not empty)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, metavar="LEVEL",
        help=f"log at LEVEL and above on stderr, with the time, level and logger: {', '.join(LOG_LEVELS)}; "
        "info shows every connection opened, closed or refused (default: not set up: only Python's "
        "bare warnings and errors)",
    )  # fmt: skip
    return parser


# -- the client ---------------------------------------------------------------------------------


def _redact_uri(uri: str) -> str:
    """``uri`` with ``***`` in place of a password, for messages and traces."""
    try:
        parts = urllib.parse.urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if password is None:
        return uri
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _hide_password(text: str, uri: str) -> str:
    """Remove the password of ``uri`` from ``text`` (an error message may quote it)."""
    try:
        password = urllib.parse.urlsplit(uri).password
    except ValueError:
        return text
    if password:
        for form in {password, urllib.parse.unquote(password)}:
            text = text.replace(form, "***")
    return text


def _preview(data: Any) -> str:
    """The start of a message, for traces: ``'hello'`` or ``b'\\x00\\x01'...`` with its size."""
    if isinstance(data, str):
        if len(data) <= PREVIEW_CHARS:
            return repr(data)
        return f"{data[:PREVIEW_CHARS]!r}... ({len(data)} characters)"
    data = bytes(data)
    if len(data) <= PREVIEW_CHARS // 2:
        return repr(data)
    return f"{data[: PREVIEW_CHARS // 2]!r}... ({len(data)} bytes)"


class _TraceFormatter(logging.Formatter):
    """Frame lines of the core as they are (``> TEXT fin [5 bytes]``); other lines after ``* ``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno == logging.DEBUG else f"* {message}"


class Trace:
    """``--trace``: the opening handshake and the frames, on ``stream``.

    Frame lines come from the core's DEBUG logging (type, flags, size) through
    a logger of their own, so none of this costs anything without ``--trace``;
    the handshake heads and message previews come from a connection subclass
    used only then.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.logger = logging.getLogger("wsio.cli.trace")
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_TraceFormatter())
        self.logger.handlers[:] = [handler]

    def note(self, text: str) -> None:
        print(f"* {text}", file=self.stream, flush=True)

    def head(self, prefix: str, data: bytes) -> None:
        """An HTTP head, one line per line, with secrets hidden."""
        text = data.decode("iso-8859-1")
        head = text.split("\r\n\r\n", 1)[0]
        for line in head.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep and " " not in name and _is_secret(name):
                value = value.strip()
                scheme = value.split(" ", 1)[0] + " " if name.lower().endswith("authorization") and " " in value else ""
                line = f"{name}: {scheme}[redacted]"
            print(f"{prefix} {line}", file=self.stream)
        print(prefix, file=self.stream, flush=True)

    def message(self, prefix: str, data: Any) -> None:
        print(f"{prefix}   {_preview(data)}", file=self.stream, flush=True)

    def connection_class(self) -> type:
        """A client connection that shows its handshake and the messages it receives."""
        from .asyncio.client import ClientConnection
        from .protocol.events import Event, Fragment, Ping, Pong
        from .protocol.http11 import Response

        trace = self

        class TracingClientConnection(ClientConnection):
            __slots__ = ()

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                request = self.request
                if request is not None:
                    trace.head(">", request.serialize())

            def _handle_events(self, events: list[Event]) -> None:
                for event in events:  # isinstance, not type() once: a trace is not a hot path
                    if isinstance(event, (str, bytes)):
                        trace.message("<", event)
                    elif isinstance(event, (Fragment, Ping, Pong)):
                        if event.data:
                            trace.message("<", event.data)
                    elif isinstance(event, Response):
                        response = Response(event.status_code, event.reason_phrase, event.headers)
                        trace.head("<", response.serialize())
                        if event.body:
                            trace.message("<", event.body.decode("utf-8", "replace"))
                super()._handle_events(events)

        return TracingClientConnection


def _is_secret(name: str) -> bool:
    lower = name.strip().lower()
    return lower in SECRET_HEADERS or any(word in lower for word in SECRET_WORDS)


def _start_reading_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread (it never keeps the program alive); ``None`` at EOF."""

    def put(item: str | None) -> None:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, item)
        except RuntimeError:  # the loop is closed: the client is done
            pass

    def read() -> None:
        try:
            for line in iter(sys.stdin.readline, ""):
                put(line)
        except (OSError, ValueError):
            pass
        put(None)

    threading.Thread(target=read, name="wsio-stdin", daemon=True).start()


async def _client(args: argparse.Namespace) -> int:
    from .asyncio.client import connect
    from .exceptions import ConnectionClosed, InvalidStatus

    shown = _redact_uri(args.uri)
    options: dict[str, Any] = {
        "additional_headers": args.header or None,
        "subprotocols": args.subprotocol or None,
        "compression": None if args.no_compression else "deflate",
        "ping_interval": args.ping_interval or None,
        "origin": args.origin,
    }
    if args.insecure and args.uri.startswith("wss:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        options["ssl"] = context
    if args.proxy is not None:
        options["proxy"] = args.proxy
    elif args.no_proxy:
        options["proxy"] = None
    trace: Trace | None = None
    if args.trace:
        trace = Trace(sys.stderr)
        options["logger"] = trace.logger
        options["create_connection"] = trace.connection_class()
        trace.note(f"connecting to {shown}")

    interactive = sys.stdin.isatty()
    try:
        websocket = await connect(args.uri, **options)
    except Exception as exc:
        hint = ""
        if isinstance(exc, InvalidStatus) and exc.status_code == 403 and args.origin is None:
            hint = " (if the server accepts only some origins, give one with --origin)"
        print(f"Failed to connect to {shown}: {_hide_password(str(exc), args.uri)}{hint}", file=sys.stderr)
        return 1
    if interactive:
        print(f"Connected to {shown}. Type a message and press Enter; Ctrl-D to close.", file=sys.stderr)

    loop = asyncio.get_running_loop()
    last_message = loop.time()

    async def printer() -> None:
        nonlocal last_message
        async for message in websocket:
            last_message = loop.time()
            text = message if isinstance(message, str) else f"(binary) {message.hex()}"
            print(f"< {text}", flush=True)

    lines: asyncio.Queue[str | None] = asyncio.Queue()
    _start_reading_stdin(loop, lines)
    receiving = asyncio.ensure_future(printer())
    try:
        input_ended = False
        while not receiving.done():
            getting = asyncio.ensure_future(lines.get())
            await asyncio.wait({getting, receiving}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()  # the server closed
                break
            line = getting.result()
            if line is None:
                input_ended = True
                break
            message = line[:-1] if line.endswith("\n") else line
            try:
                await websocket.send(message)
            except ConnectionClosed:
                break
            if trace is not None:
                trace.message(">", message)
        if input_ended and not interactive:
            # Wait for the replies: until args.eof_wait seconds pass without
            # a message, or the server closes.
            last_message = loop.time()
            while not receiving.done():
                left = args.eof_wait - (loop.time() - last_message)
                if left <= 0:
                    break
                await asyncio.wait({receiving}, timeout=None if left == float("inf") else left)
        await websocket.close()
        try:
            await receiving
        except ConnectionClosed:
            pass
    except (KeyboardInterrupt, asyncio.CancelledError):
        await websocket.close(1001)
    code, reason = websocket.close_code, websocket.close_reason
    why = websocket._closed_exc().why
    print(
        f"Connection closed: code {code}" + (f", reason {reason!r}" if reason else "") + (f" ({why})" if why else ""),
        file=sys.stderr,
    )
    return 0 if code in (1000, 1001) else 1


# -- the servers --------------------------------------------------------------------------------


async def echo(websocket: Any) -> None:
    """The handler of ``wsio serve --echo``: send every message back."""
    async for message in websocket:
        await websocket.send(message)


def _ws_uri(address: Any, scheme: str = "ws") -> str:
    host, port = address[0], address[1]
    return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"


def _announce(addresses: Sequence[Any], scheme: str = "ws") -> None:
    for address in dict.fromkeys(tuple(a[:2]) for a in addresses):
        print(f"listening on {_ws_uri(address, scheme)}", flush=True)


def _announce_server(server: Any, scheme: str = "ws") -> None:
    _announce([sock.getsockname() for sock in server.sockets], scheme)


def _load_target(target: str, app_dir: str) -> Any:
    """Import ``module:attribute``; on a mistake, say what is wrong and what to do."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(
            f"wsio serve: expected module:attribute, e.g. app:handler for the function handler in app.py, got {target!r}"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise  # the module exists; something it imports doesn't: the traceback says what
        raise SystemExit(
            f"wsio serve: no module named {exc.name!r} in {app_dir} or on the Python path; "
            f"run wsio serve in the directory that holds {module_name.replace('.', '/')}.py, "
            f"or give --app-dir DIR"
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"wsio serve: {target}: {obj!r} has no attribute {part!r}") from None
    if not callable(obj):
        raise SystemExit(f"wsio serve: {target} is a {type(obj).__name__}, not a handler or an app")
    return obj


def _serve(args: argparse.Namespace, serve_parser: argparse.ArgumentParser) -> int:
    from .runner import _serve_app, _tls_context, run

    if args.echo is not None:
        if args.target is not None:
            serve_parser.error("give --echo PORT or module:handler, not both")
        if args.port is not None:
            serve_parser.error("--echo takes the port: --echo PORT, without --port")
        target, port = "wsio.__main__:echo", args.echo
    elif args.target is None:
        serve_parser.error("give --echo PORT or module:handler")
    else:
        target, port = args.target, 8765 if args.port is None else args.port
    if args.workers < 1:
        serve_parser.error(f"--workers must be 1 or more, not {args.workers}")
    if args.allow_no_origin and not args.origin:
        serve_parser.error("--allow-no-origin goes with --origin")
    if args.ssl_keyfile is not None and args.ssl_certfile is None:
        serve_parser.error("--ssl-keyfile goes with --ssl-certfile")
    password = args.ssl_keyfile_password
    if password is not None and args.ssl_certfile is None:
        serve_parser.error(f"--ssl-keyfile-password ({KEYFILE_PASSWORD_ENV}) goes with --ssl-certfile")
    if args.log_level is not None:
        # On the root logger: run() hands its level on to the workers.
        logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    options: dict[str, Any] = {}
    if args.origin:
        options["origins"] = [*args.origin, *([None] if args.allow_no_origin else [])]
    scheme = "ws" if args.ssl_certfile is None else "wss"
    if args.ssl_certfile is not None and args.workers == 1:
        # A bad file fails here, before the import; with workers, run() loads
        # the files in this process first, then in each worker.
        options["ssl"] = _tls_context(args.ssl_certfile, args.ssl_keyfile, password)

    # The console script, unlike "python -m", doesn't put the current
    # directory on sys.path. Spawned workers inherit sys.path.
    app_dir = os.path.abspath(args.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    handler = echo if args.echo is not None else _load_target(target, app_dir)

    if args.workers == 1:
        try:
            asyncio.run(_serve_app(handler, args.host, port, options, lambda server: _announce_server(server, scheme)))
        except KeyboardInterrupt:
            pass
        return 0

    def ready(bound_port: int, _pids: list[int]) -> None:
        infos = socket.getaddrinfo(args.host or None, bound_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        _announce([info[4] for info in infos], scheme)

    run(
        target, args.host, port, workers=args.workers, on_ready=ready,
        ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, ssl_keyfile_password=password, **options,
    )  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wsio`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        serve_parser = build_serve_parser()
        try:
            return _serve(serve_parser.parse_args(argv[1:]), serve_parser)
        except OSError as exc:  # the port is taken, the host doesn't resolve, a bad certificate file...
            print(f"wsio serve: {exc}", file=sys.stderr)
            return 1
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_client(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
