"""The contract every probe kind follows.

A probe kind is a module in ``agent/probes/`` with a frozen, keyword-only ``Spec``
dataclass, a ``parse(target, options, limits) -> Spec`` that raises ``SpecError`` naming
the bad field, and ``async def run(spec, limits) -> ProbeOutcome``. Network failures are
data: ``ProbeOutcome.failure`` is one of ``agent.probes.failures.FAILURES`` or ``None``.
A probe raises only when it could not run at all.

``ProbeOutcome.data`` holds the kind's own fields as JSON-able values; the same names go
on the wire (``ProbeResult.data``) and into ``vantage probe --json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class SpecError(ValueError):
    """A probe spec could not be built: ``field`` names what is wrong and ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps an operator sets on what probes may do on this host."""

    allow_private_targets: bool = False
    max_bytes_cap: int = 100 * 1024 * 1024
    max_timeout_s: float = DEFAULT_TIMEOUT_S
    # Agent-local name overrides, like curl's --resolve: name (lower case) -> IP literal.
    # Probes connect there but keep the name for SNI and the Host header; the target
    # policy still applies to the address. Labs and the demo use it to give one region a
    # different path to a target.
    host_overrides: Mapping[str, str] = field(default_factory=dict)


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
    OPTIONS: Mapping[str, str]  # option name -> one-line help

    def parse(self, target: str, options: Mapping[str, str], limits: Limits) -> Any: ...

    run: Callable[[Any, Limits], Awaitable[ProbeOutcome]]
