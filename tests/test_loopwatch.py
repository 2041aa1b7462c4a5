"""The loop watchdog that conftest uses: it must catch a loop blocked by a callback (in
the kernel or on the CPU), stay quiet when the loop yields, and not count time the loop
thread spent waiting in the selector or waiting for a CPU."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest

from tests.loopwatch import LoopWatchdog, StallMeter, ThreadSample, read_thread

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the load-proof accounting reads /proc (Linux)"
)


async def _idle(seconds: float) -> None:
    """Let the loop run nothing but timers for ``seconds`` (an Event nobody sets)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), seconds)


@pytest.mark.allow_loop_block
async def test_watchdog_reports_a_call_blocking_in_the_kernel() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    a, b = socket.socketpair()
    try:
        a.settimeout(0.8)
        with pytest.raises(TimeoutError):
            a.recv(1)  # a blocking read on the loop: nothing ever arrives
    finally:
        a.close()
        b.close()
    await _idle(0.2)
    watchdog.stop()
    assert watchdog.stalls and max(watchdog.stalls) >= 0.3


@pytest.mark.allow_loop_block
async def test_watchdog_reports_cpu_bound_work_on_the_loop() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    end = time.thread_time() + 0.8  # 0.8 s of this thread's CPU, however loaded the host
    spins = 0
    while time.thread_time() < end:  # computing on the loop
        spins += 1
    await _idle(0.2)
    watchdog.stop()
    assert spins > 0
    assert watchdog.stalls and max(watchdog.stalls) >= 0.3


async def test_watchdog_is_quiet_when_loop_yields() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    await _idle(0.6)
    watchdog.stop()
    assert watchdog.stalls == []


@linux_only
def test_read_thread_sees_this_threads_cpu_time() -> None:
    import threading

    before = read_thread(threading.get_native_id())
    assert before is not None and before.state == "R"
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    after = read_thread(threading.get_native_id())
    assert after is not None and after.cpu_s > before.cpu_s


def test_meter_counts_cpu_and_blocking_sleeps_only() -> None:
    m = StallMeter()
    assert m.sample(ThreadSample(state="R", cpu_s=10.0), at=0.0, in_selector=False) == 0.0
    # on the CPU for 0.2 s of a 0.25 s tick: 0.2 counts
    assert m.sample(ThreadSample(state="R", cpu_s=10.2), at=0.25, in_selector=False) == pytest.approx(0.2)
    # runnable but without a CPU (another process has it): nothing counts
    assert m.sample(ThreadSample(state="R", cpu_s=10.2), at=1.25, in_selector=False) == pytest.approx(0.2)
    # asleep in the kernel outside the selector (time.sleep, a blocking recv): counts
    m.sample(ThreadSample(state="S", cpu_s=10.2), at=1.5, in_selector=False)
    assert m.sample(ThreadSample(state="S", cpu_s=10.2), at=2.0, in_selector=False) == pytest.approx(0.7)
    assert m.sample(ThreadSample(state="D", cpu_s=10.2), at=2.1, in_selector=False) == pytest.approx(0.8)
    # asleep in the selector: the loop is idle, it only woke late: nothing counts
    assert m.sample(ThreadSample(state="S", cpu_s=10.2), at=5.0, in_selector=True) == pytest.approx(0.8)
    m.reset()
    assert m.blocked_s == 0.0
    assert m.sample(ThreadSample(state="S", cpu_s=11.0), at=6.0, in_selector=False) == 0.0


@pytest.mark.allow_loop_block
async def test_watchdog_reports_a_blocking_call_that_waits_in_its_own_selector() -> None:
    """subprocess.run waits in a selector of its own: that is not the loop being idle."""
    import subprocess

    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    subprocess.run([sys.executable, "-c", "import time; time.sleep(0.8)"], capture_output=True, check=True)  # noqa: ASYNC221
    await _idle(0.2)
    watchdog.stop()
    assert watchdog.stalls and max(watchdog.stalls) >= 0.3


@pytest.mark.allow_loop_block
async def test_a_stall_is_reported_at_its_full_length() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    a, b = socket.socketpair()
    try:
        a.settimeout(1.2)
        with pytest.raises(TimeoutError):
            a.recv(1)
    finally:
        a.close()
        b.close()
    await _idle(0.2)
    watchdog.stop()
    assert len(watchdog.stalls) == 1 and watchdog.stalls[0] >= 1.0, watchdog.stalls
