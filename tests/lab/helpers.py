"""What the lab tests share: reading /metrics as the lab's parse_metrics returns it."""

from __future__ import annotations

Metrics = dict[str, dict[frozenset[tuple[str, str]], float]]


def by_labels(m: Metrics, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The samples of metric ``name``, keyed by the values of the labels ``keys``."""
    return {
        tuple(dict(labels).get(k, "") for k in keys): v for labels, v in m.get(name, {}).items()
    }
