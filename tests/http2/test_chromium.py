"""Headless Chromium loads a page over HTTPS/h2 from wsio and opens wss:// on the same HTTP/2 connection.

Chromium as tests/browser/chromium.py finds it (Debian's ``chromium``, driven
by ``playwright``, never downloaded); the certificate is trustme's, which
Chromium is told to accept (``ignore_https_errors``).
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from wsio import serve
from wsio.protocol.datastructures import Headers
from wsio.protocol.http11 import Response

import playwright.async_api as async_api

from tests.browser.chromium import chromium_launch_options

from .helpers import port_of

PAGE = b"""<!doctype html>
<title>h2</title>
<script>
async function one(i) {
  const ws = new WebSocket(`wss://${location.host}/ws/${i}`);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const reply = new Promise((resolve) => { ws.onmessage = (event) => resolve(event.data); });
  ws.send(`hello ${i}`);
  const data = await reply;
  ws.close(4000 + i, `bye ${i}`);
  return data;
}
window.results = Promise.all([0, 1, 2].map(one));
</script>
"""


@pytest.mark.async_timeout(60)
async def test_chromium_page_and_websockets_share_one_h2_connection(server_ctx: ssl.SSLContext) -> None:
    page_peers: list[Any] = []
    websockets: list[tuple[Any, Any, str]] = []
    closes: list[tuple[int | None, str | None]] = []

    def process_request(connection: Any, request: Any) -> Response | None:
        if request.path == "/":
            page_peers.append(connection.transport.get_extra_info("peername"))
            return Response(200, "OK", Headers({"Content-Type": "text/html; charset=utf-8"}), PAGE)
        return None

    async def handler(ws: Any) -> None:
        transport = ws.transport
        websockets.append((transport.get_extra_info("peername"), transport.get_extra_info("http2_stream_id"), ws.request.path))
        message = await ws.recv()
        await ws.send(f"echo {message}")
        await ws.wait_closed()
        closes.append((ws.close_code, ws.close_reason))

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True, process_request=process_request) as server:
        url = f"https://127.0.0.1:{port_of(server)}/"
        with chromium_launch_options() as options:
            async with async_api.async_playwright() as playwright:
                browser = await playwright.chromium.launch(**options)
                try:
                    context = await browser.new_context(ignore_https_errors=True)
                    page = await context.new_page()
                    response = await page.goto(url)
                    assert response is not None and response.status == 200
                    protocol = await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
                    assert protocol == "h2"
                    results = await page.evaluate("window.results")
                    assert results == ["echo hello 0", "echo hello 1", "echo hello 2"]
                    await page.wait_for_timeout(200)
                finally:
                    await browser.close()
    assert len(websockets) == 3
    assert all(stream_id is not None for _, stream_id, _ in websockets), "over HTTP/2"
    assert {peer for peer, _, _ in websockets} == set(page_peers[:1]), "on the page's own connection"
    assert sorted(closes) == [(4000, "bye 0"), (4001, "bye 1"), (4002, "bye 2")]
