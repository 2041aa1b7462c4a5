"""Probe kinds and the one table that registers their run side.

The interface the agent runner and ``vantage probe`` use::

    from agent.probes import KINDS, parse_spec, run_probe, option_help

- ``parse_spec(kind, target, options, limits)`` builds a kind's frozen spec or raises
  ``SpecError(field, reason)`` (``kind``, ``target`` or ``options.<name>``). Pure: no
  I/O, no DNS. It is :func:`common.specs.parse_spec` (the coordinator validates jobs
  with it from there), re-exported here with ``KINDS``, ``Limits``, ``SpecError`` and
  ``option_help``.
- ``await run_probe(spec, limits)`` returns a ``ProbeOutcome``; network failures are
  data (``failure`` from ``common.failures.FAILURES``), never exceptions.
- ``option_help(kind)`` maps each option name to a line of help.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agent.probes import dns, http, ping, tcp, throughput, tls, traceroute
from agent.probes.base import Limits, ProbeKind, ProbeOutcome, SpecError
from agent.probes.failures import FAILURES, classify
from common.specs import KINDS, option_help, parse_spec

_REGISTRY: Mapping[str, ProbeKind] = MappingProxyType(
    {module.NAME: module for module in (dns, tcp, tls, http, throughput, ping, traceroute)}  # type: ignore[misc]
)
assert tuple(_REGISTRY) == KINDS

__all__ = [
    "FAILURES",
    "KINDS",
    "Limits",
    "ProbeOutcome",
    "SpecError",
    "classify",
    "option_help",
    "parse_spec",
    "run_probe",
]


async def run_probe(spec: Any, limits: Limits) -> ProbeOutcome:
    """Run a spec from :func:`parse_spec`; failures come back in ``ProbeOutcome.failure``."""
    try:
        kind = _REGISTRY[spec.kind]
    except KeyError:
        raise SpecError("kind", f"unknown probe kind {spec.kind!r} (known: {', '.join(KINDS)})") from None
    outcome: ProbeOutcome = await kind.run(spec, limits)
    return outcome
