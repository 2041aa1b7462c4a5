"""What the lab tests share: reading /metrics as the lab's parse_metrics returns it, and
the bounded waits on it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

Metrics = dict[str, dict[frozenset[tuple[str, str]], float]]


def by_labels(m: Metrics, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The samples of metric ``name``, keyed by the values of the labels ``keys``."""
    return {
        tuple(dict(labels).get(k, "") for k in keys): v for labels, v in m.get(name, {}).items()
    }


def agents_connected(lab: Any, regions: Sequence[str], per_region: int, timeout_s: float = 60.0) -> bool:
    """Wait (bounded) until /metrics counts ``per_region`` agents in each region."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c = by_labels(lab.metrics(), "vantage_agents_connected", "region")
        if all(c.get((r,), 0) == per_region for r in regions):
            return True
        time.sleep(1)
    return False


def wait_throttles_cleared(
    lab: Any, fading: set[tuple[str, str]], timeout_s: float, false: list[tuple[Any, ...]]
) -> dict[tuple[str, str], float]:
    """After the faults are removed: poll ``vantage_throttled`` (bounded by ``timeout_s``)
    until every (region, target) of ``fading`` reads 0; returns the seconds each took.
    Any other pair throttled meanwhile is appended to ``false``."""
    from deploy.lab.lab import parse_metrics

    started = time.monotonic()
    cleared: dict[tuple[str, str], float] = {}
    while time.monotonic() - started < timeout_s:
        thr = by_labels(parse_metrics(lab.metrics_text()), "vantage_throttled", "region", "target")
        for key in fading:
            if thr.get(key) == 0 and key not in cleared:
                cleared[key] = time.monotonic() - started
        for (r, t), v in thr.items():
            if v and (r, t) not in fading:
                false.append(("after", r, t, "throttled", ""))
        if len(cleared) == len(fading):
            break
        time.sleep(2)
    return cleared
