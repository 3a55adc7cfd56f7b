"""The ``wsio`` command: an interactive client, and quick servers.

::

    wsio ws://localhost:8765              # type lines to send; received messages print with "< "
    echo hello | wsio ws://localhost:8765 # not a terminal: send each line, print the replies, exit
    wsio serve --echo 8765                # an echo server, for a quick test
    wsio serve app:handler --port 8765 --workers 4

On exit the client prints the close code and why the connection closed.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from typing import Any, Sequence

from . import version

__all__ = ["main"]

#: After stdin ends (not a terminal), wait this long without a message before closing.
LINGER = 0.5


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The client's options: ``wsio URI [options]``."""
    parser = argparse.ArgumentParser(
        prog="wsio", description=f"WebSocket client (wsio {version}); 'wsio serve --help' for servers"
    )
    parser.add_argument("uri", help="ws:// or wss:// URI to connect to")
    parser.add_argument("--header", "-H", action="append", type=_parse_header, default=[], help="'Name: value', repeatable")
    parser.add_argument("--subprotocol", action="append", default=[], help="subprotocol to offer, repeatable")
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
    parser = argparse.ArgumentParser(prog="wsio serve", description="Run a WebSocket server.")
    parser.add_argument("target", nargs="?", help="the handler to serve, as module:attribute")
    parser.add_argument("--echo", type=int, metavar="PORT", help="serve an echo server on PORT")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (default: 1)")
    return parser


async def _client(args: argparse.Namespace) -> int:
    from .asyncio.client import connect
    from .exceptions import ConnectionClosed

    options: dict[str, Any] = {
        "additional_headers": args.header or None,
        "subprotocols": args.subprotocol or None,
        "compression": None if args.no_compression else "deflate",
        "ping_interval": args.ping_interval or None,
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

    interactive = sys.stdin.isatty()
    try:
        websocket = await connect(args.uri, **options)
    except Exception as exc:
        print(f"Failed to connect to {args.uri}: {exc}", file=sys.stderr)
        return 1
    if interactive:
        print(f"Connected to {args.uri}. Type a message and press Enter; Ctrl-D to close.", file=sys.stderr)

    loop = asyncio.get_running_loop()
    last_message = loop.time()

    async def printer() -> None:
        nonlocal last_message
        async for message in websocket:
            last_message = loop.time()
            text = message if isinstance(message, str) else f"(binary) {message.hex()}"
            print(f"< {text}", flush=True)

    receiving = asyncio.ensure_future(printer())
    try:
        while not receiving.done():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            try:
                await websocket.send(line.rstrip("\n"))
            except ConnectionClosed:
                break
        # Give the replies to the last lines a chance to arrive.
        while not receiving.done() and loop.time() - last_message < LINGER:
            await asyncio.sleep(LINGER / 5)
        await websocket.close()
        try:
            await receiving
        except ConnectionClosed:
            pass
    except (KeyboardInterrupt, asyncio.CancelledError):
        await websocket.close(1001)
    code, reason = websocket.close_code, websocket.close_reason
    why = websocket._closed_exc().why
    print(f"Connection closed: code {code}" + (f", reason {reason!r}" if reason else "") + (f" ({why})" if why else ""), file=sys.stderr)
    return 0 if code in (1000, 1001) else 1


async def _echo_server(host: str, port: int) -> None:
    from .asyncio.server import serve

    async def echo(websocket: Any) -> None:
        async for message in websocket:
            await websocket.send(message)

    import signal

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with serve(echo, host, port):
        print(f"echo server on ws://{host}:{port}/", flush=True)
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        serve_parser = build_serve_parser()
        args = serve_parser.parse_args(argv[1:])
        if args.echo is not None:
            asyncio.run(_echo_server(args.host, args.echo))
            return 0
        if args.target is None:
            serve_parser.error("give --echo PORT or module:handler")
        from .runner import run

        run(args.target, args.host, args.port, workers=args.workers)
        return 0
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_client(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
