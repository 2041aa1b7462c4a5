"""Probe kinds and the one table that registers them.

The interface the agent runner, the coordinator's job validation and ``vantage probe``
use::

    from agent.probes import KINDS, parse_spec, run_probe, option_help

- ``parse_spec(kind, target, options, limits)`` builds a kind's frozen spec or raises
  ``SpecError(field, reason)`` (``kind``, ``target`` or ``options.<name>``). Pure: no
  I/O, no DNS; the coordinator can validate jobs with it.
- ``await run_probe(spec, limits)`` returns a ``ProbeOutcome``; network failures are
  data (``failure`` from ``agent.probes.failures.FAILURES``), never exceptions.
- ``option_help(kind)`` maps each option name to a line of help.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agent.probes import dns, http, tcp, throughput, tls
from agent.probes.base import Limits, ProbeKind, ProbeOutcome, SpecError
from agent.probes.failures import FAILURES, classify
from common.kinds import KINDS

_REGISTRY: Mapping[str, ProbeKind] = MappingProxyType(
    {module.NAME: module for module in (dns, tcp, tls, http, throughput)}  # type: ignore[misc]
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


def _kind(kind: str) -> ProbeKind:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise SpecError("kind", f"unknown probe kind {kind!r} (known: {', '.join(KINDS)})") from None


def parse_spec(kind: str, target: str, options: Mapping[str, str], limits: Limits) -> Any:
    """The kind's frozen spec (with ``.kind`` and ``.target``), or ``SpecError``."""
    return _kind(kind).parse(target, options, limits)


async def run_probe(spec: Any, limits: Limits) -> ProbeOutcome:
    """Run a spec from :func:`parse_spec`; failures come back in ``ProbeOutcome.failure``."""
    outcome: ProbeOutcome = await _kind(spec.kind).run(spec, limits)
    return outcome


def option_help(kind: str) -> Mapping[str, str]:
    """Option name -> one line of help, for ``kind``."""
    return MappingProxyType(dict(_kind(kind).OPTIONS))
