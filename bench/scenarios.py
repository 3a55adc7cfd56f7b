"""The scenarios, and how long each mode spends on them.

A *group* is what one fresh server process (or client process) serves: its
cases share the process, and the runner goes round the implementations group
by group, A B C A B C, once per repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import size_label

SIZES = [16, 1024, 64 * 1024, 1024 * 1024]
PIPELINE = 64  # messages in flight


@dataclass
class Case:
    name: str  # e.g. "pingpong-1KiB": a row of the tables
    op: str  # what the load generator / client does: echo, broadcast, idle, connrate
    unit: str
    higher_is_better: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def deflate(self) -> bool:
        return bool(self.params.get("deflate"))


@dataclass
class Group:
    name: str
    title: str
    cases: list[Case]
    server_scenario: str = "echo"  # what the server does (servers/__init__.py)
    chart: str = ""  # the PNG it is drawn in (default: its own)


@dataclass
class Mode:
    name: str
    repeats: int
    warmup: float
    duration: float
    idle_conns: int = 5000
    idle_repeats: int = 1
    conns: int = 100
    large_conns: int = 8  # connections of the conns-1MiB group
    broadcast_conns: int = 1000
    verify: bool = False
    pipeline: int = PIPELINE  # messages in flight in the pipelined scenarios
    #: Fewer idle connections for some servers (the table says so): a thread-per-connection
    #: server takes minutes to open 5,000 on two busy cores, for the same KiB/conn.
    idle_caps: dict[str, int] = field(default_factory=dict)
    groups: list[str] | None = None  # None: all
    client_groups: list[str] | None = None


MODES = {
    # About three minutes on a 2-core machine: every scenario, short windows.
    "quick": Mode("quick", repeats=3, warmup=0.05, duration=0.1, idle_repeats=1, idle_caps={"websockets_sync": 1000}),
    # The figures for the docs: longer windows, more repeats.
    "full": Mode("full", repeats=5, warmup=0.3, duration=1.0, idle_repeats=3),
    # Only checks that everything works (tests/test_bench_smoke.py): tiny counts, replies verified.
    "smoke": Mode(
        "smoke",
        repeats=1,
        warmup=0.02,
        duration=0.06,
        idle_conns=50,
        conns=10,
        large_conns=2,
        broadcast_conns=20,
        verify=True,
        pipeline=8,
    ),
}


def server_groups(mode: Mode) -> list[Group]:
    echo = lambda size, window, **extra: {"size": size, "window": window, "conns": 1, **extra}  # noqa: E731
    groups = [
        # First: where echo groups share a server process (quick mode), the connection
        # rate is the most sensitive to what earlier cases left behind.
        Group("connrate", "Connect, handshake, close", [Case("connrate", "connrate", "conn/s", params={"concurrency": 8})]),
        Group(
            "pingpong",
            "Ping-pong on one connection",
            [Case(f"pingpong-{size_label(s)}", "echo", "msg/s", params=echo(s, 1)) for s in SIZES],
        ),
        Group(
            "pipelined",
            f"Pipelined, {mode.pipeline} messages in flight",
            [Case(f"pipelined-{size_label(s)}", "echo", "msg/s", params=echo(s, mode.pipeline)) for s in SIZES],
        ),
        Group(
            "conns",
            f"{mode.conns} connections, each ping-pong with 64 B",
            [Case(f"conns{mode.conns}-64B", "echo", "msg/s", params={"size": 64, "window": 1, "conns": mode.conns})],
        ),
        # Several large messages alive at once, each in its own bytes object: what the
        # allocator does with them shows here (docs/topics/performance.md, "Large messages").
        Group(
            "conns-1MiB",
            f"{mode.large_conns} connections, each ping-pong with 1 MiB",
            [
                Case(
                    f"conns{mode.large_conns}-1MiB",
                    "echo",
                    "msg/s",
                    params={"size": 1024 * 1024, "window": 1, "conns": mode.large_conns},
                )
            ],
        ),
        Group(
            "broadcast",
            f"Broadcast of 64 B to {mode.broadcast_conns} connections",
            [
                Case(
                    f"broadcast{mode.broadcast_conns}-64B",
                    "broadcast",
                    "deliveries/s",
                    params={"size": 64, "conns": mode.broadcast_conns, "window": 8},
                )
            ],
            server_scenario="broadcast",
        ),
        Group(
            "idle",
            f"{mode.idle_conns} idle connections: server memory",
            [Case(f"idle{mode.idle_conns}", "idle", "KiB/conn", False, {"conns": mode.idle_conns})],
        ),
        Group(
            "idle-deflate",
            f"{mode.idle_conns} idle connections with compression: server memory",
            [Case(f"idle{mode.idle_conns}-deflate", "idle", "KiB/conn", False, {"conns": mode.idle_conns, "deflate": True})],
            chart="idle",
        ),
        Group(
            "deflate",
            "Compression on: 1 KiB JSON-like messages",
            [
                Case("deflate-pingpong-1KiB", "echo", "msg/s", params=echo(1024, 1, deflate=True)),
                Case("deflate-pipelined-1KiB", "echo", "msg/s", params=echo(1024, mode.pipeline, deflate=True)),
            ],
        ),
    ]
    if mode.groups is not None:
        groups = [g for g in groups if g.name in mode.groups]
    return groups


def asgi_groups(mode: Mode) -> list[Group]:
    """The ASGI suite (``--suite asgi``): a Starlette echo on uvicorn, one server per WebSocket engine.

    Small messages, where the engine's own cost per message shows: uvicorn,
    Starlette and the app's ``receive()``/``send()`` are the same for every engine.
    """
    echo = lambda window, conns=1: {"size": 16, "window": window, "conns": conns}  # noqa: E731
    groups = [
        Group("connrate", "Connect, handshake, close", [Case("connrate", "connrate", "conn/s", params={"concurrency": 8})]),
        Group("pingpong", "Ping-pong on one connection", [Case("pingpong-16B", "echo", "msg/s", params=echo(1))]),
        Group(
            "pipelined",
            f"Pipelined, {mode.pipeline} messages in flight",
            [Case("pipelined-16B", "echo", "msg/s", params=echo(mode.pipeline))],
        ),
        Group(
            "conns",
            f"{mode.conns} connections, each ping-pong with 16 B",
            [Case(f"conns{mode.conns}-16B", "echo", "msg/s", params=echo(1, mode.conns))],
        ),
        Group(
            "idle",
            f"{mode.idle_conns} idle connections: server memory",
            [Case(f"idle{mode.idle_conns}", "idle", "KiB/conn", False, {"conns": mode.idle_conns})],
        ),
    ]
    if mode.groups is not None:
        groups = [g for g in groups if g.name in mode.groups]
    return groups


def client_groups(mode: Mode) -> list[Group]:
    echo = lambda size, window, **extra: {"size": size, "window": window, "deflate": False, **extra}  # noqa: E731
    groups = [
        Group(
            "pingpong",
            "Ping-pong on one connection",
            [Case(f"pingpong-{size_label(s)}", "echo", "msg/s", params=echo(s, 1)) for s in SIZES],
        ),
        Group(
            "pipelined",
            f"Pipelined, {mode.pipeline} messages in flight",
            [Case(f"pipelined-{size_label(s)}", "echo", "msg/s", params=echo(s, mode.pipeline)) for s in SIZES],
        ),
        Group("connrate", "Connect, handshake, close (one at a time)", [Case("connrate", "connrate", "conn/s")]),
        Group(
            "deflate",
            "Compression on: 1 KiB JSON-like messages",
            [
                Case("deflate-pingpong-1KiB", "echo", "msg/s", params=echo(1024, 1, deflate=True)),
                Case("deflate-pipelined-1KiB", "echo", "msg/s", params=echo(1024, mode.pipeline, deflate=True)),
            ],
        ),
        # Last: where the groups share a client process (quick mode), the earlier cases run as before.
        # The blocking clients run a thread per connection.
        Group(
            "conns",
            f"{mode.conns} connections from one client, each ping-pong with 64 B",
            [Case(f"conns{mode.conns}-64B", "echo", "msg/s", params=echo(64, 1, conns=mode.conns))],
        ),
    ]
    if mode.client_groups is not None:
        groups = [g for g in groups if g.name in mode.client_groups]
    return groups
