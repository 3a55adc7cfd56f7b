"""Run ``async def`` tests with ``asyncio.run``: no pytest-asyncio.

A coroutine test runs in a fresh event loop, bounded by its directory's
default (below) or an ``async_timeout(seconds)`` marker, and fails if the loop
reported an error that nobody handled ("Task exception was never retrieved",
an exception in a callback, ...): such errors are bugs even when the test's
assertions pass. ``allow_loop_errors`` lifts that for a test that provokes them.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's per-example deadline (200 ms) and its too_slow health check
# measure the machine, not the code: under make test, both cores are busy and
# an example that takes 30 ms idle can take 400 ms. Tests bound their own time.
settings.register_profile("wsio", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wsio")

#: Default bound of an ``async def`` test, per directory of tests/.
ASYNC_TEST_TIMEOUTS = {"asyncio": 5.0, "pubsub": 10.0, "proxy": 20.0}
DEFAULT_ASYNC_TEST_TIMEOUT = 10.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker("async_timeout")
    if marker is not None:
        timeout = marker.args[0]
    else:
        timeout = ASYNC_TEST_TIMEOUTS.get(pyfuncitem.path.parent.name, DEFAULT_ASYNC_TEST_TIMEOUT)
    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        await asyncio.wait_for(function(**kwargs), timeout)

    if pyfuncitem.get_closest_marker("uvloop") is not None:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    if loop_errors and pyfuncitem.get_closest_marker("allow_loop_errors") is None:
        pytest.fail(f"the event loop reported unhandled errors: {loop_errors}")
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_timeout(seconds): bound of an async test (default: per directory)")
    config.addinivalue_line("markers", "allow_loop_errors: don't fail on errors the event loop reports")
    config.addinivalue_line("markers", "uvloop: run the async test on uvloop's event loop instead of asyncio's")
