"""The interop test plan, shared by every peer: the messages, the closes, the echo protocol.

Every client, whatever its language, runs the same *session*: open with the
subprotocols offered, send each message case (split into fragments when the case
says so) and check the echo, then close. Every server runs the same *echo*:

* a data message is echoed, in ``n`` fragments after ``CMD fragments n``;
* ``CMD close CODE REASON`` makes the server close with that code and reason;
* ``CMD ping`` makes it ping the client and answer ``CMD pong`` once the pong came.

Both sides log what they saw as events (``open``, ``message``, ``close``) and
:func:`check_session` compares both logs with what the plan says. The payloads
are made byte for byte the same by this module and by ``node/payload.js``.

The logic of both roles is written once, as generators of operations
(``("recv",)``, ``("send", data)``, ...) that :func:`run_sync` or
:func:`run_async` performs on an adapter of a library's connection.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any, Callable, Generator, Iterable

#: Offered by every client, by preference; every server supports only the second.
SUBPROTOCOLS = ["wsio-interop.unknown", "wsio-interop"]
SUBPROTOCOL = "wsio-interop"
#: Largest message in the plan is 16 MiB; every endpoint accepts twice that.
MAX_SIZE = 32 * 1024 * 1024
#: Seconds any single step (open, one echo, close) may take.
STEP_TIMEOUT = 30.0

BLOCK = 65536
MiB = 1024 * 1024
SIZES = [0, 125, 126, 65535, 65536, MiB, 16 * MiB]


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # "text" or "binary"
    size: int  # bytes (UTF-8 bytes for text)
    seed: int
    fragments: int = 1  # sent (and echoed) as this many frames

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.size}B" + (f"-in-{self.fragments}" if self.fragments > 1 else "")

    def payload(self) -> str | bytes:
        data = make_payload(self.kind, self.size, self.seed)
        return data.decode() if self.kind == "text" else data

    def expected(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "size": self.size,
            "sha256": hashlib.sha256(make_payload(self.kind, self.size, self.seed)).hexdigest(),
        }

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _messages(sizes: Iterable[int]) -> list[Case]:
    shapes = [(kind, size, 1) for size in sizes for kind in ("text", "binary")]
    shapes += [("text", 300_000, 3), ("binary", 300_000, 4), ("text", 20, 4), ("binary", 70_000, 2)]
    return [Case(kind, size, seed, fragments) for seed, (kind, size, fragments) in enumerate(shapes, 1)]


#: Every message case, for Node's ws: up to 16 MiB.
MESSAGES = _messages(SIZES)
#: The same without 16 MiB (up to 1 MiB), for the other peers: the suite stays fast.
MESSAGES_UP_TO_1MIB = _messages(size for size in SIZES if size <= MiB)

#: (who closes, code, reason): each is a session of its own (one short echo first).
CLOSES = [
    ("client", 1000, ""),
    ("client", 4000, "custom reason \u2713"),
    ("client", 1001, "going away"),
    ("server", 1000, ""),
    ("server", 4000, "custom reason \u2713"),
    ("server", 1001, "going away"),
    ("client", 3000, "\u2713" * 41),  # the longest reason a close frame can carry: 123 bytes
    ("server", 4999, "x" * 123),
]


#: permessage-deflate parameters of the "params" compression setting, for both sides.
DEFLATE_PARAMS = {
    "server_no_context_takeover": True,
    "client_no_context_takeover": True,
    "server_max_window_bits": 10,
    "client_max_window_bits": 11,
}
#: What the response's Sec-WebSocket-Extensions must then say.
DEFLATE_PARAMS_AGREED = ("server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits=10")


@dataclasses.dataclass
class Session:
    messages: list[Case]
    close: tuple[str, int, str] = ("client", 1000, "")
    #: The client's permessage-deflate: "on" (default offer), "off", "params" (DEFLATE_PARAMS).
    compression: str = "on"
    expect_deflate: bool = True  # whether both sides must have negotiated it
    expect_params: bool = False  # whether they must have agreed on DEFLATE_PARAMS

    def as_json(self, url: str) -> dict[str, Any]:
        by, code, reason = self.close
        return {
            "url": url,
            "subprotocols": SUBPROTOCOLS,
            "compression": self.compression,
            "messages": [case.as_json() for case in self.messages],
            "close": {"by": by, "code": code, "reason": reason},
            "timeout": STEP_TIMEOUT,
        }


# -- payloads ---------------------------------------------------------------------------


def _fix_tail(buf: bytearray) -> bytearray:
    """Replace a UTF-8 character cut by the end of ``buf`` with ``z``s."""
    i = len(buf) - 1
    while i >= 0 and buf[i] & 0xC0 == 0x80:
        i -= 1
    if i >= 0:
        lead = buf[i]
        need = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3
        if len(buf) - i < need:
            buf[i:] = b"z" * (len(buf) - i)
    return buf


@functools.lru_cache(maxsize=None)
def _block(kind: str, seed: int) -> bytes:
    x = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
    out = bytearray()
    while len(out) < BLOCK:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        r = x >> 8
        if kind == "binary":
            out.append(r & 0xFF if (r >> 16) & 7 == 0 else r & 0x1F)
        else:
            v = r % 40
            if v < 32:
                out.append(0x61 + (v & 15))
            elif v < 36:
                out += "\u00e9".encode()
            elif v < 38:
                out += "\u2713".encode()
            else:
                out.append(0x20)
    del out[BLOCK:]
    return bytes(_fix_tail(out) if kind == "text" else out)


@functools.lru_cache(maxsize=64)
def make_payload(kind: str, size: int, seed: int) -> bytes:
    """The bytes of a case's message (UTF-8 for text), the same as ``node/payload.js``."""
    block = _block(kind, seed)
    data = bytearray((block * (size // BLOCK + 1))[:size])
    return bytes(_fix_tail(data) if kind == "text" else data)


def split(message: str | bytes, n: int) -> list[Any]:
    """``message`` in ``n`` pieces of nearly equal length (fewer if it is shorter)."""
    n = max(1, min(n, len(message)))
    return [message[i * len(message) // n : (i + 1) * len(message) // n] for i in range(n)]


def message_event(message: Any) -> dict[str, Any]:
    if message is None:
        return {"event": "message", "type": None}
    data = message.encode() if isinstance(message, str) else bytes(message)
    return {
        "event": "message",
        "type": "text" if isinstance(message, str) else "binary",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


# -- the two roles, as generators of operations -----------------------------------------

Op = tuple[Any, ...]
Logic = Generator[Op, Any, Any]


def echo_logic(log: Callable[[dict[str, Any]], None]) -> Logic:
    """The echo server of every Python library; ``node/server.js`` does the same."""
    log({"event": "open", **(yield ("info",))})
    fragments = 1
    while True:
        message = yield ("recv", None)
        if message is None:
            break
        if isinstance(message, str) and message.startswith("CMD "):
            _, verb, *args = message.split(" ", 3)
            if verb == "fragments":
                fragments = int(args[0])
            elif verb == "close":
                yield ("close", int(args[0]), args[1] if len(args) > 1 else "")
            elif verb == "ping":
                yield ("send", "CMD pong" if (yield ("ping",)) else "CMD no pong")
            continue
        log(message_event(message))
        if fragments > 1:
            yield ("send_fragments", split(message, fragments))
        else:
            yield ("send", message)
    code, reason = yield ("closed",)
    log({"event": "close", "code": code, "reason": reason})


def client_logic(session: Session) -> Logic:
    """A session as every Python client runs it; ``node/driver.js`` does the same."""
    events = [{"event": "open", **(yield ("info",))}]
    fragments = 1
    for case in session.messages:
        if case.fragments != fragments:
            fragments = case.fragments
            yield ("send", f"CMD fragments {fragments}")
        payload = case.payload()
        if case.fragments > 1:
            yield ("send_fragments", split(payload, case.fragments))
        else:
            yield ("send", payload)
        events.append(message_event((yield ("recv", STEP_TIMEOUT))))
    # Keepalive both ways: the server pings us, then we ping it (None: this client can't).
    yield ("send", "CMD ping")
    events.append({"event": "ping", "by": "server", "ok": (yield ("recv", STEP_TIMEOUT)) == "CMD pong"})
    events.append({"event": "ping", "by": "client", "ok": (yield ("ping",))})
    by, code, reason = session.close
    if by == "client":
        yield ("close", code, reason)
    else:
        yield ("send", f"CMD close {code} {reason}")
        extra = yield ("recv", STEP_TIMEOUT)
        assert extra is None, f"a message after CMD close: {message_event(extra)}"
    code, reason = yield ("closed",)
    events.append({"event": "close", "code": code, "reason": reason})
    return events


def run_sync(logic: Logic, conn: Any) -> Any:
    result = None
    while True:
        try:
            op = logic.send(result)
        except StopIteration as stop:
            return stop.value
        result = getattr(conn, op[0])(*op[1:])


async def run_async(logic: Logic, conn: Any) -> Any:
    result = None
    while True:
        try:
            op = logic.send(result)
        except StopIteration as stop:
            return stop.value
        result = await getattr(conn, op[0])(*op[1:])


# -- checks -----------------------------------------------------------------------------


def _split_events(events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    assert events and events[0]["event"] == "open", f"no open event: {events[:3]}"
    messages = [{k: e.get(k) for k in ("type", "size", "sha256")} for e in events if e["event"] == "message"]
    closes = [e for e in events if e["event"] == "close"]
    return events[0], messages, closes[0] if closes else None


def check_session(
    session: Session,
    client_events: list[dict[str, Any]],
    server_events: list[dict[str, Any]],
    *,
    client_echo: str = "code+reason",
    server_echo: str = "code+reason",
    client_pings: bool = True,
) -> None:
    """Assert both sides saw what the plan says: negotiation, every message, the close.

    ``*_echo`` says how that side answers a close: ``"code+reason"`` echoes both
    (wsio, ws, websockets, browsers), ``"code"`` the code only (RFC 6455 5.5.1's
    minimum), ``"1000"`` answers 1000 whatever it got (websocket-client).
    """
    for side, events in (("client", client_events), ("server", server_events)):
        errors = [e for e in events if e["event"] == "error"]
        assert not errors, f"{side}: {errors}"
        opened, messages, closed = _split_events(events)
        assert opened["subprotocol"] == SUBPROTOCOL, f"{side} subprotocol: {opened}"
        negotiated = "permessage-deflate" in (opened["extensions"] or "")
        assert negotiated is session.expect_deflate, f"{side}: permessage-deflate negotiated={negotiated}: {opened}"
        if session.expect_params:
            missing = [p for p in DEFLATE_PARAMS_AGREED if p not in opened["extensions"]]
            assert not missing, f"{side}: {missing} not agreed: {opened}"
        if "deflate" in opened:  # the library's own view (wsio: protocol.deflate)
            assert opened["deflate"] is session.expect_deflate, f"{side}: {opened}"
        for case, got in zip(session.messages, messages):
            assert got == case.expected(), f"{side} received {case.name} wrong: {got}"
        assert len(messages) == len(session.messages), f"{side}: {len(messages)} of {len(session.messages)} messages"
        for e in events:
            if "sent_sha256" in e:  # a JS peer's own payload: the same bytes as ours
                assert e["sent_sha256"] == e["sha256"], f"{side} sent other bytes than it got back: {e}"
        assert closed is not None, f"{side} saw no close: {events[-3:]}"
    pings = {e["by"]: e["ok"] for e in client_events if e["event"] == "ping"}
    assert pings.get("server") is True, f"the server's ping got no pong: {pings}"
    assert pings.get("client") is (True if client_pings else None), f"the client's ping: {pings}"
    by, code, reason = session.close
    initiator, other = (client_events, server_events) if by == "client" else (server_events, client_events)
    other_close = _split_events(other)[2]
    assert (other_close["code"], other_close["reason"]) == (code, reason), f"{by} closed with {code} {reason!r}: {other_close}"
    echo = server_echo if by == "client" else client_echo
    expected = {"code+reason": (code, reason), "code": (code, ""), "1000": (1000, "")}[echo]
    echoed = _split_events(initiator)[2]
    assert (echoed["code"], echoed["reason"]) == expected, f"{by} closed with {code} {reason!r}, answer: {echoed}"
