"""A Starlette echo on uvicorn with wsproto's engine (``--ws wsproto``)."""

from __future__ import annotations

from ._cli import main
from ._uvicorn import serve

if __name__ == "__main__":
    main(lambda port, scenario: serve("wsproto", "wsproto", port, scenario), __doc__)
