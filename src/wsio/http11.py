"""The handshake's HTTP messages, at the path websockets has them (``websockets.http11``).

:class:`Request` is what ``process_request`` receives (``path``, ``headers``,
plus ``method`` and ``version``); :class:`Response` is what it may return and
what ``process_response`` receives (``status_code``, ``reason_phrase``,
``headers``, ``body``). Both are defined in :mod:`wsio.protocol.http11`.
"""

from __future__ import annotations

from .protocol.handshake import SERVER, USER_AGENT
from .protocol.http11 import Request, Response

__all__ = ["SERVER", "USER_AGENT", "Request", "Response"]
