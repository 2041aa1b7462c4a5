"""The agent's own hourly budget of bytes moved by probes (``--max-bytes-per-hour``).

A job picks its targets, its rounds and every agent it selects; its token's quotas are
the coordinator's. The host an agent runs on pays for the traffic, so its operator sets
a ceiling that no job can exceed: a task that could take the hour's bytes past it is not
run (``agent_resource_error``, which is never evidence about a target).

A task reserves what it may move at most (its ``max_bytes``, counted again for a control
download and a trigger check) before it runs, and is charged what it moved (the result's
``bytes``, and its control's) once it ends. The hour slides: what was charged more than an
hour ago is free again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from common.specs.base import bytes_at_most

HOUR_S = 3600.0


def reservation(spec: Any) -> int:
    """The most bytes a parsed spec may move (``common.specs.base.bytes_at_most``)."""
    return bytes_at_most(spec)


def moved(data: Mapping[str, Any]) -> int | None:
    """Bytes a result says it moved: its own (``bytes``, or an http fetch's
    ``body_length``), its control's and its trigger checks'; None when it says nothing
    (a probe cut off by its deadline: the caller charges what it reserved)."""
    parts: list[Any] = [data, data.get("control")]
    checks = data.get("trigger_checks")
    if isinstance(checks, list):
        parts.extend(checks)
    total, said = 0, False
    for part in parts:
        if isinstance(part, Mapping):
            for name in ("bytes", "body_length"):
                n = part.get(name)
                if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                    total += n
                    said = True
                    break
    return total if said else None


class HourlyBytes:
    """A sliding hour of bytes: ``reserve`` before a task, ``settle`` after it."""

    def __init__(self, per_hour: int) -> None:
        if per_hour <= 0:
            raise ValueError(f"per_hour: must be > 0, got {per_hour}")
        self.per_hour = per_hour
        self._charged: deque[tuple[float, int]] = deque()
        self._charged_total = 0
        self.reserved = 0

    def used(self, now: float) -> int:
        while self._charged and self._charged[0][0] <= now - HOUR_S:
            _, n = self._charged.popleft()
            self._charged_total -= n
        return self._charged_total + self.reserved

    def reserve(self, n: int, now: float) -> bool:
        """Hold ``n`` bytes for a task; False (nothing held) when the hour has not room."""
        if n <= 0:
            return True
        if self.used(now) + n > self.per_hour:
            return False
        self.reserved += n
        return True

    def settle(self, reserved: int, actual: int, now: float) -> None:
        """Release a reservation and charge what the task moved (at most what it held)."""
        self.reserved -= max(0, reserved)
        charge = max(0, min(actual, reserved)) if reserved > 0 else 0
        if charge:
            self._charged.append((now, charge))
            self._charged_total += charge
