"""Type aliases under the names websockets gives them, for annotations.

wsio's own signatures use plain types; these names let code annotated for
websockets (``from websockets.typing import Data``) keep its annotations.
"""

from __future__ import annotations

import http
import logging
import os
from typing import Any, NewType, Optional, Sequence, Tuple, Union

__all__ = [
    "Data",
    "BytesLike",
    "DataLike",
    "LoggerLike",
    "PathLike",
    "StatusLike",
    "Origin",
    "Subprotocol",
    "ExtensionName",
    "ExtensionParameter",
    "ExtensionHeader",
    "ConnectionOption",
    "UpgradeProtocol",
]

#: A WebSocket message as received: ``str`` for text, ``bytes`` for binary.
Data = Union[str, bytes]

#: Bytes-like objects that ``send()`` accepts for a binary message.
BytesLike = Union[bytes, bytearray, memoryview]

#: Anything ``send()`` accepts as a whole message.
DataLike = Union[str, bytes, bytearray, memoryview]

#: A logger, or an adapter around one, as the ``logger`` options take.
LoggerLike = Union[logging.Logger, "logging.LoggerAdapter[Any]"]

#: A file system path, as ``unix_serve()`` and ``unix_connect()`` take.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: An HTTP status: an :class:`http.HTTPStatus` or a plain ``int``.
StatusLike = Union[http.HTTPStatus, int]

#: The value of an ``Origin`` header.
Origin = NewType("Origin", str)

#: A subprotocol name, as in ``Sec-WebSocket-Protocol``.
Subprotocol = NewType("Subprotocol", str)

#: An extension name, as in ``Sec-WebSocket-Extensions``.
ExtensionName = NewType("ExtensionName", str)

#: One extension parameter: a name and a value (``None`` for a bare name).
ExtensionParameter = Tuple[str, Optional[str]]

#: An extension with its parameters, as parsed from ``Sec-WebSocket-Extensions``.
ExtensionHeader = Tuple[ExtensionName, Sequence[ExtensionParameter]]

#: A token of the ``Connection`` header.
ConnectionOption = NewType("ConnectionOption", str)

#: A token of the ``Upgrade`` header.
UpgradeProtocol = NewType("UpgradeProtocol", str)
