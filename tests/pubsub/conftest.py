"""The hub fixtures. (``async def`` tests run through tests/conftest.py; each test
module sets its own pytest-timeout bound (``pytestmark``), above the async bound.)
"""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from .redis_server import REDIS_SERVER, RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free port; killed by PID afterwards."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (make system-deps installs it)")
    import redis  # noqa: F401  (the test extra installs it)

    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["memory", "redis"])
def hub_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each test using it runs on both backends."""
    if request.param == "memory":
        yield None
        return
    server = request.getfixturevalue("redis_server")
    yield server.url


@pytest.fixture(autouse=True)
def _pubsub_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wsio.pubsub")
