"""wsio against other WebSocket implementations, both ways, on one shared plan.

Peers: Node's ``ws`` (``node/``, installed by ``npm ci --prefix tests/interop/node``),
headless Chromium (Debian's, through playwright), Python ``websockets`` (asyncio and
sync APIs) and ``websocket-client``. Each pair runs the message plan (text and
binary of 0 B to 16 MiB with ws, to 1 MiB with the others, fragmented both ways)
with permessage-deflate on, off on the wsio side, and off on the peer's side, then
:data:`plan.CLOSES`; the wsio side's own frame log shows what crossed the wire.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from . import peers
from .plan import CLOSES, MESSAGES, MESSAGES_UP_TO_1MIB, Case, Session, check_session

pytestmark = pytest.mark.timeout(240)

WSIO = ("wsio.asyncio", "wsio.sync")
#: Peers running the client sessions against the wsio servers.
CLIENT_PEERS = ("node-ws", "chromium", "websockets.asyncio", "websockets.sync", "websocket-client")
#: Peers running the echo server for the wsio clients.
SERVER_PEERS = ("node-ws", "websockets.asyncio", "websockets.sync")
#: Compression modes: both sides on with their defaults; the wsio side off; the peer off;
#: the wsio side, then the peer, asking for plan.DEFLATE_PARAMS (no context takeover,
#: 10- and 11-bit windows), the other side on with its defaults.
MODES = ("on", "wsio-off", "peer-off", "wsio-params", "peer-params")
#: What a peer can't do: Chromium always offers permessage-deflate with its defaults;
#: websocket-client has no permessage-deflate.
PEER_MODES = {"chromium": ("on", "wsio-off", "wsio-params"), "websocket-client": ("peer-off",)}
#: How each answers a close (plan.check_session): websocket-client answers 1000
#: whatever it got; the others, wsio included, echo code and reason.
CLOSE_ECHO = {"websocket-client": "1000"}

PAIRS = [(server, client) for server in WSIO for client in CLIENT_PEERS] + [
    (server, client) for client in WSIO for server in SERVER_PEERS
]


def _peer(server: str, client: str) -> str:
    return client if server.startswith("wsio") else server


def _ids(cases: list[tuple[str, ...]]) -> list[str]:
    return ["/".join(case) for case in cases]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with peers.chromium() as browser:
        yield browser


def run_client(request: pytest.FixtureRequest, client: str, url: str, sessions: list[Session]) -> list[list[dict[str, Any]]]:
    if client == "node-ws":
        return peers.node_client(url, sessions)
    if client == "chromium":
        return peers.chromium_client(request.getfixturevalue("browser"), url, sessions)
    if client == "websocket-client":
        return peers.websocket_client(url, sessions)
    if client.endswith("asyncio"):
        return peers.asyncio_client(client, url, sessions)
    return peers.sync_client(client, url, sessions)


def run_pair(request: pytest.FixtureRequest, server: str, client: str, sessions: list[Session], server_compression: str) -> None:
    with peers.wire_log() as wire, peers.start_server(server, server_compression) as listening:
        results = run_client(request, client, listening.url, sessions)
        server_results = listening.sessions(len(sessions))
    for session, client_events, server_events in zip(sessions, results, server_results):
        check_session(
            session,
            client_events,
            server_events,
            client_echo=CLOSE_ECHO.get(client, "code+reason"),
            server_echo=CLOSE_ECHO.get(server, "code+reason"),
            client_pings=client != "chromium",  # a page can't send a ping
        )
    # On the wire, as the wsio side logged its frames: compressed both ways when
    # negotiated (every peer here compresses), never otherwise; fragmented as asked.
    if any(session.expect_deflate for session in sessions):
        assert wire.count(">", rsv1=True) and wire.count("<", rsv1=True), f"no compressed frame both ways: {wire.frames[:20]}"
    else:
        assert not wire.count(">", rsv1=True) and not wire.count("<", rsv1=True), "compressed frames without permessage-deflate"
    continuations = sum(case.fragments - 1 for session in sessions for case in session.messages)
    assert wire.count(">", "CONT") == continuations, f"wsio sent {wire.count('>', 'CONT')} continuation frames"
    peer = _peer(server, client)
    if peer != "chromium":  # which frames its large messages in 64 KiB pieces itself
        if peer.startswith("websockets"):  # ends a message sent from an iterable with an empty frame
            continuations += sum(case.fragments > 1 for session in sessions for case in session.messages)
        assert wire.count("<", "CONT") == continuations, f"wsio got {wire.count('<', 'CONT')} continuation frames"


ECHO_CASES = [(server, client, mode) for server, client in PAIRS for mode in PEER_MODES.get(_peer(server, client), MODES)]


@pytest.mark.parametrize("server,client,mode", ECHO_CASES, ids=_ids(ECHO_CASES))
def test_echo(request: pytest.FixtureRequest, server: str, client: str, mode: str) -> None:
    """Every message of the plan echoed intact; permessage-deflate negotiated only when both want it."""
    side, setting = mode.split("-") if "-" in mode else ("both", mode)
    wsio_is_server = server.startswith("wsio")
    server_compression = setting if side == "both" or (side == "wsio") == wsio_is_server else "on"
    client_compression = setting if side == "both" or (side == "wsio") != wsio_is_server else "on"
    # 16 MiB with ws, with each side's default deflate settings; up to 1 MiB otherwise.
    messages = MESSAGES if _peer(server, client) == "node-ws" and setting != "params" else MESSAGES_UP_TO_1MIB
    session = Session(
        messages,
        compression=client_compression,
        expect_deflate="off" not in (server_compression, client_compression),
        expect_params=setting == "params",
    )
    run_pair(request, server, client, [session], server_compression)


@pytest.mark.parametrize("server,client", PAIRS, ids=_ids(PAIRS))
def test_close(request: pytest.FixtureRequest, server: str, client: str) -> None:
    """Close codes and reasons, sent by either side, seen by the other and echoed back."""
    # A page's WebSocket.close() only takes 1000 and 3000-4999.
    closes = [c for c in CLOSES if not (client == "chromium" and c[0] == "client" and c[1] == 1001)]
    compression = "off" if client == "websocket-client" else "on"
    sessions = [
        Session([Case("text", 200, 99)], close=c, compression=compression, expect_deflate=compression == "on") for c in closes
    ]
    run_pair(request, server, client, sessions, "on")
