"""Small helpers the probe kinds share: the clock and building outcomes from failures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from agent.probes.base import ProbeOutcome
from agent.probes.failures import UNKNOWN_FAILURE, classify, describe

log = structlog.get_logger("agent.probes")


def now() -> float:
    """The probes' clock: monotonic, high resolution."""
    return time.perf_counter()


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)


def failed(
    *,
    kind: str,
    target: str,
    exc: BaseException,
    started: float,
    data: Mapping[str, Any] | None = None,
) -> ProbeOutcome:
    """An outcome for a probe that failed with ``exc`` (classified in one place)."""
    failure = classify(exc)
    if failure == UNKNOWN_FAILURE:
        log.warning("probe_unknown_failure", kind=kind, target=target, exc_info=exc)
    return ProbeOutcome(
        kind=kind,
        target=target,
        failure=failure,
        failure_detail=describe(exc),
        duration_s=round(now() - started, 6),
        data=dict(data or {}),
    )
