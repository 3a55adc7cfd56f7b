"""websocket-client's ``_logging``: ``enableTrace()`` and the ``websocket`` logger's helpers.

Tracing also turns on wsio's own ``wsio`` logger, which reports what the
connection does (handshakes, frames, closes).
"""

from __future__ import annotations

import logging

__all__ = [
    "enableTrace",
    "dump",
    "error",
    "warning",
    "debug",
    "trace",
    "isEnabledForError",
    "isEnabledForDebug",
    "isEnabledForTrace",
]

_logger = logging.getLogger("websocket")
_logger.addHandler(logging.NullHandler())
_wsio_logger = logging.getLogger("wsio")
_traceEnabled = False
_trace_handler: logging.Handler | None = None
_default_level = _logger.getEffectiveLevel()
_wsio_default_level = _wsio_logger.level


def enableTrace(traceable: bool, handler: logging.Handler | None = None, level: str = "DEBUG") -> None:
    """Log the connection's traffic to ``handler`` (default: a stderr handler) at ``level``; or stop.

    Calling it again replaces the previous handler instead of adding a second one.
    """
    global _traceEnabled, _trace_handler
    for logger in (_logger, _wsio_logger):
        if _trace_handler is not None and _trace_handler in logger.handlers:
            logger.removeHandler(_trace_handler)
    if traceable:
        _trace_handler = handler if handler is not None else logging.StreamHandler()
        numeric = logging.getLevelName(level) if isinstance(level, str) else level
        for logger in (_logger, _wsio_logger):
            logger.addHandler(_trace_handler)
            logger.setLevel(numeric)
        _traceEnabled = True
    else:
        _trace_handler = None
        _traceEnabled = False
        _logger.setLevel(_default_level)
        _wsio_logger.setLevel(_wsio_default_level)


def dump(title: str, message: str) -> None:
    """Log ``message`` under a ``--- title ---`` banner, when tracing."""
    if _traceEnabled:
        _logger.debug(f"--- {title} ---")
        _logger.debug(message)
        _logger.debug("-----------------------")


def error(msg: str) -> None:
    _logger.error(msg)


def warning(msg: str) -> None:
    _logger.warning(msg)


def debug(msg: str) -> None:
    _logger.debug(msg)


def info(msg: str) -> None:
    _logger.info(msg)


def trace(msg: str) -> None:
    """Log ``msg`` at debug level, when tracing."""
    if _traceEnabled:
        _logger.debug(msg)


def isEnabledForError() -> bool:
    return _logger.isEnabledFor(logging.ERROR)


def isEnabledForDebug() -> bool:
    return _logger.isEnabledFor(logging.DEBUG)


def isEnabledForTrace() -> bool:
    return _traceEnabled
