"""The labs share the machine with each other: at most LAB_SLOTS lab modules run at once,
across the parallel suite's workers (scripts/test runs each file whole on one worker).

A lab runs a coordinator, six to eight agents, targets and shapers, and its verdicts
depend on rates it measures: four labs at once on CI's two cores starved the agents'
uploads enough to read one region's uploads as throttled. Two at once keep the suite
parallel (a lab mostly waits on rounds) without that.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LAB_SLOTS = 2
# the slots are lock files every worker of one run sees (the same temporary directory)
_DIR = Path(tempfile.gettempdir()) / f"vantage-lab-slots-{os.getuid()}"
# a bounded wait for a slot: longer than any lab module takes (they are well under 5 min)
SLOT_WAIT_S = 1800.0


@pytest.fixture(scope="module", autouse=True)
def _lab_slot() -> Iterator[None]:
    _DIR.mkdir(exist_ok=True)
    handles = [open(_DIR / f"slot-{i}", "a+") for i in range(LAB_SLOTS)]  # noqa: SIM115
    held = None
    deadline = time.monotonic() + SLOT_WAIT_S
    try:
        while held is None:
            for fh in handles:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                held = fh
                break
            if held is None:
                if time.monotonic() > deadline:
                    pytest.fail(f"no lab slot free within {SLOT_WAIT_S:g} s", pytrace=False)
                time.sleep(0.5)  # polling a lock: the positive signal is acquiring it
        yield
    finally:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
        for fh in handles:
            fh.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A lab test's time includes waiting for its module's slot: each gets at least 900 s
    (the suite's default is 120 s)."""
    for item in items:
        if item.nodeid.startswith("tests/lab/"):
            marker = item.get_closest_marker("timeout")
            if marker is None or (marker.args and float(marker.args[0]) < 900):
                item.add_marker(pytest.mark.timeout(900), append=False)
