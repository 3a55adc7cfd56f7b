"""A Starlette echo on uvicorn with websockets' Sans-I/O engine (``--ws websockets-sansio``, uvicorn's ``auto``)."""

from __future__ import annotations

from ._cli import main
from ._uvicorn import serve

if __name__ == "__main__":
    main(lambda port, scenario: serve("websockets-sansio", "websockets", port, scenario), __doc__)
