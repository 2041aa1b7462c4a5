"""Small helpers the probe kinds share: the clock, building outcomes from failures, and
fitting optional exchanges (the trigger checks) into what is left of a task's time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from agent.probes.base import TASK_BUDGET_S, ProbeOutcome
from agent.probes.failures import AGENT_DEADLINE_MISSED, UNKNOWN_FAILURE, classify, describe

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


# Kept free before the task's deadline (TASK_BUDGET_S) when the trigger checks are fitted in,
# for the result to be reported; a check with less than MIN_CHECK_S of its own is skipped.
DEADLINE_MARGIN_S = 1.0
MIN_CHECK_S = 1.0


def budget_left(started: float) -> float | None:
    """Seconds the running task has left for optional exchanges (None: no deadline)."""
    budget = TASK_BUDGET_S.get()
    return None if budget is None else budget - (now() - started) - DEADLINE_MARGIN_S


def skipped_check(swap: str, url: str, sni: str) -> dict[str, Any]:
    """A trigger check there was no time for: an agent error, never evidence either way."""
    return {"swap": swap, "url": url, "address": "", "sni": sni, "failure": AGENT_DEADLINE_MISSED,
            "failure_detail": "not made: too little time left before the task's deadline"}  # fmt: skip
