"""What the lab tests share: reading /metrics as the lab's parse_metrics returns it."""

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
