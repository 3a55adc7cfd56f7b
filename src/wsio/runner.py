"""``wsio.run()``: one WebSocket server on N worker processes sharing a port.

Worker processes start with multiprocessing's ``"spawn"`` method, not
``"fork"``: a forked worker would inherit whatever the parent holds at that
moment (an event loop, threads, locks held by them, open connections to Redis
shared by every worker), and forking a process that runs threads is unsafe.
A spawned worker is a fresh interpreter that imports the application itself,
which behaves the same on Linux and macOS and costs only a short start-up. The
price: the handler must be importable by the workers (a ``"module:attr"``
string, or a function or an app object defined at module level).

Every worker listens on the same port with ``SO_REUSEPORT``: the kernel spreads
new connections across them, with no process in the middle. The parent only
starts the workers, waits, and stops them.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import socket
import time
from typing import Any, Callable

from .asyncio.server import serve

__all__ = ["run"]

logger = logging.getLogger("wsio.server")

#: What the worker processes are started with (see the module docstring).
START_METHOD = "spawn"


def _resolve(target: Any) -> Any:
    """``"package.module:attr.sub"`` -> the object; anything else as is."""
    if not isinstance(target, str):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:attr', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


async def _serve_app(
    app: Any,
    host: str | None,
    port: int,
    serve_options: dict[str, Any],
    on_ready: Callable[[Any], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then close every connection with 1001."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    options = dict(serve_options)
    for hook in ("process_request", "process_response"):
        if hook not in options and callable(getattr(app, hook, None)):
            options[hook] = getattr(app, hook)
    startup = getattr(app, "startup", None)
    if callable(startup):
        await startup()
    try:
        async with serve(app, host, port, **options) as server:
            if on_ready is not None:
                on_ready(server)
            await stop
            logger.info("worker %d shutting down", os.getpid())
        # Leaving serve() closed every connection with 1001 (going away).
    finally:
        # The signal handlers stay until the loop closes: a second Ctrl-C or
        # SIGTERM during the shutdown doesn't cut it short.
        shutdown = getattr(app, "shutdown", None)
        if callable(shutdown):
            await shutdown()


def _worker_main(
    target: Any,
    host: str | None,
    port: int,
    serve_options: dict[str, Any],
    ready: Any,
    index: int,
    log_level: int | None,
) -> None:
    """The body of a worker process."""
    os.environ["WSIO_WORKER"] = str(index)
    if log_level is not None:
        logging.basicConfig(level=log_level, format=f"%(asctime)s worker-{index} %(levelname)s %(name)s: %(message)s")
    # SIGINT may arrive (Ctrl-C reaches the whole process group) before the
    # event loop handles it; the worker then just exits.
    try:
        app = _resolve(target)
        asyncio.run(_serve_app(app, host, port, serve_options, lambda _server: ready.put((index, os.getpid()))))
    except KeyboardInterrupt:
        pass


def _check_port(host: str | None, port: int) -> socket.socket:
    """Fail early if the port is taken; return a socket that holds it (and picks it if 0).

    The check binds without ``SO_REUSEPORT``, which fails even when the port's
    holders use it: without the check, workers would silently join a server
    already running there and share its traffic. The returned socket binds with
    ``SO_REUSEPORT`` and doesn't listen: it keeps the port without taking
    connections.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"can't serve on {host}:{port}: the address is in use") from None
            raise
        if port == 0:
            port = probe.getsockname()[1]
            address = (address[0], port, *address[2:])
    holder = socket.socket(family, kind, proto)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(address)
    return holder


def run(
    handler_or_app: Any,
    host: str | None = "127.0.0.1",
    port: int = 8765,
    *,
    workers: int = 1,
    shutdown_timeout: float | None = None,
    on_ready: Callable[[int, list[int]], None] | None = None,
    **serve_options: Any,
) -> None:
    """Serve ``handler_or_app`` on ``host``:``port`` in ``workers`` processes, until SIGTERM or SIGINT.

    ::

        wsio.run("myapp:handler", "0.0.0.0", 8765, workers=4, max_size=2**20)

    Args:
        handler_or_app: a ``"module:attr"`` string naming it, or the object
            itself, which workers must be able to import (defined at module
            level; with ``workers=1`` anything goes). It is a coroutine function
            ``handler(websocket)``, or an *app*: an object called as
            ``await app(websocket)`` that may also have ``async startup()`` and
            ``async shutdown()`` methods, run in each worker around serving
            (open a :class:`~wsio.Hub` there, say), and ``process_request`` /
            ``process_response`` methods, used unless given in ``serve_options``.
            An app object is pickled to each worker.
        host, port: where to listen (default ``127.0.0.1:8765``); port 0 picks a
            free port, shared by all workers.
        workers: how many processes (default 1: serve in this process). With
            more, each is started with the ``"spawn"`` method and listens with
            ``reuse_port=True``; the environment variable ``WSIO_WORKER`` tells
            each its number, from 0.
        shutdown_timeout: seconds the workers get to close their connections
            after SIGTERM or SIGINT before they are killed (default:
            ``close_timeout`` + 5, i.e. 15 s).
        on_ready: called in this process as ``on_ready(port, pids)`` once every
            worker listens.
        serve_options: passed to :func:`wsio.serve` in each worker (picklable
            values when ``workers > 1``).

    SIGTERM or SIGINT (Ctrl-C) stops the server: each worker stops accepting,
    closes its connections with 1001 (going away), runs ``shutdown()`` and
    exits. If a worker dies on its own, the others are stopped too and ``run``
    raises ``RuntimeError``: a supervisor (systemd, Kubernetes) restarts the
    whole, rather than ``run`` looping on a worker that can't start.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    if shutdown_timeout is None:
        close_timeout = serve_options.get("close_timeout", 10)
        shutdown_timeout = (close_timeout or 10) + 5
    if workers == 1:
        app = _resolve(handler_or_app)

        def ready_here(server: Any) -> None:
            if on_ready is not None:
                on_ready(server.sockets[0].getsockname()[1], [os.getpid()])

        try:
            asyncio.run(_serve_app(app, host, port, serve_options, ready_here))
        except KeyboardInterrupt:
            pass
        return
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Windows
        raise NotImplementedError("workers > 1 needs SO_REUSEPORT, which this platform lacks")
    if isinstance(handler_or_app, str):
        _resolve(handler_or_app)  # an import error shows here, once, not in every worker
    else:
        try:
            pickle.dumps(handler_or_app)
        except Exception as exc:
            raise TypeError(
                f"workers can't import {handler_or_app!r} ({exc}): define it at module level or pass it as 'module:attr'"
            ) from exc
    holder = _check_port(host, port)
    port = holder.getsockname()[1]
    options = {**serve_options, "reuse_port": True}
    root = logging.getLogger()
    log_level = root.getEffectiveLevel() if root.handlers else None
    context: Any = multiprocessing.get_context(START_METHOD)
    ready = context.Queue()
    processes = [
        context.Process(
            target=_worker_main,
            args=(handler_or_app, host, port, options, ready, index, log_level),
            name=f"wsio-worker-{index}",
        )
        for index in range(workers)
    ]
    stopping: list[int] = []

    def request_stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed: str | None = None
    try:
        for process in processes:
            process.start()
        pending = workers
        pids: dict[int, int] = {}
        while not stopping and failed is None:
            dead = [p for p in processes if p.exitcode is not None]
            if dead:
                failed = f"worker {dead[0].name} (pid {dead[0].pid}) exited with code {dead[0].exitcode}"
                break
            if pending:
                try:
                    index, pid = ready.get(timeout=0.1)
                except queue.Empty:
                    continue
                pids[index] = pid
                pending -= 1
                if not pending:
                    logger.info("serving on %s:%d with %d workers: pids %s", host, port, workers, sorted(pids.values()))
                    if on_ready is not None:
                        on_ready(port, [pids[i] for i in sorted(pids)])
            else:
                multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.2)
        if failed is not None:
            logger.error("%s; stopping the others", failed)
        else:
            logger.info("received %s; stopping %d workers", signal.Signals(stopping[0]).name, workers)
        for process in processes:
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + shutdown_timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.exitcode is None:
                logger.warning(
                    "worker %s (pid %s) didn't stop within %ss; killing it", process.name, process.pid, shutdown_timeout
                )
                process.kill()
                process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
        ready.close()
    if failed is not None:
        raise RuntimeError(failed)
