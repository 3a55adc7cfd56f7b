"""The HTTP header containers, at the path websockets has them (``websockets.datastructures``).

They are defined in :mod:`wsio.protocol.http11`; this module re-exports them.
"""

from __future__ import annotations

from .protocol.http11 import Headers, HeadersLike, MultipleValuesError

__all__ = ["Headers", "HeadersLike", "MultipleValuesError"]
