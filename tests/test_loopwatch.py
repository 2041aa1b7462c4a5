"""The loop watchdog that conftest uses must catch a blocked loop and stay quiet otherwise."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.loopwatch import LoopWatchdog


@pytest.mark.allow_loop_block
async def test_watchdog_reports_a_blocking_call() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    await asyncio.sleep(0.1)
    time.sleep(0.8)  # noqa: ASYNC251 - blocks the loop on purpose
    await asyncio.sleep(0.2)
    watchdog.stop()
    assert watchdog.stalls and max(watchdog.stalls) >= 0.3


async def test_watchdog_is_quiet_when_loop_yields() -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    watchdog.start()
    for _ in range(10):
        await asyncio.sleep(0.05)
    watchdog.stop()
    assert watchdog.stalls == []
