"""gunicorn with ``-k wsio.asgi.UvicornWorker``: uvicorn workers whose WebSocket engine is wsio's.

examples/asgi/fastapi_app.py under gunicorn, two workers, on 127.0.0.1 and a
port the kernel picks. Its chat rooms subscribe ``wsio_connection(websocket)``
to a hub, which raises LookupError under any other engine: a client that gets
its own "joined" line was served by wsio.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

import gunicorn  # noqa: F401  (the test extra has it and uvicorn-worker: missing, these tests fail)
import uvicorn_worker  # noqa: F401

import wsio.asgi
from tests.helpers import logged_server
from wsio.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [
    "-m", "gunicorn", "fastapi_app:app", "-k", "wsio.asgi.UvicornWorker", "--workers", "2",
    "--chdir", str(ROOT / "examples" / "asgi"), "--bind", "127.0.0.1:0", "--graceful-timeout", "5",
]  # fmt: skip


def _listening(output: str) -> str | None:
    # gunicorn says where it listens, then each worker says it booted: both workers.
    found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", output)
    if found is None or output.count("Application startup complete") < 2:
        return None
    return f"ws://127.0.0.1:{found.group(1)}"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """The example under gunicorn in a subprocess; yields ``ws://127.0.0.1:PORT``."""
    with logged_server(COMMAND, _listening, cwd=ROOT) as address:
        yield address


def test_the_worker_is_uvicorn_s_with_wsio_as_websocket_engine() -> None:
    worker = wsio.asgi.UvicornWorker
    assert issubclass(worker, uvicorn_worker.UvicornWorker)
    assert worker.CONFIG_KWARGS["ws"] == "wsio.asgi:UvicornProtocol"
    assert f"{worker.__module__}.{worker.__qualname__}" == "wsio.asgi.UvicornWorker"  # what -k names
    with pytest.raises(AttributeError):
        wsio.asgi.NoSuchName  # noqa: B018


async def test_echo_and_a_room_through_gunicorn_workers(base: str) -> None:
    # Several connections: with two workers, the kernel spreads them over both.
    for i in range(4):
        async with connect(f"{base}/echo") as client:
            await client.send(f"hello {i}")
            assert await client.recv(timeout=5) == f"hello {i}"
        async with connect(f"{base}/rooms/lobby{i}?name=ada") as client:
            assert await client.recv(timeout=5) == "ada joined"  # the hub wrote it to wsio's connection
            await client.send("hi")
            assert await client.recv(timeout=5) == "ada: hi"
