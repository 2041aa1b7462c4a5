"""Bounded polling, for the few waits with no event to wait on (a metric that changes in
another process, a verdict that a real network decides). Every wait here has a deadline
and a fixed interval; nothing else in the tests sleeps to synchronise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float,
    attempts: int | None = None,
) -> tuple[T, float | None]:
    """Call ``probe`` every ``interval`` seconds until ``done(value)`` holds or ``timeout``
    seconds pass (or ``probe`` was called ``attempts`` times, when given). Returns the last
    value, and the seconds it took (None if it never held), so a caller can report what it
    saw when the deadline passed."""
    started = time.monotonic()
    tries = 0
    while True:
        value = probe()
        tries += 1
        elapsed = time.monotonic() - started
        if done(value):
            return value, elapsed
        if elapsed >= timeout or (attempts is not None and tries >= attempts):
            return value, None
        time.sleep(interval)
