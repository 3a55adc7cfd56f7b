"""The HTTP header containers, at the path websockets has them (``websockets.datastructures``).

They are defined in :mod:`wsio.protocol.datastructures`; this module re-exports them.
"""

from __future__ import annotations

from .protocol.datastructures import Headers, HeadersLike, MultipleValuesError

__all__ = ["Headers", "HeadersLike", "MultipleValuesError"]
