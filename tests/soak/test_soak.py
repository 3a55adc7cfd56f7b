"""The soak test, two minutes: 2,000 connections with churn and mixed traffic leave no fd, task or memory behind."""

from __future__ import annotations

import pytest

from .soak import soak


@pytest.mark.timeout(300)
def test_soak_two_minutes() -> None:
    # Two minutes in all: 50 s of warm-up (the start is measured after it), 70 s of soak.
    result = soak(seconds=70, connections=2000, warmup=50, progress=False)
    load = result["load"]
    # The traffic was what the soak promises: every kind of it, at full population.
    for kind in (
        "messages",
        "fragmented",
        "pings",
        "compressed_sessions",
        "plain_sessions",
        "abrupt_drops",
        "clean_closes",
        "handshake_resets",
    ):
        assert load.get(kind, 0) > 0, (kind, load)
    assert result["end"]["fds"] == result["start"]["fds"]
    assert result["end"]["tasks"] == result["start"]["tasks"]
    assert abs(result["rss_growth"]) <= 0.10
