"""examples/chat/hub-client.js in Node with a fake WebSocket (tests/pubsub/hub_client_js.js): duplicates, gaps, reconnections, lost history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.timeout(60)

HERE = os.path.dirname(os.path.abspath(__file__))


def test_the_javascript_client_delivers_once_in_order_and_comes_back() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: this test needs Node.js 18+ (as the interop tests)")
    result = subprocess.run([node, os.path.join(HERE, "hub_client_js.js")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    subscribe = {"type": "subscribe", "topic": "room:1"}
    # onOpen's commands first; a gap (4 after 2) asks for what follows 2.
    assert out["first"] == [{"type": "join"}, subscribe, {"type": "recover", "topic": "room:1", "offset": 2, "epoch": "e1"}]
    # After each reconnection: join, then subscribe from the last one delivered.
    assert out["second"] == [{"type": "join"}, {**subscribe, "offset": 5, "epoch": "e1"}]
    assert out["third"] == [{"type": "join"}, {**subscribe, "offset": 8, "epoch": "e1"}]
    assert out["delivered"] == [
        *(["room:1", f"m{i}", i] for i in range(2, 9)),  # m1: in the state loaded at first; each once, in order
        ["room:1", "m3", 3],  # the new epoch's, after onLost
        ["room:1", [0, 255], None],  # binary (b64), without history
    ]
    assert out["lost"] == ["room:1"]
    assert out["events"] == ["join"], "other messages go to onEvent; publications of other topics nowhere"
    assert out["statuses"][0] == "connected" and out["statuses"][1].startswith("disconnected (1006); reconnecting in ")
    assert 0.25 * 1000 <= out["delay"] <= 0.5 * 1000, "the first backoff: 0.5 s, jittered down to half"
