"""Run ``async def`` tests in a fresh event loop (no pytest-asyncio), and the hub fixtures.

A coroutine test is bounded by ``ASYNC_TEST_TIMEOUT`` seconds (or its
``async_timeout`` marker) and fails if the event loop reported an error that
nobody handled: such errors are bugs even when the assertions pass. Each test
module sets its own pytest-timeout bound (``pytestmark``), above those.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Iterator

import pytest

from .redis_server import REDIS_SERVER, RedisServer

ASYNC_TEST_TIMEOUT = 10.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker("async_timeout")
    timeout = marker.args[0] if marker is not None else ASYNC_TEST_TIMEOUT
    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        await asyncio.wait_for(function(**kwargs), timeout)

    asyncio.run(main())
    if loop_errors:
        pytest.fail(f"the event loop reported unhandled errors: {loop_errors}")
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_timeout(seconds): bound of an async test (default 10 s)")


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
