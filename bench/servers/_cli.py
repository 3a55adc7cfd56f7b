"""The command line every server module shares."""

from __future__ import annotations

import argparse
from typing import Callable

from ..common import install_exit_guards, raise_fd_limit


def main(run: Callable[[int, str], None], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", choices=["echo", "broadcast"], default="echo")
    args = parser.parse_args()
    raise_fd_limit()
    install_exit_guards()
    run(args.port, args.scenario)
