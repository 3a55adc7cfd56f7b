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
new connections across them, with no process in the middle. The parent starts
the workers, supervises them, and stops them: a worker that dies is replaced
by a new one on the same port (the parent holds the port with a socket bound,
not listening, with ``SO_REUSEPORT``), while the others go on serving their
connections; a worker that keeps dying makes the parent give up and stop
everything (``max_restarts`` within ``restart_window``).
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
import re
import signal
import socket
import ssl
import time
from collections import deque
from typing import Any, Callable

from .asyncio.server import serve

__all__ = ["run"]

logger = logging.getLogger("wsio.server")

#: What the worker processes are started with (see the module docstring).
START_METHOD = "spawn"

#: ``run()``'s defaults for replacing dead workers: a worker may die
#: ``MAX_RESTARTS`` times within ``RESTART_WINDOW`` seconds and be replaced; one
#: more death in that window and ``run()`` gives up. A replacement starts
#: ``RESTART_BACKOFF`` seconds after its predecessor died, twice that after the
#: next death in the window, and so on, at most ``RESTART_BACKOFF_MAX`` seconds.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
RESTART_BACKOFF = 0.1
RESTART_BACKOFF_MAX = 10.0


#: What a worker needs to build its own TLS context: the certificate file, the
#: key file (``None``: in the certificate file) and the key's password. An
#: :class:`ssl.SSLContext` can't be pickled to a spawned worker; paths can.
TLSFiles = tuple[str, str | None, str | bytes | None]

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PEM_ENCRYPTED = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        # The same class (FileNotFoundError, PermissionError...), a message without "[Errno 2]".
        raise type(exc)(f"can't read the TLS {what} file {path}: {exc.strerror or exc}") from None


def _bad_tls(message: str) -> ssl.SSLError:
    return ssl.SSLError(ssl.SSL_ERROR_SSL, message)  # with two arguments, str() is the message alone


class _NoPassword(Exception):
    """Raised instead of OpenSSL's prompt on the terminal for the password of an encrypted key."""


def _no_password() -> str:
    raise _NoPassword


def _tls_context(certfile: str, keyfile: str | None = None, password: str | bytes | None = None) -> ssl.SSLContext:
    """A server :class:`ssl.SSLContext` with the certificate chain of ``certfile`` and its key.

    ``keyfile`` ``None``: the key is in ``certfile``. A file that can't be read
    raises :exc:`OSError`; one that isn't PEM, a key that doesn't match the
    certificate, an encrypted key without ``password`` (OpenSSL would prompt
    on the terminal) or with a wrong one raise :exc:`ssl.SSLError`; each with a
    one-line message that names the file.
    """
    cert_pem = _read_pem(certfile, "certificate")
    key_path = certfile if keyfile is None else keyfile
    key_pem = cert_pem if keyfile is None else _read_pem(keyfile, "key")
    if not _PEM_CERTIFICATE.search(cert_pem):
        raise _bad_tls(f"{certfile} is not a PEM certificate: no '-----BEGIN CERTIFICATE-----' line")
    if not _PEM_PRIVATE_KEY.search(key_pem):
        if keyfile is None:
            raise _bad_tls(f"{certfile} holds no private key ('-----BEGIN PRIVATE KEY-----') and no key file was given")
        raise _bad_tls(f"{keyfile} is not a PEM private key: no '-----BEGIN PRIVATE KEY-----' line")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, _no_password if password is None else password)
    except _NoPassword:
        raise _bad_tls(f"the private key in {key_path} is encrypted, and no password was given") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise _bad_tls(f"the private key in {key_path} doesn't match the certificate in {certfile}") from None
        if password is not None and _PEM_ENCRYPTED.search(key_pem):
            raise _bad_tls(f"can't decrypt the private key in {key_path}: wrong password?") from None
        raise _bad_tls(f"can't load the TLS certificate {certfile} with the key in {key_path}: {exc}") from None
    except OSError as exc:  # a file changed or vanished since it was read
        raise type(exc)(f"can't read the TLS certificate {certfile} or its key {key_path}: {exc.strerror or exc}") from None
    return context


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
    tls: TLSFiles | None = None,
) -> None:
    """The body of a worker process; ``ready`` is the write end of a pipe, for its PID once it listens.

    ``tls``: the files of the TLS certificate, loaded here into this worker's
    own context (contexts can't be pickled).
    """
    os.environ["WSIO_WORKER"] = str(index)
    if log_level is not None:
        logging.basicConfig(level=log_level, format=f"%(asctime)s worker-{index} %(levelname)s %(name)s: %(message)s")
    # SIGINT may arrive (Ctrl-C reaches the whole process group) before the
    # event loop handles it; the worker then just exits.
    try:
        if tls is not None:
            serve_options = {**serve_options, "ssl": _tls_context(*tls)}
        app = _resolve(target)
        asyncio.run(_serve_app(app, host, port, serve_options, lambda _server: _report_ready(ready)))
    except KeyboardInterrupt:
        pass


def _report_ready(ready: Any) -> None:
    ready.send(os.getpid())
    ready.close()


def _describe_exit(exitcode: int | None) -> str:
    """``-9`` -> ``"was killed by SIGKILL"``; ``1`` -> ``"exited with code 1"``."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


class _Slot:
    """One worker's place: its current process, and when its predecessors died."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None  # a multiprocessing Process, None while waiting to restart
        self.reader: Any = None  # the read end of its "ready" pipe, until it reported
        self.pid: int | None = None  # the PID of the last worker that reported ready
        self.dead_pid: int | None = None  # the PID of the worker being replaced, until its replacement listens
        self.deaths: deque[float] = deque()  # monotonic times, within the restart window
        self.restart_at: float | None = None

    def close_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def bury(self, now: float, restart_window: float) -> tuple[int | None, str]:
        """Its process has exited: forget it, count the death; its PID and how it died."""
        process = self.process
        how = _describe_exit(process.exitcode)
        pid = process.pid
        process.close()
        self.process = None
        self.dead_pid = pid
        self.close_reader()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - restart_window:
            self.deaths.popleft()
        return pid, how


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
    max_restarts: int = MAX_RESTARTS,
    restart_window: float = RESTART_WINDOW,
    restart_backoff: float = RESTART_BACKOFF,
    ssl_certfile: str | os.PathLike[str] | None = None,
    ssl_keyfile: str | os.PathLike[str] | None = None,
    ssl_keyfile_password: str | bytes | None = None,
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
            worker listens (once: not again when a worker is replaced).
        max_restarts, restart_window: with ``workers > 1``, a worker that dies
            is replaced, up to ``max_restarts`` times (default 5) within
            ``restart_window`` seconds (default 60) for each worker number; the
            next death within the window stops everything (see below).
            ``max_restarts=0`` replaces none: the first death stops everything.
        restart_backoff: seconds between a worker's death and the start of its
            replacement (default 0.1), doubled for each further death of that
            worker number within ``restart_window``, at most 10 s.
        ssl_certfile: serve ``wss://``: the path of a PEM file with the
            server's certificate, followed by the intermediate certificates
            (default ``None``: no TLS). Each worker loads it into its own
            :class:`ssl.SSLContext` (``PROTOCOL_TLS_SERVER``); this process
            loads it first, so that a missing or bad file raises
            :exc:`OSError` (:exc:`ssl.SSLError` for a bad one) here, at once,
            with a message that names it.
        ssl_keyfile: the path of the PEM private key (default ``None``: it is
            in ``ssl_certfile``).
        ssl_keyfile_password: the password of an encrypted key (default
            ``None``: the key is not encrypted), pickled to each worker.
        serve_options: passed to :func:`wsio.serve` in each worker (picklable
            values when ``workers > 1``). ``ssl=`` takes an
            :class:`ssl.SSLContext` with ``workers=1`` only: a context can't be
            sent to worker processes, so ``workers > 1`` raises
            :exc:`TypeError`; give ``ssl_certfile=`` instead.

    SIGTERM or SIGINT (Ctrl-C) stops the server: each worker stops accepting,
    closes its connections with 1001 (going away), runs ``shutdown()`` and
    exits.

    If a worker dies on its own (a crash, the OOM killer, a SIGKILL), its
    connections are lost, but the other workers go on serving theirs: after
    ``restart_backoff`` a new worker, with the same number and a new PID, starts
    listening on the same port (a WARNING on the ``wsio.server`` logger says
    which worker died and how, an INFO line when its replacement listens). A
    worker that dies more than ``max_restarts`` times within
    ``restart_window`` seconds (one that can't start, say) is not replaced
    again: ``run`` logs an ERROR saying so, stops the other workers as on
    SIGTERM and raises ``RuntimeError``, so that a crash loop ends, and a
    supervisor above (systemd, Kubernetes) sees the failure.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, not {max_restarts}")
    tls: TLSFiles | None = None
    if ssl_certfile is not None:
        if serve_options.get("ssl") is not None:
            raise ValueError("give ssl= (a context) or ssl_certfile= (a file), not both")
        tls = (os.fspath(ssl_certfile), None if ssl_keyfile is None else os.fspath(ssl_keyfile), ssl_keyfile_password)
    elif ssl_keyfile is not None or ssl_keyfile_password is not None:
        raise ValueError("ssl_keyfile= and ssl_keyfile_password= go with ssl_certfile=")
    if workers > 1 and serve_options.get("ssl") is not None:
        raise TypeError(
            f"ssl={serve_options['ssl']!r} can't be sent to worker processes (an SSLContext can't be pickled): "
            f"with workers > 1, pass ssl_certfile= (and ssl_keyfile=) instead, and each worker loads the certificate"
        )
    if tls is not None:
        # Loaded here first, so that a bad file fails once, now, not in every worker.
        loaded = _tls_context(*tls)
        if workers == 1:
            serve_options["ssl"] = loaded
        else:  # resolved now: a worker restarted later loads the same files wherever this process is then
            tls = (os.path.abspath(tls[0]), None if tls[1] is None else os.path.abspath(tls[1]), tls[2])
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
    # The holder keeps the port (bound with SO_REUSEPORT, not listening) for as
    # long as run() runs: a replacement worker always finds it free to join.
    holder = _check_port(host, port)
    port = holder.getsockname()[1]
    options = {**serve_options, "reuse_port": True}
    root = logging.getLogger()
    log_level = root.getEffectiveLevel() if root.handlers else None
    context: Any = multiprocessing.get_context(START_METHOD)
    slots = [_Slot(index) for index in range(workers)]

    def start(slot: _Slot) -> None:
        # One pipe per worker for its "ready": no lock shared between workers,
        # which a worker killed while holding it would leave taken.
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main,
            args=(handler_or_app, host, port, options, writer, slot.index, log_level, tls),
            name=f"wsio-worker-{slot.index}",
        )
        process.start()
        writer.close()
        slot.process, slot.reader, slot.restart_at = process, reader, None

    stopping: list[int] = []

    def request_stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed: str | None = None
    announced = False
    try:
        for slot in slots:
            start(slot)
        while not stopping and failed is None:
            now = time.monotonic()
            for slot in slots:
                if slot.restart_at is not None and now >= slot.restart_at:
                    start(slot)
            waiting = [slot.process.sentinel for slot in slots if slot.process is not None]
            waiting += [slot.reader for slot in slots if slot.reader is not None]
            timeout = min([0.2] + [slot.restart_at - now for slot in slots if slot.restart_at is not None])
            multiprocessing.connection.wait(waiting, max(0.0, timeout))
            if stopping:  # a Ctrl-C reaches the workers too: their exits are no deaths
                break
            for slot in slots:
                if slot.reader is None or not slot.reader.poll():
                    continue
                try:
                    pid = slot.reader.recv()
                except (EOFError, OSError):
                    pid = None  # it died before listening: its sentinel tells
                slot.close_reader()
                if pid is None:
                    continue
                if slot.dead_pid is not None:
                    logger.info(
                        "worker %d restarted: pid %d (was %d), listening on port %d", slot.index, pid, slot.dead_pid, port
                    )
                    slot.dead_pid = None
                slot.pid = pid
                if not announced and all(s.pid is not None for s in slots):
                    announced = True
                    pids = [s.pid for s in slots if s.pid is not None]
                    logger.info("serving on %s:%d with %d workers: pids %s", host, port, workers, sorted(pids))
                    if on_ready is not None:
                        on_ready(port, pids)
            now = time.monotonic()
            for slot in slots:
                if slot.process is None or slot.process.exitcode is None:
                    continue
                pid, how = slot.bury(now, restart_window)
                if len(slot.deaths) > max_restarts:
                    failed = (
                        f"worker {slot.index} (pid {pid}) {how}; it died {len(slot.deaths)} "
                        f"time{'s' if len(slot.deaths) != 1 else ''} within "
                        f"{restart_window:g}s, more than max_restarts={max_restarts}: giving up"
                    )
                    break
                delay = min(restart_backoff * 2 ** (len(slot.deaths) - 1), RESTART_BACKOFF_MAX)
                logger.warning(
                    "worker %d (pid %s) %s; restarting it in %.1fs (restart %d of at most %d within %gs)",
                    slot.index,
                    pid,
                    how,
                    delay,
                    len(slot.deaths),
                    max_restarts,
                    restart_window,
                )
                slot.restart_at = now + delay
        if failed is not None:
            logger.error("%s; stopping the other workers", failed)
        else:
            logger.info("received %s; stopping %d workers", signal.Signals(stopping[0]).name, workers)
        processes = [slot.process for slot in slots if slot.process is not None]
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
        for slot in slots:
            slot.close_reader()
    if failed is not None:
        raise RuntimeError(failed)
