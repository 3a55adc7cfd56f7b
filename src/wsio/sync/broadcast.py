"""``broadcast()`` for threaded connections: one message to many, each sent from a thread pool."""

from __future__ import annotations

import concurrent.futures
import logging
import sys
from typing import Any, Iterable

from ..protocol.machine import State
from .connection import Connection

__all__ = ["broadcast"]

logger = logging.getLogger("wsio.server")


def broadcast(
    connections: Iterable[Connection],
    message: str | bytes | bytearray | memoryview,
    *,
    raise_exceptions: bool = False,
    text: bool | None = None,
    compress: bool | None = None,
    **kwargs: Any,
) -> int:
    """Send ``message`` to every open connection in ``connections``; return how many it reached.

    ``str`` goes out as a text message, bytes-like as binary; ``text=True``
    sends UTF-8 bytes as text, ``text=False`` a ``str`` as binary.
    Connections that aren't open are skipped. Each ``send()`` runs in a
    :class:`concurrent.futures.ThreadPoolExecutor` made for this call (extra
    keyword arguments, such as ``max_workers``, configure it), so that one
    slow peer doesn't hold up the others; the call returns when every send
    has returned.

    Args:
        connections: the connections to send to.
        message: the message.
        raise_exceptions: ``False`` (default): a failed send is logged at
            WARNING and the others go on; ``True``: the failures are raised
            together in an :exc:`ExceptionGroup` (Python 3.11+; a
            :exc:`RuntimeError` carrying the first before).
        text: force a text (``True``) or binary (``False``) message.
        compress: as for :meth:`Connection.send`.

    Raises:
        TypeError: if ``message`` is neither ``str`` nor bytes-like.
    """
    if isinstance(message, str):
        payload: str | bytes | bytearray | memoryview = message.encode() if text is False else message
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload = bytes(message).decode() if text is True else message
    else:
        raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
    targets = [connection for connection in connections if connection.protocol.state is State.OPEN]
    if not targets:
        return 0
    failures: list[Exception] = []

    def send(connection: Connection) -> bool:
        try:
            connection.send(payload, compress)
        except Exception as exc:
            if raise_exceptions:
                failures.append(exc)
            else:
                connection.logger.warning("skipped broadcast: %s", exc)
            return False
        return True

    kwargs.setdefault("max_workers", min(len(targets), 32))
    with concurrent.futures.ThreadPoolExecutor(thread_name_prefix="wsio-broadcast", **kwargs) as pool:
        reached = sum(pool.map(send, targets))
    if failures:
        if sys.version_info >= (3, 11):
            raise ExceptionGroup("skipped broadcast", failures)  # noqa: F821
        raise RuntimeError(f"skipped broadcast to {len(failures)} connections") from failures[0]
    return reached
