"""A watchdog that notices when something blocks the asyncio event loop.

A helper thread asks the loop to run a tiny callback every ``interval`` seconds; when the
loop takes longer than ``threshold`` to get to it, the stall is recorded. conftest turns
any stall into a test failure, so a probe or server that does blocking work on the loop
is caught by the test that runs it.
"""

from __future__ import annotations

import asyncio
import threading
import time


class LoopWatchdog:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, threshold: float = 1.0, interval: float = 0.05
    ) -> None:
        self._loop = loop
        self._threshold = threshold
        self._interval = interval
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self.stalls: list[float] = []

    def _beat(self) -> None:
        self._last_beat = time.monotonic()

    def _watch(self) -> None:
        reported_for = 0.0
        while not self._stop.wait(self._interval):
            try:
                self._loop.call_soon_threadsafe(self._beat)
            except RuntimeError:  # loop closed
                return
            lag = time.monotonic() - self._last_beat
            if lag > self._threshold and self._last_beat != reported_for:
                reported_for = self._last_beat
                self.stalls.append(lag)

    def start(self) -> None:
        self._last_beat = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
