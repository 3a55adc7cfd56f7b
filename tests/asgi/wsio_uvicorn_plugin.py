"""pytest plugin: run uvicorn's own WebSocket tests with wsio's protocol class.

Loaded with ``-p wsio_uvicorn_plugin`` from uvicorn's unpacked sdist. uvicorn's
``tests/conftest.py`` parametrizes the ``ws_protocol_cls`` fixture with its two
engines; before pytest reads that conftest's fixtures, this plugin puts in its
place a fixture with one parameter, ``wsio.asgi:UvicornProtocol``. Nothing in
uvicorn's files is edited; ``http_protocol_cls`` keeps its parametrization.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

WSIO_CLASS = "wsio.asgi:UvicornProtocol"


@pytest.fixture(params=[pytest.param(WSIO_CLASS, id="wsio")])
def ws_protocol_cls(request: pytest.FixtureRequest) -> Any:
    from uvicorn.importer import import_from_string

    return import_from_string(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    path = getattr(plugin, "__file__", None) or ""
    if path.endswith(os.path.join("tests", "conftest.py")) and hasattr(plugin, "ws_protocol_cls"):
        plugin.ws_protocol_cls = ws_protocol_cls  # type: ignore[attr-defined]
