"""Fakes for unit tests of the agent: a clock the test moves by hand, and a stream that
lets the test play the coordinator's end of ``AgentService.Connect``.

Neither sleeps. Time passes only in :meth:`FakeClock.advance`, which fires the timers that
fall due, in order; the code they wake runs when the test next awaits. Tests synchronise
on explicit signals: a timer the code under test has armed (:meth:`FakeClock.armed`), a
message it has written (:meth:`FakeCoordinator.expect`). Every such wait is bounded in
real time (``REAL_WAIT_S``), so a broken agent fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from protos.vantage.v1 import vantage_pb2 as pb

REAL_WAIT_S = 5.0


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """``agent.clock.Clock`` with time that moves only when the test says so."""

    def __init__(self, *, wall: float = 1_800_000_000.0, mono: float = 1_000.0) -> None:
        self._mono = mono
        self._wall_offset = wall - mono
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()

    # -- the Clock interface

    def time(self) -> float:
        return self._mono + self._wall_offset

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if not math.isfinite(seconds):
            raise ValueError(f"sleep: {seconds!r} is not a finite number of seconds")
        if seconds <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self._arm(seconds, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()
            self._changed.set()

    def timeout(self, seconds: float) -> _FakeTimeout:
        return _FakeTimeout(self, seconds)

    # -- for the test

    def pending(self) -> list[float]:
        """Due times of the armed timers, soonest first, relative to now."""
        return sorted(w - self._mono for w, _, t in self._heap if not t.cancelled)

    async def armed(
        self, delay: float | None = None, *, count: int = 1,
        where: Callable[[float], bool] | None = None,
    ) -> list[float]:
        """Wait (bounded in real time) until ``count`` timers are armed (only those due
        within ``where``, when given), or a timer due ``delay`` seconds from now (to the
        microsecond) when ``delay`` is given; the armed timers' due times."""

        def ready() -> bool:
            due = [d for d in self.pending() if where is None or where(d)]
            if delay is not None:
                return any(abs(d - delay) < 1e-6 for d in due)
            return len(due) >= count

        async with asyncio.timeout(REAL_WAIT_S):
            while not ready():
                self._changed.clear()
                await self._changed.wait()
        return [d for d in self.pending() if where is None or where(d)]

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer due by then, in order."""
        if seconds < 0:
            raise ValueError("advance: time does not go back")
        target = self._mono + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, when)
            timer.callback()
        self._mono = target
        self._changed.set()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self._mono + seconds, callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        self._changed.set()
        return timer


class _FakeTimeout:
    """``asyncio.timeout`` on a :class:`FakeClock`: cancels the task when the fake time
    passes, and turns that cancellation into ``TimeoutError``."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._expired = False
        self._timer: _Timer | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    async def __aenter__(self) -> _FakeTimeout:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        if self._seconds <= 0:  # like asyncio.timeout(0): expires on the next loop pass
            self._timer = _Timer(self._clock.monotonic(), self._expire)
            asyncio.get_running_loop().call_soon(self._expire)
        else:
            self._timer = self._clock._arm(self._seconds, self._expire)
        return self

    def _expire(self) -> None:
        assert self._timer is not None and self._task is not None
        if self._timer.cancelled or self._expired:
            return
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._timer is not None and self._task is not None
        self._timer.cancel()
        self._clock._changed.set()
        # As asyncio.timeout does: once it fired, take back its cancel request, and turn
        # the cancellation into TimeoutError unless someone else cancelled too.
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
        return False


class FakeStream:
    """One stream: what the agent writes lands in ``sent``; the test feeds ``inbound``."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[pb.AgentMessage] = asyncio.Queue()
        self.inbound: asyncio.Queue[pb.CoordinatorMessage | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def write(self, message: pb.AgentMessage) -> None:
        if self.closed.is_set():
            raise ConnectionError("stream closed")
        self.sent.put_nowait(message)

    async def read(self) -> pb.CoordinatorMessage | None:
        return await self.inbound.get()


class FakeCoordinator:
    """Plays the coordinator: each ``connect()`` is one stream attempt. An attempt fails
    with the next exception in ``failures`` while any are left, else opens a stream that
    the test drives."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.failures: list[BaseException] = []
        self.attempts: list[float] = []  # fake monotonic time of each attempt
        self.streams: asyncio.Queue[FakeStream] = asyncio.Queue()
        self.stream: FakeStream | None = None
        self._attempted = asyncio.Event()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeStream]:
        self.attempts.append(self.clock.monotonic())
        self._attempted.set()
        if self.failures:
            raise self.failures.pop(0)
        stream = FakeStream()
        self.streams.put_nowait(stream)
        try:
            yield stream
        finally:
            stream.closed.set()

    async def attempt(self, n: int) -> float:
        """Wait (bounded) for the n-th connection attempt (1-based); its fake time."""
        async with asyncio.timeout(REAL_WAIT_S):
            while len(self.attempts) < n:
                self._attempted.clear()
                await self._attempted.wait()
        return self.attempts[n - 1]

    async def accept(self, *, heartbeat_interval_s: float = 5.0) -> tuple[FakeStream, pb.Hello]:
        """Take the next stream, read its hello and answer with a welcome."""
        async with asyncio.timeout(REAL_WAIT_S):
            stream = await self.streams.get()
        self.stream = stream
        first = await expect(stream, "hello")
        stream.inbound.put_nowait(
            pb.CoordinatorMessage(
                welcome=pb.Welcome(session_id="s1", heartbeat_interval_s=heartbeat_interval_s)
            )
        )
        return stream, first.hello


async def expect(stream: FakeStream, which: str) -> pb.AgentMessage:
    """The agent's next message on ``stream``, which must be a ``which`` (bounded wait)."""
    async with asyncio.timeout(REAL_WAIT_S):
        msg = await stream.sent.get()
    got = msg.WhichOneof("body")
    assert got == which, f"expected a {which} from the agent, got {got}: {msg}"
    return msg
