"""wsio.asyncio.timers: timers of one delay share one asyncio timer, and behave as loop.call_later()'s."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from wsio.asyncio import timers
from wsio.asyncio.timers import call_later


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_timers_fire_after_their_delay_in_order_with_their_arguments() -> None:
    async def main() -> list[tuple[str, float, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float, float]] = []
        all_fired = asyncio.Event()

        def on_fire(name: str, armed_at: float) -> None:
            fired.append((name, armed_at, loop.time()))
            if len(fired) == 3:
                all_fired.set()

        for name in "abc":
            call_later(loop, 0.05, on_fire, name, loop.time())
            await asyncio.sleep(0.01)
        await all_fired.wait()
        return fired

    fired = run(main())
    assert [name for name, _, _ in fired] == ["a", "b", "c"]
    # Each one 50 ms after it was armed, not at the first one's deadline (which would be early for b and c).
    # The upper bound is loose: a loaded machine may run the loop late, but never by a whole other delay line.
    for _, armed_at, at in fired:
        assert 0.05 - 0.002 <= at - armed_at < 0.05 + 0.5


def test_a_cancelled_timer_does_not_fire_and_says_so() -> None:
    async def main() -> tuple[list[str], bool, bool]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        first = call_later(loop, 0.02, fired.append, "first")
        second = call_later(loop, 0.02, fired.append, "second")
        first.cancel()
        await asyncio.sleep(0.06)
        return fired, first.cancelled(), second.cancelled()

    fired, first_cancelled, second_cancelled = run(main())
    assert fired == ["second"]
    assert first_cancelled
    assert second_cancelled  # fired: as an asyncio.TimerHandle after it ran


def test_one_asyncio_timer_for_many_timers_of_one_delay_and_none_for_cancelled_ones() -> None:
    async def main() -> tuple[int, int, bool]:
        loop = asyncio.get_running_loop()
        before = len(loop._scheduled)  # type: ignore[attr-defined]
        armed = [call_later(loop, 30.0, lambda: None) for _ in range(1000)]
        scheduled = len(loop._scheduled) - before  # type: ignore[attr-defined]
        for timer in armed:
            timer.cancel()
        # The line notices the cancelled ones when its timer fires; make it fire now.
        line = timers._lines[loop][30.0]
        line.timers[0]._when = 0
        line._expire()
        return scheduled, len(line.timers), not line.armed

    scheduled, left, idle = run(main())
    assert scheduled == 1
    assert left == 0 and idle


def test_a_failing_callback_is_reported_and_the_others_still_fire() -> None:
    async def main() -> tuple[list[str], list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        fired: list[str] = []

        def fail() -> None:
            raise ValueError("in a timer")

        call_later(loop, 0.01, fail)
        call_later(loop, 0.01, fired.append, "after")
        await asyncio.sleep(0.05)
        return fired, reported

    fired, reported = run(main())
    assert fired == ["after"]
    assert len(reported) == 1 and isinstance(reported[0]["exception"], ValueError)


def test_callbacks_run_in_an_empty_context() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="unset")

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        variable.set("the arming task's")
        call_later(loop, 0.01, lambda: seen.append(variable.get()))
        await asyncio.sleep(0.05)
        return seen

    assert run(main()) == ["unset"]


def test_delays_and_loops_have_their_own_lines() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        call_later(loop, 0.06, fired.append, "slow")
        call_later(loop, 0.01, fired.append, "fast")
        await asyncio.sleep(0.1)
        return fired

    # Two runs, two loops: the second doesn't wait on the first's (closed) loop.
    assert run(main()) == ["fast", "slow"]
    assert run(main()) == ["fast", "slow"]


def test_a_closed_loop_is_not_kept_by_its_timers() -> None:
    import gc

    async def main() -> None:
        call_later(asyncio.get_running_loop(), 30.0, lambda: None).cancel()

    gc.collect()
    before = len(timers._lines)
    for _ in range(3):
        asyncio.run(main())
    gc.collect()
    assert len(timers._lines) == before


def test_timers_armed_on_two_loops_in_turn_each_fire_on_their_own_loop() -> None:
    """The lines of the last loop that armed a timer are kept at hand: another loop in between gets its own."""
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        fired: list[str] = []
        for loop, name in [(first, "a1"), (second, "b1"), (first, "a2"), (second, "b2")]:
            call_later(loop, 0.01, fired.append, name)
        first.run_until_complete(asyncio.sleep(0.05))
        assert fired == ["a1", "a2"]
        second.run_until_complete(asyncio.sleep(0.05))
        assert fired == ["a1", "a2", "b1", "b2"]
    finally:
        first.close()
        second.close()
