"""What every client module shares: the command line, the messages, the measuring window."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

from ..common import binary_payload, cpu_seconds, install_exit_guards, json_messages, raise_fd_limit, result, running_loop_name


MIN_COUNT = 3  # completions a window must hold: an empty one says more about a stall than a rate


class Window:
    """Counts completed messages (or connections) during ``duration`` seconds after ``warmup``.

    Call :meth:`add` once per completion; it returns False once the window is
    over, which is when the client stops.
    """

    def __init__(self, warmup: float, duration: float, peer_pid: int | None, warm_count: int = 1) -> None:
        now = time.perf_counter()
        self.start = now + warmup
        self.duration = duration
        self.warm_count = warm_count  # and steady state starts once the first burst is back
        self.seen = 0
        self.peer_pid = peer_pid
        self.count = 0
        self.phase = 0  # 0 warming up, 1 measuring, 2 over
        self.figures: dict[str, Any] = {}

    def add(self) -> bool:
        phase = self.phase
        if phase == 1:
            self.count += 1
            now = time.perf_counter()
            if now >= self.end and self.count >= MIN_COUNT:
                self._stop(now)
                return False
            return True
        if phase == 0:
            self.seen += 1
            if self.seen >= self.warm_count and time.perf_counter() >= self.start:
                self.phase = 1
                self.t0, self.p0, self.s0 = time.perf_counter(), time.process_time(), cpu_seconds(self.peer_pid)
                self.end = self.t0 + self.duration
                self.loop = running_loop_name() or "threads"  # which loop the client ran on (--uvloop)
            return True
        return False

    def _stop(self, now: float) -> None:
        self.phase = 2
        elapsed = now - self.t0
        self.figures = {
            "count": self.count,
            "elapsed": elapsed,
            "rate": self.count / elapsed,
            "client_cpu": round((time.process_time() - self.p0) / elapsed, 3),
            "server_cpu": round((cpu_seconds(self.peer_pid) - self.s0) / elapsed, 3),
            "loop": self.loop,
        }

    @property
    def over(self) -> bool:
        return self.phase == 2


class Messages:
    """What a client sends in turn: one binary payload, or 64 JSON texts when compression is on."""

    def __init__(self, size: int, deflate: bool) -> None:
        if deflate:
            self.items: list[Any] = json_messages(64, size)
        else:
            self.items = [binary_payload(size)]
        self.i = 0

    def next(self) -> Any:
        items = self.items
        i = self.i
        self.i = (i + 1) % len(items)
        return items[i]


def check(got: Any, expected: Any) -> None:
    if got != expected:
        raise AssertionError(f"echo mismatch: got {type(got).__name__} of {len(got)}, expected {len(expected)}")


def main(run: Callable[[str, dict[str, Any], Window], None], description: str | None) -> None:
    """Run each case given on the command line with ``run(url, case, window)``, print its RESULT."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cases", required=True, help="a JSON list of cases, each with the peer's port and pid")
    args = parser.parse_args()
    raise_fd_limit()
    install_exit_guards()
    for case in json.loads(args.cases):
        url = f"ws://127.0.0.1:{case['port']}/"
        window = Window(case["warmup"], case["duration"], case.get("peer_pid"), case.get("window", 1))
        try:
            run(url, case, window)
            if not window.over:
                raise RuntimeError("the client stopped before the end of its window")
            result(name=case["name"], **window.figures)
        except Exception as exc:  # noqa: BLE001 - reported, the next case still runs
            result(name=case["name"], error=f"{type(exc).__name__}: {exc}")


async def echo_async(send: Callable[[Any], Any], recv: Callable[[], Any], case: dict[str, Any], window: Window) -> None:
    """Keep ``case["window"]`` messages in flight with an awaitable send/recv API (1 is ping-pong)."""
    messages = Messages(case["size"], case["deflate"])
    verify = case.get("verify", False)
    pending: list[Any] = []
    for _ in range(case["window"]):
        message = messages.next()
        pending.append(message)
        await send(message)
    head = 0
    while True:
        got = await recv()
        if verify:
            check(got, pending[head])
            head += 1
        if not window.add():
            for _ in range(case["window"] - 1):
                await recv()  # what is still in flight, so that closing doesn't wait on a full queue
            return
        message = messages.next()
        if verify:
            pending.append(message)
        await send(message)


def echo_sync(send: Callable[[Any], Any], recv: Callable[[], Any], case: dict[str, Any], window: Window) -> None:
    """The same with a blocking send/recv API."""
    messages = Messages(case["size"], case["deflate"])
    verify = case.get("verify", False)
    pending: list[Any] = []
    for _ in range(case["window"]):
        message = messages.next()
        pending.append(message)
        send(message)
    head = 0
    while True:
        got = recv()
        if verify:
            check(got, pending[head])
            head += 1
        if not window.add():
            for _ in range(case["window"] - 1):
                recv()  # what is still in flight, so that closing doesn't wait on a full queue
            return
        message = messages.next()
        if verify:
            pending.append(message)
        send(message)
