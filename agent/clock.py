"""Time as the agent sees it, behind one small interface so tests can drive it.

``Clock.time()`` is wall-clock time (the coordinator's ``not_before`` and ``deadline`` are
wall-clock), ``monotonic()`` measures intervals, and ``sleep()`` / ``timeout()`` wait.
:class:`SystemClock` is the real thing; the tests use a fake one whose time moves only
when the test says so, which makes backoff, resend and deadline behaviour testable
without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    """Durations passed to ``sleep`` and ``timeout`` must be finite; zero or less means
    "now" (``timeout`` then expires at the next chance)."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` (at once when it is not positive)."""
        ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Cancel the block after ``seconds``, raising ``TimeoutError`` from it."""
        ...


class SystemClock:
    """The operating system's clocks and asyncio's timers."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, _finite(seconds)))

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(_finite(seconds))


def _finite(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"{seconds!r} is not a finite number of seconds")
    return seconds


async def wait_event(clock: Clock, event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass on ``clock``; True when it is set."""
    with contextlib.suppress(TimeoutError):
        async with clock.timeout(seconds):
            await event.wait()
    return event.is_set()
