"""A watchdog that notices when something blocks the asyncio event loop.

A helper thread asks the loop to run a tiny callback every ``interval`` seconds. While the
loop is late answering, the watchdog measures how much of that time the loop's own thread
spent *blocking*, not how much wall time went by:

* time on the CPU (``utime + stime`` of the loop's thread, from
  ``/proc/self/task/<tid>/stat``): a callback computing;
* time asleep in the kernel (thread state ``S`` or ``D``) while its Python frame is
  anywhere but the event loop's own selector wait (``select`` called by the loop's
  ``_run_once``): a callback in ``time.sleep``, a blocking ``recv``, a lock, a subprocess
  wait, a blocking DNS query (those wait in selectors of their own, which count).

Time the thread spends runnable but not running (another process has the CPU) or asleep
in the selector (nothing to do: the loop is idle, and simply woke late) counts for
nothing. So the verdict does not depend on how loaded the machine is: on an idle laptop
and on a busy 2-core CI host the same blocking call is caught, and no amount of load
turns a yielding test into a "blocked loop". A stall is recorded when the blocking time
within one late period passes ``threshold``. conftest turns any stall into a test failure.

Without ``/proc`` (not Linux) the watchdog falls back to plain wall-clock lateness.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class ThreadSample:
    state: str  # R running/runnable, S sleeping, D disk sleep, ...
    cpu_s: float  # user + system time so far


def read_thread(tid: int) -> ThreadSample | None:
    """State and CPU time of thread ``tid`` of this process, or None without /proc."""
    try:
        text = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ... utime stime ...": comm may hold spaces and parentheses.
    rest = text[text.rindex(")") + 2 :].split()
    return ThreadSample(state=rest[0], cpu_s=(int(rest[11]) + int(rest[12])) / _CLK_TCK)


class StallMeter:
    """How long the loop's thread blocked during one late period (the pure part)."""

    def __init__(self) -> None:
        self.blocked_s = 0.0
        self._last: ThreadSample | None = None
        self._last_at = 0.0

    def reset(self) -> None:
        self.blocked_s = 0.0
        self._last = None

    def on_time(self, sample: ThreadSample, *, at: float) -> None:
        """The loop answered in time: nothing blocked; this sample is the baseline a
        stall that starts now is measured from."""
        self.blocked_s = 0.0
        self._last = sample
        self._last_at = at

    def sample(self, sample: ThreadSample, *, at: float, in_selector: bool) -> float:
        """Add what happened since the previous sample; the blocking time so far."""
        if self._last is not None:
            self.blocked_s += max(0.0, sample.cpu_s - self._last.cpu_s)
            asleep = sample.state in ("S", "D") and self._last.state in ("S", "D")
            if asleep and not in_selector:
                self.blocked_s += at - self._last_at
        self._last = sample
        self._last_at = at
        return self.blocked_s


def _waiting_in_selector(frame: FrameType | None) -> bool:
    """The loop thread is idle in the loop's own selector: ``selectors.*.select`` called
    from ``BaseEventLoop._run_once`` (not a selector some blocking call made itself)."""
    if frame is None or frame.f_back is None:
        return False
    here, caller = frame.f_code, frame.f_back.f_code
    return (
        here.co_name == "select"
        and here.co_filename.endswith("selectors.py")
        and caller.co_name == "_run_once"
        and caller.co_filename.endswith("base_events.py")
    )


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
        self._loop_tid = 0
        self._loop_ident = 0
        self.stalls: list[float] = []

    def _beat(self) -> None:
        self._last_beat = time.monotonic()

    def _watch(self) -> None:
        meter = StallMeter()
        use_proc = read_thread(self._loop_tid) is not None
        reported_for: float | None = None
        asked_at = time.monotonic()
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            beat = self._last_beat
            # On time: the loop ran the beat asked for at the previous tick.
            on_time = beat >= asked_at
            sample = read_thread(self._loop_tid) if use_proc else None
            if use_proc and sample is None:
                return  # the loop's thread is gone
            try:
                self._loop.call_soon_threadsafe(self._beat)
            except RuntimeError:  # loop closed
                return
            asked_at = now
            if on_time:
                if sample is not None:
                    meter.on_time(sample, at=now)
                continue
            if sample is not None:
                frame = sys._current_frames().get(self._loop_ident)
                blocked = meter.sample(sample, at=now, in_selector=_waiting_in_selector(frame))
            else:
                blocked = now - beat
            if blocked > self._threshold:
                if beat != reported_for:  # a new stall
                    reported_for = beat
                    self.stalls.append(blocked)
                else:  # the same stall, grown
                    self.stalls[-1] = blocked

    def start(self) -> None:
        """Call from the loop's thread."""
        self._loop_tid = threading.get_native_id()
        self._loop_ident = threading.get_ident()
        self._last_beat = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
