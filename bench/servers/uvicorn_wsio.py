"""A Starlette echo on uvicorn with wsio's engine (``--ws wsio.asgi:UvicornProtocol``)."""

from __future__ import annotations

from ._cli import main
from ._uvicorn import serve

if __name__ == "__main__":
    main(lambda port, scenario: serve("wsio.asgi:UvicornProtocol", "wsio", port, scenario), __doc__)
