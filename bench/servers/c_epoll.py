"""The machine's limit: a WebSocket echo server in C on one epoll loop (bench/native/ws_echo.c).

Built with ``cc -O2`` into a cache directory on first use, then run in place of
this Python process (``exec``: the PID the runner measures is the C server's).
Same command line and READY line as every server here; no permessage-deflate.
"""

from __future__ import annotations

import argparse
import os

from ..common import raise_fd_limit
from ..native import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", choices=["echo", "broadcast"], default="echo")
    args = parser.parse_args()
    binary = build("ws_echo")
    raise_fd_limit()
    os.execv(binary, [binary, str(args.port), args.scenario])


if __name__ == "__main__":
    main()
