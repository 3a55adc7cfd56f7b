"""The options of ``serve()`` and ``connect()``, declared once: :class:`ServerOptions`, :class:`ClientOptions`.

Each option is a field of one dataclass: its name, its type and its default
are declared there, its documentation is the field's ``doc`` metadata, and
``__post_init__`` validates it. :class:`ConnectionOptions`
holds what servers and clients share; :class:`ServerOptions` and
:class:`ClientOptions` add what only one role takes. The asyncio and threaded
``serve()`` / ``connect()`` (and :func:`~wsio.asyncio.listener.serve_listener`,
:func:`~wsio.asyncio.listener.connect_listener`, the routers) build one of
these per call, and pass it down; each connection then takes the two keyword
dicts the options made once (:meth:`ConnectionOptions.protocol_kwargs`,
:meth:`ConnectionOptions.connection_kwargs`), so a handshake costs no more
than before.

How the public signatures stay explicit (the choice, and why):

- ``serve()`` and ``connect()`` take the options as ``**kwargs:
  Unpack[ServerOptionsDict]`` (PEP 692). mypy and IDEs check every keyword
  and its type against ``ServerOptionsDict`` / ``ClientOptionsDict``,
  the typing view of the dataclasses (``Unpack`` comes from
  ``typing_extensions`` under ``TYPE_CHECKING`` only: wsio has no runtime
  dependency and runs on Python 3.10). Those TypedDicts repeat the names and
  types of the fields, for the type checker alone; ``tests/test_options.py``
  fails if they drift apart.
- :func:`with_options` gives each of them a generated ``__signature__``
  (every option, keyword-only, with its default) and appends the generated
  ``Args`` lines to its docstring, so ``inspect.signature()``, ``help()``,
  Sphinx and websockets' call compatibility see every keyword with its
  default, as when they were written out.
- Written-out signatures with defaults read from the dataclasses were the
  other way: they keep the four long parameter lists (and their docs) in
  four places, in sync by a test rather than by construction. The
  generated way declares each option once, costs nothing per connection
  (the signature and the docstring are made at import), and loses only the
  parameter list in the source of ``serve()``, which points here.

Flavour-specific options (the socket arguments of each API, ``unix`` and
``path``) stay written out in their functions, which document them.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Sequence, TypedDict, TypeVar

from ._client_common import DEFAULT_USER_AGENT, MAX_REDIRECTS, _checked_headers
from ._client_common import process_exception as _default_process_exception
from ._server_common import DEFAULT_SERVER_HEADER
from .legacy.calls import legacy_signature
from .protocol.machine import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE
from .protocol.datastructures import Headers
from .protocol.http11 import DEFAULT_HANDSHAKE_LIMITS, HandshakeLimits

if TYPE_CHECKING:
    from .protocol.datastructures import Headers

__all__ = ["ConnectionOptions", "ServerOptions", "ClientOptions", "ServerOptionsDict", "ClientOptionsDict"]


def _option(default: Any, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc})


def _check_number(name: str, value: Any, *, integer: bool, minimum: int, optional: bool) -> None:
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {what}{' or None' if optional else ''}, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(
            f"{name} must be {'>= 0' if minimum == 0 else f'>= {minimum}'}{' or None' if optional else ''}, not {value}"
        )


#: Connections an asyncio server holds at once unless ``max_connections`` says otherwise.
#: An idle connection costs about 8 KiB, so 10,000 is ~80 MiB: safe on any
#: machine, and far below what one event loop can serve. Raise ``ulimit -n``
#: above it (each connection is a file descriptor). The threaded server's is
#: lower: see :data:`wsio.sync.server.DEFAULT_MAX_CONNECTIONS`.
DEFAULT_MAX_CONNECTIONS = 10_000

# What __post_init__ checks: (name, integer, minimum, None allowed). A tuple, not a
# walk over dataclasses.fields(): connect() builds options at every call.
_CHECKS = (
    ("open_timeout", False, 0, True),
    ("ping_interval", False, 0, True),
    ("ping_timeout", False, 0, True),
    ("close_timeout", False, 0, True),
    ("max_size", True, 1, True),
    ("max_fragments", True, 1, True),
    ("max_queue", True, 1, True),
    ("write_limit", True, 0, False),
    ("compression_threshold", True, 0, False),
)


@dataclasses.dataclass
class ConnectionOptions:
    """What :class:`ServerOptions` and :class:`ClientOptions` share: negotiation, timeouts, limits."""

    subprotocols: Sequence[str] | None = _option(None, "subprotocols supported (server) or offered (client), by preference.")
    compression: str | None = _option("deflate", '``"deflate"`` (default) negotiates permessage-deflate; ``None`` turns it off.')
    extensions: Sequence[Any] | None = _option(None, "extension factories, replacing those ``compression`` makes.")
    open_timeout: float | None = _option(10, "seconds for TCP, TLS and the opening handshake together (10).")
    ping_interval: float | None = _option(20, "seconds between keepalive pings (20; ``None`` disables).")
    ping_timeout: float | None = _option(20, "seconds to wait for the pong before closing (20; ``None`` disables).")
    close_timeout: float | None = _option(10, "seconds to wait for the closing handshake (10).")
    max_size: int | None = _option(DEFAULT_MAX_SIZE, "largest message in bytes (1 MiB; ``None``: no limit).")
    max_fragments: int | None = _option(DEFAULT_MAX_FRAGMENTS, "largest number of frames in a message (4096).")
    max_queue: int | None = _option(16, "messages buffered before reading pauses (16).")
    write_limit: int = _option(65536, "bytes buffered for sending before ``send()`` waits (64 KiB).")
    compression_threshold: int = _option(128, "messages shorter than this go uncompressed (128).")
    handshake_limits: HandshakeLimits | None = _option(None, "a :class:`HandshakeLimits` for the HTTP parser.")
    create_connection: Any = _option(None, "a subclass of the connection class, to create connections with.")
    logger: logging.Logger | None = _option(None, "defaults to the ``wsio.server`` or ``wsio.client`` logger.")

    #: The checks of the numeric options, for __post_init__; each role adds its own.
    _checks: ClassVar[tuple[tuple[str, bool, int, bool], ...]] = _CHECKS

    def __post_init__(self) -> None:
        if self.compression is not None and self.compression != "deflate":
            raise ValueError(f"unsupported compression: {self.compression}")
        for name, integer, minimum, optional in self._checks:
            value = getattr(self, name)
            if value is None and optional:
                continue
            kind = type(value)
            if (kind is int or (kind is float and not integer)) and value >= minimum:
                continue  # the usual case, without a call
            _check_number(name, value, integer=integer, minimum=minimum, optional=optional)

    def protocol_kwargs(self, logger: logging.Logger | None) -> dict[str, Any]:
        """The keyword arguments of the sans-I/O protocol: built once, used for every connection."""
        extensions = self._extensions()
        return dict(
            extensions=tuple(extensions) if extensions else None,  # shared by every connection's protocol
            subprotocols=self.subprotocols,
            limits=self.handshake_limits,
            max_size=self.max_size,
            max_fragments=self.max_fragments,
            compression_threshold=self.compression_threshold,
            logger=logger,
        )

    def connection_kwargs(self, logger: logging.Logger | None) -> dict[str, Any]:
        """The keyword arguments of the connection class: built once, used for every connection."""
        return dict(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            max_queue=self.max_queue,
            write_limit=self.write_limit,
            logger=logger,
        )

    def _extensions(self) -> Sequence[Any] | None:
        raise NotImplementedError


@dataclasses.dataclass
class ServerOptions(ConnectionOptions):
    """The options of ``serve()``, asyncio or threaded."""

    _checks: ClassVar[tuple[tuple[str, bool, int, bool], ...]] = (*_CHECKS, ("max_connections", True, 0, True))

    process_request: Callable[..., Any] | None = _option(
        None,
        "``(connection, request)`` or ``(path, request_headers)``; return ``None`` to go on "
        "with the handshake, or a :class:`Response` or ``(status, headers, body)`` to answer "
        "with plain HTTP (health checks, authentication).",
    )
    process_response: Callable[..., Any] | None = _option(
        None, "``(connection, request, response)``; may return a replacement response."
    )
    origins: Sequence[Any] | None = _option(
        None, "allowed ``Origin`` values (``None`` in the list allows no Origin); default: any."
    )
    select_subprotocol: Callable[..., str | None] | None = _option(
        None, "``(connection, client_subprotocols)`` returning one or ``None``, to choose yourself."
    )
    server_header: str | None = _option(
        DEFAULT_SERVER_HEADER,
        "the ``Server`` header; ``None`` removes it. A CR, LF or other control character raises "
        ":class:`ValueError` when ``serve()`` is called.",
    )
    extra_headers: Any = _option(
        None, "headers added to the 101 response (or a callable ``(path, request_headers)`` returning them)."
    )
    max_connections: int | None = _option(
        DEFAULT_MAX_CONNECTIONS,
        "connections held at once, opening ones included (10,000; the threaded server: 1,000, as "
        "each costs two threads); above it a new connection is answered ``503 Service "
        "Unavailable`` with ``Retry-After`` at once, without reading its request (nor starting "
        "a thread), and one INFO line is logged. ``None``: no limit (then the file descriptor "
        "limit is the limit, and accept() fails beyond it).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.server_header is not None:
            # A CR, LF or other control character (header injection) raises ValueError
            # here, when serve() is called, rather than in every handshake.
            Headers()["Server"] = self.server_header

    def _extensions(self) -> Sequence[Any] | None:
        if self.compression == "deflate":
            from .protocol.deflate import enable_server_permessage_deflate

            return enable_server_permessage_deflate(self.extensions)
        return self.extensions

    def protocol_kwargs(self, logger: logging.Logger | None) -> dict[str, Any]:
        kwargs = super().protocol_kwargs(logger)
        kwargs.update(origins=self.origins, server_header=self.server_header, extra_headers=self.extra_headers)
        kwargs["limits"] = self.handshake_limits or DEFAULT_HANDSHAKE_LIMITS
        return kwargs

    def subprotocol_selector(self) -> Callable[[Any], Callable[[list[str], list[str]], str | None]] | None:
        """None without ``select_subprotocol``; else a function of a connection that gives its protocol's.

        A server sets ``protocol.select_subprotocol = selector(connection)`` for
        each connection only when there is one (its protocols start with None).
        """
        select = self.select_subprotocol
        if select is None:
            return None
        if legacy_signature(select, "client_subprotocols"):
            return lambda connection: select  # (client_subprotocols, server_subprotocols) already
        return lambda connection: lambda client, _server: select(connection, client)

    @classmethod
    def from_kwargs(cls: type[_Options], kwargs: dict[str, Any]) -> _Options:
        """Take the options out of ``kwargs`` (older names included); what remains is the caller's."""
        create = kwargs.get("create_connection") or kwargs.pop("create_protocol", None) or kwargs.pop("klass", None)
        if create is not None:
            kwargs["create_connection"] = create
        if "handshake_timeout" in kwargs:
            kwargs["open_timeout"] = kwargs.pop("handshake_timeout")
        return _take(cls, kwargs)


@dataclasses.dataclass
class ClientOptions(ConnectionOptions):
    """The options of ``connect()``, asyncio or threaded."""

    _checks: ClassVar[tuple[tuple[str, bool, int, bool], ...]] = (*_CHECKS, ("max_redirects", True, 0, True))

    origin: str | None = _option(None, "the ``Origin`` header.")
    additional_headers: Any = _option(
        None,
        "headers added to the request (``extra_headers`` is an alias). They go to the origin "
        "(scheme, host, port) of ``uri`` only: a redirect to another origin sends none of them. "
        "A value with CR, LF or another control character raises :class:`ValueError` at once.",
    )
    user_agent_header: str | None = _option(DEFAULT_USER_AGENT, "the ``User-Agent`` header; ``None`` removes it.")
    process_exception: Callable[[Exception], Exception | None] = _option(
        _default_process_exception,
        "``(exc) -> exc | None``; decides, when iterating, which failures are retried "
        "(``None``) and which are raised (default: :func:`~wsio.asyncio.client.process_exception`).",
    )
    reconnect_delays: Callable[[], Iterator[float]] | None = _option(
        None,
        "a function returning an iterator of the delays in seconds between attempts, when "
        "iterating (default: :func:`~wsio.asyncio.client.backoff`, about 1 s growing to 60 s, jittered).",
    )
    max_redirects: int | None = _option(
        None,
        "3xx answers followed at most (10). A redirect from wss:// to ws:// is refused, and so "
        "is one to another origin when ``host``, ``port``, ``sock``, ``server_hostname`` or "
        "``unix`` fix where to connect (:class:`~wsio.RedirectError`). See :doc:`/topics/security`.",
    )
    proxy: str | bool | None = _option(
        True,
        "``True`` (default): the proxy the environment gives (``HTTPS_PROXY`` for wss://, "
        "``HTTP_PROXY`` for ws://, ``ALL_PROXY``, skipping hosts in ``NO_PROXY``); ``None``: no "
        "proxy; or a proxy URI: ``http://[user:password@]host:port``, ``https://...``, "
        "``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://`` (SOCKS needs ``pip install "
        "wsio[socks]``). Ignored with ``sock`` or ``unix``. A refusing or unreachable proxy "
        "raises :class:`~wsio.InvalidProxy`. See :doc:`/topics/proxies`.",
    )
    proxy_ssl: Any = _option(None, "the :class:`ssl.SSLContext` for an https:// proxy (default: the default, verifying context).")
    proxy_server_hostname: str | None = _option(
        None,
        "the name checked in an https:// proxy's certificate and sent in SNI (default: the "
        "proxy URI's host), for a proxy reached by an address its certificate doesn't name.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.additional_headers = _checked_headers(self.additional_headers, self.origin, self.user_agent_header)
        if self.max_redirects is None:
            self.max_redirects = MAX_REDIRECTS

    def _extensions(self) -> Sequence[Any] | None:
        if self.compression == "deflate":
            from .protocol.deflate import enable_client_permessage_deflate

            return enable_client_permessage_deflate(self.extensions)
        return self.extensions

    def protocol_kwargs(self, logger: logging.Logger | None) -> dict[str, Any]:
        kwargs = super().protocol_kwargs(logger)
        headers: Headers | None = self.additional_headers
        kwargs.update(origin=self.origin, extra_headers=headers, user_agent_header=self.user_agent_header)
        return kwargs

    @classmethod
    def from_kwargs(cls: type[_Options], kwargs: dict[str, Any]) -> _Options:
        """Take the options out of ``kwargs`` (older names included); what remains is the caller's."""
        if kwargs.get("additional_headers") is None and "extra_headers" in kwargs:
            kwargs["additional_headers"] = kwargs.pop("extra_headers")
        if "timeout" in kwargs:
            kwargs["open_timeout"] = kwargs.pop("timeout")
        if not kwargs.get("create_connection") and "create_protocol" in kwargs:
            kwargs["create_connection"] = kwargs.pop("create_protocol")
        return _take(cls, kwargs)


_Options = TypeVar("_Options", bound=ConnectionOptions)

_FIELDS: dict[type, tuple[str, ...]] = {}


def _names(cls: type[ConnectionOptions]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


def _take(cls: type[_Options], kwargs: dict[str, Any]) -> _Options:
    return cls(**{name: kwargs.pop(name) for name in _names(cls) if name in kwargs})


# -- the typing view, for ``**kwargs: Unpack[...]`` -------------------------------------


class ConnectionOptionsDict(TypedDict, total=False):
    """The fields of :class:`ConnectionOptions` as keyword arguments, for type checkers."""

    subprotocols: Sequence[str] | None
    compression: str | None
    extensions: Sequence[Any] | None
    open_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    max_size: int | None
    max_fragments: int | None
    max_queue: int | None
    write_limit: int
    compression_threshold: int
    handshake_limits: HandshakeLimits | None
    create_connection: Any
    logger: logging.Logger | None


class ServerOptionsDict(ConnectionOptionsDict, total=False):
    """The fields of :class:`ServerOptions` as keyword arguments, for type checkers."""

    process_request: Callable[..., Any] | None
    process_response: Callable[..., Any] | None
    origins: Sequence[Any] | None
    select_subprotocol: Callable[..., str | None] | None
    server_header: str | None
    extra_headers: Any
    max_connections: int | None


class ClientOptionsDict(ConnectionOptionsDict, total=False):
    """The fields of :class:`ClientOptions` as keyword arguments, for type checkers."""

    origin: str | None
    additional_headers: Any
    user_agent_header: str | None
    process_exception: Callable[[Exception], Exception | None]
    reconnect_delays: Callable[[], Iterator[float]] | None
    max_redirects: int | None
    proxy: str | bool | None
    proxy_ssl: Any
    proxy_server_hostname: str | None


# -- signatures and docstrings ---------------------------------------------------------------

_Callable = TypeVar("_Callable", bound=Callable[..., Any])


def options_signature(
    signature: inspect.Signature, options: type[ConnectionOptions], defaults: Mapping[str, Any] | None = None
) -> inspect.Signature:
    """``signature`` with every option of ``options`` inserted as a keyword-only parameter.

    The options go before the function's own keyword-only parameters and
    ``**kwargs``; ``defaults`` overrides some (e.g. the threaded server's
    ``max_connections``).
    """
    P = inspect.Parameter
    defaults = defaults or {}
    params = list(signature.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind in (P.KEYWORD_ONLY, P.VAR_KEYWORD)), len(params))
    own = {p.name for p in params}
    added = [
        P(f.name, P.KEYWORD_ONLY, default=defaults.get(f.name, f.default), annotation=f.type)
        for f in dataclasses.fields(options)
        if f.name not in own
    ]
    return signature.replace(parameters=[*params[:at], *added, *params[at:]])


def options_doc(options: type[ConnectionOptions], overrides: Mapping[str, str] | None = None, indent: str = "        ") -> str:
    """The ``Args`` lines of ``options``, one per option: what :func:`with_options` appends to docstrings."""
    import textwrap

    overrides = overrides or {}
    lines = []
    for f in dataclasses.fields(options):
        text = f"{f.name}: {overrides.get(f.name, f.metadata['doc'])}"
        lines += textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent + "    ")
    return "\n".join(lines)


def with_options(
    options: type[ConnectionOptions],
    *,
    defaults: Mapping[str, Any] | None = None,
    docs: Mapping[str, str] | None = None,
) -> Callable[[_Callable], _Callable]:
    """Give a function or class taking ``**options`` the signature and ``Args`` lines of ``options``.

    The docstring must end with its own ``Args:`` section (at the indentation
    of a method's docstring); the options' lines are appended to it.
    """

    def decorate(target: _Callable) -> _Callable:
        function: Any = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
        signature = options_signature(inspect.signature(function), options, defaults)
        if isinstance(target, type):
            function.__signature__ = signature
            params = list(signature.parameters.values())[1:]  # without self
            target.__signature__ = signature.replace(parameters=params, return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
        else:
            target.__signature__ = signature  # type: ignore[attr-defined]
        if target.__doc__:
            target.__doc__ = target.__doc__.rstrip() + "\n" + options_doc(options, docs) + "\n"
        return target

    return decorate
