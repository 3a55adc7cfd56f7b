"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Python ``playwright``.

Never ``playwright install``: the browser comes from the system
(``make system-deps``), or from ``WSIO_CHROMIUM``. Screenshots and server logs
of the browser tests go to ``reports/browser/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORTS = os.path.join(ROOT, "reports", "browser")
CHROMIUM = os.environ.get("WSIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_launch_options() -> Iterator[dict[str, Any]]:
    """The keyword arguments of playwright's ``chromium.launch()``, with a throwaway profile; fails the test if it's missing."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing (make system-deps installs Debian's chromium)")
    profile = tempfile.mkdtemp(prefix="wsio-chromium-")
    try:
        # HOME: keeps Chromium's own files out of the real home.
        yield {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True, "env": {**os.environ, "HOME": profile}}
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium (a playwright ``Browser``) with a throwaway profile; fails the test if it's missing."""
    import playwright.sync_api as sync_api

    with chromium_launch_options() as options:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(**options)
            try:
                yield browser
            finally:
                browser.close()
