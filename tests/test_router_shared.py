"""wsio._router.routed(): what the asyncio and threaded route() share."""

from __future__ import annotations

import asyncio
from typing import Any

from wsio._router import routed


class FakeRouter:
    def __init__(self, url_map: Any, server_name: str | None, url_scheme: str) -> None:
        self.url_scheme = url_scheme

    def route_request(self, connection: Any, request: Any) -> str:
        return "routed"

    def handler(self, connection: Any) -> None:  # pragma: no cover
        pass


def test_ssl_and_url_scheme() -> None:
    options: dict[str, Any] = {}
    assert routed(FakeRouter, None, None, None, options).url_scheme == "ws"  # type: ignore[type-var]
    assert "ssl" not in options
    assert routed(FakeRouter, None, None, True, options).url_scheme == "wss"  # type: ignore[type-var]
    assert "ssl" not in options
    context = object()
    assert routed(FakeRouter, None, None, context, options).url_scheme == "wss"  # type: ignore[type-var]
    assert options["ssl"] is context


def test_without_process_request_the_router_answers() -> None:
    options: dict[str, Any] = {}
    router = routed(FakeRouter, None, None, None, options)  # type: ignore[type-var]
    assert options["process_request"] == router.route_request


def test_process_request_first_then_routing() -> None:
    answers: list[Any] = [None, "denied"]
    options: dict[str, Any] = {"process_request": lambda connection, request: answers.pop(0)}
    routed(FakeRouter, None, None, None, options)  # type: ignore[type-var]
    assert options["process_request"](None, None) == "routed"
    assert options["process_request"](None, None) == "denied"


def test_async_process_request_first_then_routing() -> None:
    answers: list[Any] = [None, "denied"]

    async def first(connection: Any, request: Any) -> Any:
        return answers.pop(0)

    options: dict[str, Any] = {"process_request": first}
    routed(FakeRouter, None, None, None, options)  # type: ignore[type-var]
    assert asyncio.run(options["process_request"](None, None)) == "routed"
    assert asyncio.run(options["process_request"](None, None)) == "denied"
