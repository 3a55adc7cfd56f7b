"""wsio.options: each option declared once, and the public signatures built from it."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import typing

import pytest

import wsio.asyncio.client
import wsio.asyncio.listener
import wsio.asyncio.server
import wsio.sync.client
import wsio.sync.server
from wsio.options import (
    ClientOptions,
    ClientOptionsDict,
    ConnectionOptions,
    ConnectionOptionsDict,
    ServerOptions,
    ServerOptionsDict,
)

PAIRS = [(ConnectionOptions, ConnectionOptionsDict), (ServerOptions, ServerOptionsDict), (ClientOptions, ClientOptionsDict)]


@pytest.mark.parametrize(("options", "typed"), PAIRS, ids=lambda x: x.__name__)
def test_typed_dicts_mirror_the_dataclasses(options: type, typed: type) -> None:
    """The TypedDicts that type ``**kwargs`` have the fields' names and types, no more, no less."""
    fields = {f.name: f.type for f in dataclasses.fields(options)}
    hints = {
        name: (value.__forward_arg__ if isinstance(value, typing.ForwardRef) else value)
        for name, value in typed.__annotations__.items()
    }
    # Inherited keys of a TypedDict are in __annotations__ too.
    assert hints == fields


@pytest.mark.parametrize(
    ("target", "options", "defaults"),
    [
        (wsio.asyncio.server.serve, ServerOptions, {}),
        (wsio.sync.server.serve, ServerOptions, {"max_connections": wsio.sync.server.DEFAULT_MAX_CONNECTIONS}),
        (wsio.asyncio.client.connect, ClientOptions, {}),
        (wsio.sync.client.reconnect, ClientOptions, {}),
        (wsio.sync.client.connect, ClientOptions, {}),
        (wsio.asyncio.listener.serve_listener, ServerOptions, {}),
        (wsio.asyncio.listener.connect_listener, ClientOptions, {}),
    ],
    ids=lambda x: getattr(x, "__module__", "") + "." + getattr(x, "__qualname__", "") if callable(x) else "",
)
def test_signatures_list_every_option(target: object, options: type, defaults: dict[str, object]) -> None:
    params = inspect.signature(target).parameters  # type: ignore[arg-type]
    for field in dataclasses.fields(options):
        param = params[field.name]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.default == defaults.get(field.name, field.default), field.name
        if target is not wsio.sync.client.connect:  # its docstring points at reconnect's
            assert f"{field.name}:" in (target.__doc__ or "")
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_defaults_are_the_old_ones() -> None:
    options = ServerOptions()
    assert (options.open_timeout, options.ping_interval, options.ping_timeout, options.close_timeout) == (10, 20, 20, 10)
    assert (options.max_size, options.max_fragments, options.max_queue) == (2**20, 4096, 16)
    assert (options.write_limit, options.compression_threshold, options.compression) == (65536, 128, "deflate")
    assert ClientOptions().max_redirects == 10


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"compression": "gzip"}, ValueError, "unsupported compression: gzip"),
        ({"open_timeout": -1}, ValueError, "open_timeout must be >= 0 or None, not -1"),
        ({"ping_interval": "20"}, TypeError, "ping_interval must be a number or None, not str"),
        ({"close_timeout": True}, TypeError, "close_timeout must be a number or None, not bool"),
        ({"max_size": 0}, ValueError, "max_size must be >= 1 or None, not 0"),
        ({"max_queue": 1.5}, TypeError, "max_queue must be an int or None, not float"),
        ({"write_limit": None}, TypeError, "write_limit must be an int, not NoneType"),
        ({"compression_threshold": -1}, ValueError, "compression_threshold must be >= 0, not -1"),
    ],
)
def test_validation_names_the_option(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    for options in (ServerOptions, ClientOptions):
        with pytest.raises(error, match=f"^{message}$"):
            options(**kwargs)


def test_validation_when_serve_and_connect_are_called() -> None:
    with pytest.raises(ValueError, match="max_size"):
        wsio.asyncio.server.serve(lambda ws: None, max_size=-1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="ping_timeout"):
        wsio.asyncio.client.connect("ws://localhost/", ping_timeout=-5)
    with pytest.raises(ValueError, match="max_redirects"):
        wsio.sync.client.reconnect("ws://localhost/", max_redirects=-1)
    with pytest.raises(ValueError, match="max_connections"):
        wsio.sync.server.serve(lambda ws: None, "localhost", 0, max_connections=-1)


def test_a_server_header_that_would_inject_a_header_is_refused_when_serve_is_called() -> None:
    for serve in (wsio.asyncio.server.serve, wsio.sync.server.serve):
        with pytest.raises(ValueError, match="invalid character in Server header value"):
            serve(lambda ws: None, "localhost", 0, server_header="wsio\r\nSet-Cookie: session=x")  # type: ignore[arg-type]


def test_older_names() -> None:
    passed: dict[str, object] = {"handshake_timeout": 3, "klass": int, "ssl": None}
    options = ServerOptions.from_kwargs(passed)
    assert (options.open_timeout, options.create_connection, passed) == (3, int, {"ssl": None})
    passed = {"timeout": 4, "extra_headers": {"X": "y"}, "create_protocol": int, "host": "h"}
    client = ClientOptions.from_kwargs(passed)
    assert (client.open_timeout, client.create_connection, passed) == (4, int, {"host": "h"})
    assert client.additional_headers is not None and client.additional_headers["X"] == "y"


def test_protocol_kwargs_are_built_once() -> None:
    logger = logging.getLogger("test")
    options = ServerOptions(compression=None, max_size=None)
    kwargs = options.protocol_kwargs(logger)
    assert kwargs["max_size"] is None and kwargs["extensions"] is None and kwargs["logger"] is logger
    assert options.connection_kwargs(logger)["ping_interval"] == 20
