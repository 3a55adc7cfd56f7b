"""``python -m bench``: run the benchmarks, write results/latest.{md,json} and the charts.

python -m bench                    # BENCH_MODE or quick: every scenario, ~3 minutes
python -m bench --mode full        # more repeats, longer windows: the figures for the docs
python -m bench --smoke --out DIR  # each scenario once with tiny counts: checks it works
python -m bench --servers wsio_asyncio,picows_core --side server --groups pingpong
python -m bench --suite asgi       # a Starlette echo on uvicorn, per WebSocket engine: results/asgi.{md,json}
python -m bench --uvloop           # every asyncio server, client and the load generator on uvloop
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import shutil
import signal
import sys

from .procs import LOG_DIR, Child
from .report import write
from .run import run
from .scenarios import MODES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=sorted(MODES), default=os.environ.get("BENCH_MODE") or "quick")
    parser.add_argument("--smoke", action="store_true", help="same as --mode smoke")
    parser.add_argument(
        "--suite",
        choices=["main", "asgi"],
        default="main",
        help="main: each library's own server and client (latest.*); "
        "asgi: a Starlette echo on uvicorn with wsio's, websockets-sansio's and wsproto's engines (asgi.*, servers only)",
    )
    parser.add_argument("--side", choices=["server", "client", "both"], default="both")
    parser.add_argument("--servers", help="comma-separated modules of bench/servers (default: all installed in the suite)")
    parser.add_argument("--clients", help="comma-separated modules of bench/clients (default: all installed)")
    parser.add_argument("--groups", help="comma-separated scenario groups (pingpong, pipelined, conns, broadcast, idle, ...)")
    parser.add_argument("--repeats", type=int, help="override the mode's repeats")
    parser.add_argument("--duration", type=float, help="override the mode's measuring window, in seconds")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run every asyncio server, client and the load generator on uvloop (pip install uvloop, or the bench extra)",
    )
    args = parser.parse_args(argv)
    if args.uvloop and importlib.util.find_spec("uvloop") is None:
        parser.error("--uvloop: uvloop isn't installed (pip install -e '.[bench]' or pip install uvloop)")

    mode = MODES["smoke" if args.smoke else args.mode]
    changes: dict[str, object] = {}
    if args.repeats:
        changes["repeats"] = args.repeats
    if args.duration:
        changes["duration"] = args.duration
    if args.groups:
        changes["groups"] = changes["client_groups"] = args.groups.split(",")
    mode = dataclasses.replace(mode, **changes)  # type: ignore[arg-type]
    sides = ("server", "client") if args.side == "both" else (args.side,)

    def interrupted(*_: object) -> None:
        Child.stop_all()
        sys.exit(130)

    signal.signal(signal.SIGTERM, interrupted)
    try:
        data = run(
            mode,
            servers=args.servers.split(",") if args.servers else None,
            clients=args.clients.split(",") if args.clients else None,
            sides=sides,
            log=lambda line: print(line, flush=True),
            suite=args.suite,
            loop="uvloop" if args.uvloop else "asyncio",
        )
    except KeyboardInterrupt:
        Child.stop_all()
        return 130
    for path in write(data, args.out, charts=not args.no_charts):
        print(f"wrote {os.path.relpath(path)}")
    failed = [
        f"{side} {case} {impl}"
        for side in ("server", "client")
        for case, entry in data[side].items()
        for impl, r in entry["results"].items()
        if "error" in r or r.get("errors")
    ]
    if failed:
        print(f"{len(failed)} figures had errors (see the Errors section); the processes' stderr is in {LOG_DIR}")
    else:
        shutil.rmtree(LOG_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
