"""websockets' names at the same paths under wsio, with signatures that accept the same calls.

Compared with the installed websockets (17.x), module by module: every name
of the module's ``__all__`` (or, without one, its public classes and
functions) exists in the wsio module of the same path; for functions, and
for classes' constructors and public methods, every parameter websockets
accepts is accepted by wsio under the same name and kind (positional at the
same place, or by keyword), and optional where websockets' is. wsio may
accept more. Public members of the classes users get instances of
(connections, servers) are looked up on live instances, since wsio sets
some of them per instance.

Every difference that remains is listed in ``KNOWN`` with the reason, and in
docs/migrate/websockets.md; the test also fails when a listed difference is
gone, so that the list stays true.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import threading
from typing import Any

import pytest

import wsio
import wsio.sync.client
import wsio.sync.server

import websockets  # noqa: E402  (the library compared with: in the test extras)

# Importing websockets.legacy warns; comparing with it is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

#: The module paths compared, relative to the package ("" is the package itself).
MODULES = [
    "",
    "asyncio.server",
    "asyncio.client",
    "asyncio.router",
    "sync.server",
    "sync.client",
    "sync.router",
    "exceptions",
    "datastructures",
    "http11",
    "frames",
    "typing",
    "uri",
    "legacy.server",
    "legacy.client",
    "legacy.auth",
    "legacy.protocol",
    "legacy.exceptions",
]

# Reasons shared by several entries of KNOWN.
INTERNAL = "a step of websockets' I/O implementation, public by name only; wsio's implementation has no such step"
CONSTRUCTED_BY_SERVE = "constructed by serve()/connect(), not by applications; wsio's takes its own arguments"
ALIAS = "an alias of the wsio exception that covers the case (see the migration guide); constructed by wsio, not by applications"
LEGACY_POSITIONAL = "the legacy name of the first argument; the current API's name is used (pass it positionally)"
CORE = "wsio's sans-I/O core has its own API (see the protocol docs): send_*() take compress= and return nothing to write"

#: Differences that remain: (websockets' qualified name, what differs) -> why.
#: A member is named after the class that defines it in websockets.
KNOWN: dict[tuple[str, str], str] = {
    # -- connections -------------------------------------------------------------------
    ("websockets.sync.client.ClientConnection.maybe_raise_legacy_warning", "missing"): (
        "wsio doesn't deprecate connect() without with: it returns the connection, as websockets 14-16 did"
    ),
    **{
        (f"websockets.{api}.connection.Connection.{name}", "missing"): INTERNAL
        for api in ("asyncio", "sync")
        for name in (
            "acknowledge_pings",
            "terminate_pending_pings",
            "keepalive",
            "send_context",
            "send_data",
            "set_connection_exc",
        )
    },
    ("websockets.asyncio.connection.Connection.drain", "missing"): INTERNAL,
    ("websockets.sync.connection.Connection.start_keepalive", "missing"): INTERNAL,
    ("websockets.sync.connection.Connection.close_socket", "missing"): INTERNAL,
    ("websockets.sync.connection.Connection.maybe_raise_legacy_warning", "missing"): (
        "wsio doesn't deprecate connect() without with: it returns the connection, as websockets 14-16 did"
    ),
    ("websockets.asyncio.server.ServerConnection.handshake", "missing"): INTERNAL,
    ("websockets.asyncio.client.ClientConnection.handshake", "missing"): INTERNAL,
    ("websockets.sync.server.ServerConnection.handshake", "missing"): INTERNAL,
    ("websockets.sync.client.ClientConnection.handshake", "missing"): INTERNAL,
    ("websockets.sync.server.ServerConnection.process_event", "missing"): INTERNAL,
    ("websockets.sync.server.ServerConnection.recv_events", "missing"): INTERNAL,
    ("websockets.sync.client.ClientConnection.process_event", "missing"): INTERNAL,
    ("websockets.sync.client.ClientConnection.recv_events", "missing"): INTERNAL,
    ("websockets.asyncio.server.ServerConnection.process_event", "missing"): INTERNAL,
    ("websockets.asyncio.client.ClientConnection.process_event", "missing"): INTERNAL,
    # Connection constructors: serve() and connect() pass the options; wsio's
    # connections take the core protocol first and the options as **kwargs.
    **{
        (f"websockets.{role}", what): CONSTRUCTED_BY_SERVE
        for role, whats in (
            (
                "asyncio.server.ServerConnection",
                ["positional #0: protocol, wsio has server", "positional #1: server, wsio has protocol"],
            ),
            ("asyncio.client.ClientConnection", []),
            ("sync.server.ServerConnection", ["positional #0: sock, wsio has socket", "wsio requires socket"]),
        )
        for what in [
            *whats,
            "keyword ping_interval missing",
            "keyword ping_timeout missing",
            "keyword close_timeout missing",
            "keyword max_queue missing",
            *(["keyword write_limit missing"] if role.startswith("asyncio") else []),
        ]
    },
    ("websockets.sync.client.ClientConnection", "positional #0: sock, wsio has socket"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.client.ClientConnection", "wsio requires socket"): CONSTRUCTED_BY_SERVE,
    # -- servers -----------------------------------------------------------------------
    ("websockets.asyncio.server.Server", "positional #0: create_server, wsio has handler"): CONSTRUCTED_BY_SERVE,
    ("websockets.asyncio.server.Server", "positional handler (#1) missing"): CONSTRUCTED_BY_SERVE,
    ("websockets.asyncio.server.Server", "positional logger (#2) missing"): CONSTRUCTED_BY_SERVE,
    ("websockets.asyncio.server.Server", "wsio requires process_request"): CONSTRUCTED_BY_SERVE,
    ("websockets.asyncio.server.Server", "wsio requires process_response"): CONSTRUCTED_BY_SERVE,
    ("websockets.asyncio.server.Server", "wsio requires open_timeout"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "positional #0: sock, wsio has socket"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "positional logger (#2) missing"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires socket"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires process_request"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires process_response"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires open_timeout"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires ssl_context"): CONSTRUCTED_BY_SERVE,
    ("websockets.sync.server.Server", "wsio requires make_connection"): CONSTRUCTED_BY_SERVE,
    (
        "websockets.sync.server.Server.SHUTDOWN_POLLING_INTERVAL",
        "missing",
    ): "wsio's accept loop is woken by a pipe, it doesn't poll",
    # -- clients -----------------------------------------------------------------------
    ("websockets.sync.client.reconnect.open_socket", "missing"): INTERNAL,
    ("websockets.sync.client.reconnect.enable_tls", "missing"): INTERNAL,
    ("websockets.sync.client.reconnect.open_connection", "missing"): INTERNAL,
    ("websockets.sync.client.reconnect.process_redirect", "missing"): INTERNAL,
    ("websockets.asyncio.client.connect.open_tcp_connection", "missing"): INTERNAL,
    ("websockets.asyncio.client.connect.process_redirect", "missing"): INTERNAL,
    (
        "websockets.asyncio.client.connect.connect",
        "missing",
    ): "await connect(...) or async with connect(...) opens the connection",
    # -- HTTP, frames, headers -----------------------------------------------------------
    ("websockets.http11.Request", "positional #3: protocol, wsio has version"): (
        "the HTTP version is named version in wsio's constructor (Request.protocol reads it)"
    ),
    ("websockets.http11.Request.exception", "missing"): "parse errors are raised, not stored",
    ("websockets.http11.Response.exception", "missing"): "parse errors are raised, not stored",
    ("websockets.http11.Request.parse", "missing"): "wsio parses with RequestParser (wsio.protocol.http11)",
    ("websockets.http11.Response.parse", "missing"): "wsio parses with ResponseParser (wsio.protocol.http11)",
    ("websockets.frames.Frame.parse", "missing"): "wsio's core parses frames itself and never hands out Frame objects",
    ("websockets.frames.Frame.MAX_LOG_SIZE", "missing"): INTERNAL,
    ("websockets.frames.Frame.DEFAULT_IS_TEXT", "missing"): INTERNAL,
    ("websockets.datastructures.Headers.set_insecure", "missing"): (
        "wsio's Headers has no insecure flag: a redirect drops credentials itself"
    ),
    # -- exceptions that are aliases ------------------------------------------------------
    ("websockets.exceptions.InvalidMethod", "positional #0: method, wsio has msg"): ALIAS,
    ("websockets.exceptions.InvalidMethod", "wsio requires msg"): ALIAS,
    ("websockets.exceptions.InvalidProtocol", "positional #0: protocol, wsio has msg"): ALIAS,
    ("websockets.exceptions.InvalidProtocol", "wsio requires msg"): ALIAS,
    ("websockets.exceptions.InvalidProxyStatus", "positional #0: response, wsio has proxy"): ALIAS,
    ("websockets.exceptions.InvalidProxyStatus", "wsio requires proxy"): ALIAS,
    ("websockets.exceptions.InvalidProxyStatus", "wsio requires msg"): ALIAS,
    ("websockets.exceptions.TooManyFragments", "positional #0: max_fragments, wsio has msg"): ALIAS,
    ("websockets.exceptions.TooManyFragments", "wsio requires msg"): ALIAS,
    ("websockets.exceptions.PayloadTooBig", "positional #0: size_or_message, wsio has msg"): ALIAS,
    ("websockets.exceptions.PayloadTooBig", "positional max_size (#1) missing"): ALIAS,
    ("websockets.exceptions.PayloadTooBig", "positional current_size (#2) missing"): ALIAS,
    ("websockets.exceptions.PayloadTooBig", "wsio requires msg"): ALIAS,
    ("websockets.exceptions.PayloadTooBig.set_current_size", "missing"): INTERNAL,
    ("websockets.legacy.exceptions.InvalidStatusCode", "positional #0: status_code, wsio has response"): (
        "an alias of InvalidStatus, whose response holds status and headers"
    ),
    ("websockets.legacy.exceptions.InvalidStatusCode", "positional headers (#1) missing"): (
        "an alias of InvalidStatus, whose response holds status and headers"
    ),
    ("websockets.legacy.exceptions.InvalidStatusCode", "wsio requires response"): (
        "an alias of InvalidStatus, whose response holds status and headers"
    ),
    # -- legacy functions -----------------------------------------------------------------
    ("websockets.legacy.server.broadcast", "positional #0: websockets, wsio has connections"): LEGACY_POSITIONAL,
    ("websockets.legacy.server.broadcast", "wsio requires connections"): LEGACY_POSITIONAL,
    ("websockets.legacy.server.Serve", "positional #0: ws_handler, wsio has handler"): LEGACY_POSITIONAL,
    ("websockets.legacy.server.unix_serve", "positional #0: ws_handler, wsio has handler"): LEGACY_POSITIONAL,
    (
        "websockets.legacy.server.Serve",
        "keyword read_limit missing",
    ): "wsio reads into one buffer per event loop; no stream limit",
    **{
        (f"websockets.legacy.client.Connect.BACKOFF_{name}", "missing"): (
            "class attributes of the legacy client; wsio's delays come from reconnect_delays="
        )
        for name in ("INITIAL", "MIN", "MAX", "FACTOR")
    },
    ("websockets.legacy.client.Connect.MAX_REDIRECTS_ALLOWED", "missing"): "max_redirects= instead",
    ("websockets.legacy.client.Connect.handle_redirect", "missing"): INTERNAL,
    (
        "websockets.legacy.client.Connect",
        "keyword read_limit missing",
    ): "wsio reads into one buffer per event loop; no stream limit",
}

#: Keyword options that wsio takes through ``**kwargs`` under another name.
RENAMED_THROUGH_KWARGS = {
    ("websockets.legacy.server.Serve", "create_protocol"): "create_connection",
    ("websockets.legacy.client.Connect", "create_protocol"): "create_connection",
    ("websockets.legacy.client.Connect", "extra_headers"): "additional_headers",
}

#: Classes whose names exist in wsio but whose constructors and members are not compared.
NOT_COMPARED = {
    "websockets.legacy.protocol.WebSocketCommonProtocol": (
        "websockets' legacy implementation (deprecated since 14); in wsio the legacy class names"
        " are aliases of the current classes, compared under their own names"
    ),
    "websockets.legacy.server.WebSocketServerProtocol": "as WebSocketCommonProtocol",
    "websockets.legacy.client.WebSocketClientProtocol": "as WebSocketCommonProtocol",
    "websockets.legacy.auth.BasicAuthWebSocketServerProtocol": "as WebSocketCommonProtocol",
    "websockets.legacy.server.WebSocketServer": "as WebSocketCommonProtocol",
    "websockets.protocol.Protocol": (
        "the sans-I/O core: wsio's has its own API (events out of receive_data(), bytes out of"
        " the send_*() calls; see the protocol docs), shared by its three I/O layers"
    ),
    "websockets.server.ServerProtocol": "as Protocol",
    "websockets.client.ClientProtocol": "as Protocol",
}


def public_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("websockets")
    ]


def qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def compare_signatures(theirs: Any, ours: Any, key: str) -> list[str]:
    """What a call that websockets' ``theirs`` accepts could do that wsio's ``ours`` refuses."""
    P = inspect.Parameter
    ws, wo = signature(theirs), signature(ours)
    if ws is None or wo is None:
        return []
    ws_params, wo_params = list(ws.parameters.values()), wo.parameters
    wo_kwargs = any(p.kind is P.VAR_KEYWORD for p in wo_params.values())
    wo_args = any(p.kind is P.VAR_POSITIONAL for p in wo_params.values())
    wo_positional = [p for p in wo_params.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    problems = []
    positional = [p for p in ws_params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD) and not p.name.startswith("_")]
    for index, param in enumerate(positional):
        if index >= len(wo_positional):
            if not wo_args:
                problems.append(f"positional {param.name} (#{index}) missing")
            continue
        mine = wo_positional[index]
        if mine.name != param.name and param.kind is not P.POSITIONAL_ONLY:
            problems.append(f"positional #{index}: {param.name}, wsio has {mine.name}")
        elif param.default is not P.empty and mine.default is P.empty:
            problems.append(f"{param.name} optional in websockets, required in wsio")
    for param in ws_params:
        if param.kind is P.KEYWORD_ONLY:
            mine = wo_params.get(param.name)
            if mine is None:
                if wo_kwargs and (key, param.name) in RENAMED_THROUGH_KWARGS:
                    continue
                problems.append(f"keyword {param.name} missing")
            elif mine.kind not in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD):
                problems.append(f"{param.name} is {mine.kind.name} in wsio")
            elif param.default is not P.empty and mine.default is P.empty:
                problems.append(f"{param.name} optional in websockets, required in wsio")
        elif param.kind is P.VAR_POSITIONAL and not wo_args:
            problems.append("*args missing")
        elif param.kind is P.VAR_KEYWORD and not wo_kwargs:
            problems.append("**kwargs missing")
    ws_takes_any_keyword = any(p.kind is P.VAR_KEYWORD for p in ws_params)
    for mine in wo_params.values():
        required = mine.default is P.empty and mine.kind not in (P.VAR_KEYWORD, P.VAR_POSITIONAL)
        if required and mine.name not in ws.parameters and not ws_takes_any_keyword:
            problems.append(f"wsio requires {mine.name}")
    return problems


def defining_class(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    raise AssertionError(name)  # pragma: no cover


def public_members(cls: type) -> dict[str, Any]:
    """Public members that websockets' own classes define (not object's, Exception's or Enum's)."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in ("builtins", "enum") or not klass.__module__.startswith("websockets"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                members[name] = value
    return members


# -- live instances, to look up what wsio sets per instance ------------------------------


def live_members() -> dict[type, set[str]]:
    """The members of a live instance of each connection and server class: {class: names}."""
    members: dict[type, set[str]] = {}

    def record(*instances: Any) -> None:
        for instance in instances:
            members[type(instance)] = set(dir(instance))

    with wsio.sync.server.serve(lambda ws: ws.recv(), "127.0.0.1", 0) as sync_server:
        thread = threading.Thread(target=sync_server.serve_forever, daemon=True)
        thread.start()
        port = sync_server.socket.getsockname()[1]
        with wsio.sync.client.connect(f"ws://127.0.0.1:{port}/") as sync_client:
            for _ in range(500):
                if sync_server.connections:
                    break
                threading.Event().wait(0.01)
            record(sync_server, sync_client, *sync_server.connections)
        sync_server.shutdown()
        thread.join(5)

    async def run_asyncio() -> None:
        opened: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def handler(websocket: Any) -> None:
            opened.set_result(websocket)
            await websocket.wait_closed()

        async with wsio.serve(handler, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/") as client:
                record(server, client, await asyncio.wait_for(opened, 5))

    asyncio.run(run_asyncio())
    assert len(members) == 6
    return members


@pytest.fixture(scope="module")
def live() -> dict[type, set[str]]:
    return live_members()


def differences(relative: str, live: dict[type, set[str]]) -> list[tuple[str, str]]:
    theirs = importlib.import_module("websockets" + (f".{relative}" if relative else ""))
    ours = importlib.import_module("wsio" + (f".{relative}" if relative else ""))
    found: list[tuple[str, str]] = []
    for name in public_names(theirs):
        their_obj = getattr(theirs, name)
        if not hasattr(ours, name):
            found.append((f"{theirs.__name__}.{name}", "missing"))
            continue
        our_obj = getattr(ours, name)
        if not (inspect.isfunction(their_obj) or inspect.isclass(their_obj)):
            continue
        key = qualified(their_obj)
        if key in NOT_COMPARED:
            continue
        found += [(key, problem) for problem in compare_signatures(their_obj, our_obj, key)]
        if not inspect.isclass(their_obj) or not inspect.isclass(our_obj):
            continue
        on_instance = live.get(our_obj, set())
        for member, value in public_members(their_obj).items():
            member_key = f"{qualified(defining_class(their_obj, member))}.{member}"
            if not hasattr(our_obj, member) and member not in on_instance:
                found.append((member_key, "missing"))
                continue
            if inspect.isfunction(value):
                found += [
                    (member_key, problem)
                    for problem in compare_signatures(getattr(their_obj, member), getattr(our_obj, member), member_key)
                ]
    return found


def test_websockets_is_17() -> None:
    assert websockets.__version__.startswith("17."), websockets.__version__


@pytest.mark.parametrize("relative", MODULES, ids=lambda relative: relative or "package")
def test_every_name_exists(relative: str) -> None:
    theirs = importlib.import_module("websockets" + (f".{relative}" if relative else ""))
    ours = importlib.import_module("wsio" + (f".{relative}" if relative else ""))
    missing = [name for name in public_names(theirs) if not hasattr(ours, name)]
    assert missing == []


@pytest.mark.parametrize("relative", MODULES, ids=lambda relative: relative or "package")
def test_signatures_accept_websockets_calls(relative: str, live: dict[type, set[str]]) -> None:
    unexpected = [found for found in differences(relative, live) if found not in KNOWN]
    assert unexpected == []


def test_known_differences_are_still_differences(live: dict[type, set[str]]) -> None:
    found = {difference for relative in MODULES for difference in differences(relative, live)}
    assert sorted(set(KNOWN) - found) == []


def test_names_point_at_the_same_objects() -> None:
    """Re-exports, not copies: one class per concept, whichever path imports it."""
    import wsio.asyncio.client
    import wsio.asyncio.server
    import wsio.datastructures
    import wsio.frames
    import wsio.http11
    import wsio.legacy.client
    import wsio.legacy.server
    import wsio.uri

    assert wsio.asyncio.server.ServerConnection is wsio.ServerConnection is wsio.legacy.server.WebSocketServerProtocol
    assert wsio.asyncio.client.ClientConnection is wsio.legacy.client.WebSocketClientProtocol
    assert wsio.legacy.server.WebSocketServer is wsio.Server
    assert wsio.http11.Request is wsio.Request and wsio.http11.Response is wsio.Response
    assert wsio.datastructures.Headers is wsio.Headers
    assert wsio.frames.Close is wsio.Close and wsio.frames.Opcode is wsio.Opcode
    assert wsio.uri.parse_uri("ws://example.com/x").path == "/x"
    assert wsio.asyncio.server.broadcast is wsio.broadcast


def test_exception_aliases_catch_what_wsio_raises() -> None:
    """An ``except`` written for websockets' finer exception catches wsio's."""
    assert issubclass(wsio.SecurityError, wsio.exceptions.TooManyHeaders)
    assert issubclass(wsio.PayloadTooBig, wsio.exceptions.TooManyFragments)
    assert issubclass(wsio.InvalidProxy, wsio.exceptions.InvalidProxyStatus)
    assert issubclass(wsio.InvalidMessage, wsio.exceptions.InvalidMethod)
    # And they stay under websockets' common base, as in websockets.
    for name in websockets.exceptions.__all__:
        assert issubclass(getattr(wsio.exceptions, name), wsio.WebSocketException), name


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1014, 3000, 4999, 999, 1004, 1005, 1006, 1015, 2999, 5000])
def test_close_check_accepts_the_codes_websockets_accepts(code: int) -> None:
    try:
        websockets.frames.Close(code, "").check()
    except websockets.exceptions.ProtocolError:
        with pytest.raises(wsio.ProtocolError, match="invalid status code"):
            wsio.frames.Close(code, "").check()
    else:
        wsio.frames.Close(code, "").check()


def test_request_protocol_is_the_http_version() -> None:
    import wsio.http11

    request = wsio.http11.Request("/", wsio.Headers())
    assert request.protocol == request.version == websockets.http11.Request("/", websockets.Headers()).protocol


def test_frame_serializes_as_websockets_does() -> None:
    frame = wsio.frames.Frame(wsio.Opcode.TEXT, b"hello")
    theirs = websockets.frames.Frame(websockets.frames.Opcode.TEXT, b"hello")
    assert frame.serialize(mask=False) == theirs.serialize(mask=False)
    masked = frame.serialize(mask=True)
    assert masked[1] == 0x80 | 5 and len(masked) == 2 + 4 + 5


def test_type_aliases_are_usable_in_annotations() -> None:
    from wsio.typing import Data, LoggerLike, Origin, StatusLike, Subprotocol

    def handler(message: Data, status: StatusLike, logger: LoggerLike) -> Subprotocol:
        return Subprotocol(str(message))

    assert handler("chat", 200, None) == "chat"  # type: ignore[arg-type]
    assert Origin("https://example.com") == "https://example.com"
