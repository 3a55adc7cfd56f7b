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
from wsio.protocol.deflate import PerMessageDeflate
from wsio.protocol.http11 import Response

import playwright.async_api as async_api

from tests.browser.chromium import chromium_launch_options

from .helpers import port_of

PAGE = b"""<!doctype html>
<title>h2</title>
<script>
async function one(i) {
  const ws = new WebSocket(`wss://${location.host}/ws/${i}`);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const replies = [];
  const both = new Promise((resolve) => {
    ws.onmessage = (event) => { replies.push(event.data); if (replies.length === 2) resolve(); };
  });
  const text = `hello ${i} `.repeat(100);  // compressible: permessage-deflate shrinks it
  const binary = new Uint8Array(600).map((_, k) => (k % 3) + i);
  ws.send(text);
  ws.send(binary);
  await both;
  const echoed = new Uint8Array(replies[1]);
  ws.close(4000 + i, `bye ${i}`);
  return {
    extensions: ws.extensions,
    text: replies[0] === "echo " + text,
    binary: echoed.length === binary.length && echoed.every((value, k) => value === binary[k]),
  };
}
window.results = Promise.all([0, 1, 2].map(one));
</script>
"""


@pytest.mark.async_timeout(60)
async def test_chromium_page_and_websockets_share_one_h2_connection(
    server_ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text and binary both ways on three WebSockets of one page, compressed both ways, on the page's HTTP/2 connection."""
    calls = {"compress": 0, "decompress": 0}

    def counting(name: str) -> Any:
        method = getattr(PerMessageDeflate, name)

        def wrapper(self: PerMessageDeflate, *args: Any) -> Any:
            calls[name] += 1
            return method(self, *args)

        return wrapper

    for name in calls:
        monkeypatch.setattr(PerMessageDeflate, name, counting(name))
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
        assert ws.protocol.deflate is not None, "permessage-deflate negotiated"
        text, binary = await ws.recv(), await ws.recv()
        assert isinstance(text, str) and isinstance(binary, bytes)
        await ws.send(f"echo {text}")
        await ws.send(binary)
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
                    assert [(r["text"], r["binary"]) for r in results] == [(True, True)] * 3
                    assert all("permessage-deflate" in r["extensions"] for r in results), results
                    await page.wait_for_timeout(200)
                finally:
                    await browser.close()
    assert len(websockets) == 3
    assert all(stream_id is not None for _, stream_id, _ in websockets), "over HTTP/2"
    assert {peer for peer, _, _ in websockets} == set(page_peers[:1]), "on the page's own connection"
    assert sorted(closes) == [(4000, "bye 0"), (4001, "bye 1"), (4002, "bye 2")]
    # Chromium's six messages were inflated by the server, and the server's six deflated.
    assert calls["decompress"] >= 6 and calls["compress"] >= 6, calls
