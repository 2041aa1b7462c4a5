"""The contract every probe kind's run side follows.

A probe kind is a module in ``agent/probes/`` with the kind's ``NAME`` and
``async def run(spec, limits) -> ProbeOutcome``; its frozen ``Spec`` and pure ``parse``
are in ``common/specs/`` (the coordinator parses specs too). Network failures are data:
``ProbeOutcome.failure`` is one of ``common.failures.FAILURES`` or ``None``. A probe
raises only when it could not run at all.

``ProbeOutcome.data`` holds the kind's own fields as JSON-able values; the same names go
on the wire (``ProbeResult.data``) and into ``vantage probe --json``.

``Limits``, ``SpecError`` and the default caps are :mod:`common.specs.base`'s,
re-exported here for the agent's callers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.specs.base import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_S, Limits, SpecError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "TASK_BUDGET_S",
    "Limits",
    "ProbeKind",
    "ProbeOutcome",
    "SpecError",
]

#: Seconds the running task had until its deadline when its probe started: set by the
#: agent's runner around each probe, None where there is no deadline (``vantage probe``).
#: A probe with optional extra exchanges (the trigger checks) fits them into what is left,
#: so they never cost it its main result.
TASK_BUDGET_S: ContextVar[float | None] = ContextVar("task_budget_s", default=None)


@dataclass(frozen=True, kw_only=True)
class ProbeOutcome:
    kind: str
    target: str
    failure: str | None
    failure_detail: str = ""
    duration_s: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Same field names as the wire's ``ProbeResult``."""
        return {
            "kind": self.kind,
            "target": self.target,
            "failure": self.failure or "",
            "failure_detail": self.failure_detail,
            "duration_s": self.duration_s,
            "data": dict(self.data),
        }


class ProbeKind(Protocol):
    """What the registry holds for each kind (a module satisfies it)."""

    NAME: str

    run: Callable[[Any, Limits], Awaitable[ProbeOutcome]]
