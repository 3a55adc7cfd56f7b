"""Timers that share one delay share one asyncio timer.

Every connection of a server arms the same timers with the same delays: the
opening handshake's deadline (``open_timeout``), the next keepalive ping
(``ping_interval``), the closing handshake's deadline (``close_timeout``).
With ``loop.call_later()`` each is a :class:`asyncio.TimerHandle`, a push
onto the loop's heap and, once cancelled (most are: the handshake finishes in
time), a pop from it later: in a profile of a server accepting connections as
fast as it can, about a tenth of its time went to timers it never fired.

Timers with the same delay on one loop expire in the order they were armed,
so here they wait in a deque behind one asyncio timer, armed for the first of
them: arming one is an append, cancelling it sets a flag, and a cancelled
timer is dropped when it is first in line (at its deadline, or sooner, when
another is armed). Memory: a cancelled timer behind a live one stays until
its deadline, so at most (timers armed per second) x (delay) of them, each
~70 bytes.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import weakref
from typing import Any, Callable

__all__ = ["QUIET_CONTEXT", "Timer", "call_later"]

#: The context the per-connection timers and the handler's done callback run in:
#: one shared empty context instead of a copy of the current one per handle (64
#: bytes each, kept as long as the timer is). They belong to connections, not to
#: whatever task armed them, and read no context variables (their log records
#: don't see the application's).
QUIET_CONTEXT = contextvars.Context()


class Timer:
    """One armed timer: what :func:`call_later` returns; ``cancel()`` it as an :class:`asyncio.TimerHandle`."""

    __slots__ = ("_when", "_callback", "_args")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self._when = when
        self._callback: Callable[..., object] | None = callback
        self._args = args

    def cancel(self) -> None:
        self._callback = None
        self._args = ()

    def cancelled(self) -> bool:
        return self._callback is None

    def when(self) -> float:
        """The loop time (``loop.time()``) at which it fires."""
        return self._when

    def __repr__(self) -> str:
        state = "cancelled" if self._callback is None else f"callback={self._callback!r}"
        return f"<wsio Timer when={self._when} {state}>"


class _Line:
    """The timers of one delay on one loop, in the order they expire, behind one asyncio timer."""

    # The loop is the key of _lines, a WeakKeyDictionary: a strong reference to it
    # here, in that dictionary's value (the loop itself, or the TimerHandle armed
    # on it), would keep every loop that ever armed a timer.
    __slots__ = ("loop_ref", "delay", "timers", "armed")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop_ref = weakref.ref(loop)
        self.delay = delay
        self.timers: collections.deque[Timer] = collections.deque()
        self.armed = False  # an asyncio timer will call _expire()

    def add(self, loop: asyncio.AbstractEventLoop, callback: Callable[..., object], args: tuple[Any, ...]) -> Timer:
        timer = Timer(loop.time() + self.delay, callback, args)
        timers = self.timers
        # Drop the cancelled ones first in line now rather than at their deadline:
        # most open-timeout timers are cancelled within milliseconds, in order.
        while timers and timers[0]._callback is None:
            timers.popleft()
        timers.append(timer)
        if not self.armed:
            loop.call_at(timer._when, self._expire, context=QUIET_CONTEXT)
            self.armed = True
        return timer

    def _expire(self) -> None:
        self.armed = False
        loop = self.loop_ref()
        if loop is None:  # pragma: no cover - the loop runs this: it is alive
            return
        timers = self.timers
        # The loop may run a timer up to its clock resolution early: so may we.
        now = loop.time() + 0.001
        while timers and timers[0]._when <= now:
            timer = timers.popleft()
            callback = timer._callback
            if callback is None:
                continue
            args = timer._args
            timer.cancel()  # fired: as a TimerHandle, it reports cancelled() afterwards
            try:
                callback(*args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                loop.call_exception_handler(
                    {"message": f"Exception in timer callback {callback!r}", "exception": exc, "timer": timer}
                )
        while timers and timers[0]._callback is None:
            timers.popleft()  # cancelled: no need to wake up for it
        if timers:
            loop.call_at(timers[0]._when, self._expire, context=QUIET_CONTEXT)
            self.armed = True


class _Lines(dict[float, _Line]):
    """delay -> its line, for one loop (a dict that a weak reference can point to)."""

    __slots__ = ("__weakref__",)


# loop -> its lines. Weak on the loop: a closed loop's timers go with it.
_lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lines] = weakref.WeakKeyDictionary()


def _no_loop() -> None:
    return None


# The loop that last armed a timer and its lines, both weakly, in one tuple (read
# and replaced whole: a thread with a loop of its own never sees half of another's).
# Nearly every call is from the same loop, and the look-up in _lines (a weak
# reference made per call, in Python) costs more than arming the timer.
_last: tuple[Callable[[], asyncio.AbstractEventLoop | None], Callable[[], _Lines | None]] = (_no_loop, _no_loop)


def call_later(loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
    """``loop.call_later(delay, callback, *args)``, sharing one asyncio timer with every timer of the same delay.

    For the timers every connection arms with the same delay; the callback
    runs in an empty context, as a :class:`asyncio.TimerHandle` made with
    ``context=contextvars.Context()`` would.
    """
    global _last
    last_loop, last_lines = _last
    lines = last_lines() if last_loop() is loop else None
    if lines is None:
        lines = _lines.get(loop)
        if lines is None:
            lines = _lines[loop] = _Lines()
        _last = (weakref.ref(loop), weakref.ref(lines))
    line = lines.get(delay)
    if line is None:
        line = lines[delay] = _Line(loop, delay)
    return line.add(loop, callback, args)
