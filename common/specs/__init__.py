"""Probe specs: what a job may ask a probe to do, parsed the same way on both sides.

::

    from common.specs import KINDS, Limits, SpecError, option_help, parse_spec

- ``parse_spec(kind, target, options, limits)`` builds a kind's frozen spec or raises
  ``SpecError(field, reason)`` (``kind``, ``target`` or ``options.<name>``). Pure: no
  I/O, no DNS. The coordinator validates jobs (and its canaries) with it, so it refuses
  what no agent could run; the agent parses each task with it before running it
  (``agent.probes.run_probe``).
- ``option_help(kind)`` maps each option name to a line of help.

One module per kind (``dns``, ``tcp``, ``tls``, ``http``, ``throughput``, ``ping``,
``traceroute``), each with
``NAME``, ``OPTIONS``, ``Spec`` and ``parse`` (:mod:`common.specs.base`); the option
helpers they share are :mod:`common.specs.options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from common.kinds import KINDS
from common.specs import dns, http, ping, tcp, throughput, tls, traceroute
from common.specs.base import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_S, Limits, SpecError, SpecKind

_REGISTRY: Mapping[str, SpecKind] = MappingProxyType(
    {module.NAME: module for module in (dns, tcp, tls, http, throughput, ping, traceroute)}  # type: ignore[misc]
)
assert tuple(_REGISTRY) == KINDS

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "KINDS",
    "Limits",
    "SpecError",
    "option_help",
    "parse_spec",
]


def _kind(kind: str) -> SpecKind:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise SpecError("kind", f"unknown probe kind {kind!r} (known: {', '.join(KINDS)})") from None


def parse_spec(kind: str, target: str, options: Mapping[str, str], limits: Limits) -> Any:
    """The kind's frozen spec (with ``.kind`` and ``.target``), or ``SpecError``."""
    return _kind(kind).parse(target, options, limits)


def option_help(kind: str) -> Mapping[str, str]:
    """Option name -> one line of help, for ``kind``."""
    return MappingProxyType(dict(_kind(kind).OPTIONS))
