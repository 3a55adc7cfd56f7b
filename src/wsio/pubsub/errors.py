"""What the pub/sub hub raises, under wsio's :class:`~wsio.WebSocketError`."""

from __future__ import annotations

from ..exceptions import WebSocketError

__all__ = ["HubUnavailable"]


class HubUnavailable(WebSocketError):
    """The hub can't reach its broker (Redis), or it is closed.

    Raised by :meth:`Hub.publish` once the message has gone to this process's
    subscribers but could not go to the other processes: ``delivered`` tells
    how many local connections it reached (``None`` when publishing didn't
    get that far, e.g. on a closed hub).
    """

    def __init__(self, message: str, delivered: int | None = None) -> None:
        super().__init__(message)
        self.delivered = delivered
