"""What every client module shares: the command line, the messages, the measuring window."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any, AsyncContextManager, Callable, ContextManager, Protocol

from ..common import binary_payload, cpu_seconds, install_exit_guards, json_messages, raise_fd_limit, result, running_loop_name


MIN_COUNT = 3  # completions a window must hold: an empty one says more about a stall than a rate
#: With many connections (``case["conns"]``): the most a case may take beyond its warm-up and window,
#: opening, measuring and closing them all (the runner waits 60 s more than warm-up and window).
CONNS_SLACK = 45.0


class Window:
    """Counts completed messages (or connections) during ``duration`` seconds after ``warmup``.

    Call :meth:`add` once per completion; it returns False once the window is
    over, which is when the client stops.
    """

    def __init__(self, warmup: float, duration: float, peer_pid: int | None, warm_count: int = 1) -> None:
        now = time.perf_counter()
        self.warmup = warmup
        self.start = now + warmup
        self.duration = duration
        self.warm_count = warm_count  # and steady state starts once the first burst is back
        self.seen = 0
        self.peer_pid = peer_pid
        self.count = 0
        self.phase = 0  # 0 warming up, 1 measuring, 2 over
        self.figures: dict[str, Any] = {}

    def begin(self) -> None:
        """Start the warm-up now: once every connection is open, so that opening them isn't measured."""
        self.start = time.perf_counter() + self.warmup

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


class Counter(Protocol):
    """What counts completions: a :class:`Window`, or one shared by threads under a lock."""

    def add(self) -> bool: ...


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
        # Steady state once a whole window per connection is back.
        warm = case.get("window", 1) * case.get("conns", 1)
        window = Window(case["warmup"], case["duration"], case.get("peer_pid"), warm)
        try:
            run(url, case, window)
            if not window.over:
                raise RuntimeError("the client stopped before the end of its window")
            result(name=case["name"], **window.figures)
        except Exception as exc:  # noqa: BLE001 - reported, the next case still runs
            result(name=case["name"], error=f"{type(exc).__name__}: {exc}")


async def echo_async(send: Callable[[Any], Any], recv: Callable[[], Any], case: dict[str, Any], window: Counter) -> None:
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


def echo_sync(send: Callable[[Any], Any], recv: Callable[[], Any], case: dict[str, Any], window: Counter) -> None:
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


# ---------------------------------------------------------------- many connections (``case["conns"]``)

#: Opens one connection and yields its ``(send, recv)``; closes it on the way out.
SyncOpener = Callable[[], ContextManager[tuple[Callable[[Any], Any], Callable[[], Any]]]]
AsyncOpener = Callable[[], AsyncContextManager[tuple[Callable[[Any], Any], Callable[[], Any]]]]


def conns_limit(case: dict[str, Any]) -> float:
    return float(case["warmup"] + case["duration"] + CONNS_SLACK)


async def echo_async_conns(opener: AsyncOpener, case: dict[str, Any], window: Window) -> None:
    """``case["conns"]`` connections, opened one after another; then each runs :func:`echo_async`
    concurrently in its own task, one window counting the replies of all. The connections are
    closed together at the end, and the case ends within :func:`conns_limit` (and a close time-out)."""

    async def body() -> None:
        opened: list[AsyncContextManager[Any]] = []
        tasks: list[asyncio.Future[None]] = []
        try:
            ends = []
            for _ in range(case["conns"]):
                connection = opener()
                ends.append(await connection.__aenter__())
                opened.append(connection)
            window.begin()
            tasks = [asyncio.ensure_future(echo_async(send, recv, case, window)) for send, recv in ends]
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(c.__aexit__(None, None, None) for c in opened), return_exceptions=True)

    await within(body(), case)


async def within(work: Any, case: dict[str, Any]) -> None:
    """Await ``work``; a TimeoutError that says what didn't finish past :func:`conns_limit`."""
    limit = conns_limit(case)
    start = time.monotonic()
    try:
        await asyncio.wait_for(work, limit)
    except asyncio.TimeoutError:
        if time.monotonic() - start < limit:
            raise  # a library's own time-out, such as opening a connection
        raise TimeoutError(f"{case['conns']} connections: not done within {limit:.0f}s") from None


def echo_sync_conns(opener: SyncOpener, case: dict[str, Any], window: Window) -> None:
    """``case["conns"]`` connections, one thread each (a blocking client's way): every thread
    opens its connection, they all wait until every one is open, then each runs :func:`echo_sync`,
    one window (under a lock) counting the replies of all. Each thread closes its own connection;
    the threads are joined within :func:`conns_limit` (daemons: one that hangs can't hold the process)."""
    conns = case["conns"]
    lock = threading.Lock()
    errors: list[BaseException] = []
    # The last thread to arrive starts the warm-up, before any of them sends.
    open_limit = conns_limit(case) / 2
    gate = threading.Barrier(conns, action=window.begin, timeout=open_limit)

    class Shared:
        def add(self) -> bool:
            with lock:
                return window.add()

    shared = Shared()

    def one() -> None:
        try:
            with opener() as (send, recv):
                gate.wait()
                echo_sync(send, recv, case, shared)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            gate.abort()  # the others stop waiting for this one

    threads = [threading.Thread(target=one, name=f"bench-conn-{i}", daemon=True) for i in range(conns)]
    deadline = time.monotonic() + conns_limit(case)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = sum(thread.is_alive() for thread in threads)
    if running:
        raise TimeoutError(f"{running} of {conns} connection threads still running after {conns_limit(case):.0f}s")
    # The first failure, not the others' broken barrier.
    first = [exc for exc in errors if not isinstance(exc, threading.BrokenBarrierError)]
    if first:
        raise first[0]
    if errors:
        raise TimeoutError(f"the {conns} connections didn't all open within {open_limit:.0f}s")
