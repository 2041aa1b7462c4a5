"""The contract every probe kind's spec follows, and the limits specs are parsed under.

A kind's spec module in ``common/specs/`` has a ``NAME``, an ``OPTIONS`` help table
(option name -> one line), a frozen, keyword-only ``Spec`` dataclass (with ``kind`` and
``target``) and a pure ``parse(target, options, limits) -> Spec`` that raises
:class:`SpecError` naming the bad field. Running a spec is the agent's
(``agent/probes/<kind>.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    # The directory a task's ``ca_file`` may name a file in (the agent's --ca-dir); None:
    # no ca_file is accepted. ``vantage probe`` (the operator's own command) uses "/".
    ca_dir: str | None = None
    # The agent's offline IP-to-ASN table (``--asn-file``, agent/asn.py): address -> ASN or
    # None. Traceroute hops carry the ASN where it knows one; it never asks the network.
    asn_lookup: Callable[[str], int | None] | None = None


def bytes_at_most(spec: Any) -> int:
    """The most bytes a parsed spec's probe may move: its ``max_bytes``, counted again for
    a control download and twice for a trigger check; 0 for kinds without a body. The agent's hourly
    budget (agent/budget.py) and a token's byte quota (coordinator/quotas.py) count this."""
    max_bytes = getattr(spec, "max_bytes", None)
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        return 0
    # a control is one more transfer; a trigger check two (each swaps one thing)
    extra = (1 if getattr(spec, "control", None) else 0) + (2 if getattr(spec, "trigger_check", None) else 0)
    return max_bytes * (1 + extra)


class SpecKind(Protocol):
    """What the registry holds for each kind (a module satisfies it)."""

    NAME: str
    OPTIONS: Mapping[str, str]  # option name -> one-line help

    def parse(self, target: str, options: Mapping[str, str], limits: Limits) -> Any: ...
