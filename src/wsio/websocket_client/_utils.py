"""websocket-client's ``_utils``: ``NoLock``, ``validate_utf8`` and the error helpers."""

from __future__ import annotations

import codecs
from typing import Any

__all__ = ["NoLock", "validate_utf8", "extract_err_message", "extract_error_code"]


class NoLock:
    """A context manager that locks nothing: the lock of a connection used from one thread only."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        return None


def validate_utf8(utfbytes: str | bytes) -> bool:
    """Whether ``utfbytes`` is valid UTF-8 (the check wsio applies to every text message).

    A ``str`` is valid unless it holds lone surrogates (which UTF-8 can't carry).
    """
    if isinstance(utfbytes, str):
        data = utfbytes.encode("utf-8", "surrogatepass")
    else:
        data = bytes(utfbytes)
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def extract_err_message(exception: BaseException) -> str | None:
    """The message of ``exception`` (its first argument as text), or ``None`` if it has none."""
    if exception.args:
        return str(exception.args[0])
    return None


def extract_error_code(exception: BaseException) -> int | None:
    """The error number of ``exception`` (an ``OSError``'s ``errno``-style first argument), or ``None``."""
    if len(exception.args) > 1 and isinstance(exception.args[0], int):
        return exception.args[0]
    return None
