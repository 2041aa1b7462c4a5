"""What a throttle or a block keys on: the TLS server name, the address, or DNS.

In March 2021 the Russian throttle keyed on the SNI (``*.twimg.com``, ``t.co``), not on
addresses: Censored Planet showed it by sending the same bytes with one thing swapped.
A job that carries ``-o trigger_check=URL`` (throughput) or ``-o trigger_check=host[:port]``
(tls) makes each agent do the same after its measurement (``agent/probes/throughput.py``,
``agent/probes/tls.py``): one exchange with the **target's address under a neutral
name** (swap ``sni``), one with **a neutral server under the target's name** (swap
``address``). ``Checks.of`` reads them from a result.

Each measurement votes (``vote``), when it can say anything:

- A swap **escaped** when its exchange got what the target's did not: it worked where the
  target failed, or its rate was at least ``ESCAPE_FACTOR`` (2.5) times the target's.
  2.5 is the inverse of the throttle rule's ratio (0.4, docs/detection.md): a swap that
  escapes by less would not have been called throttled either way. It **did not escape**
  when it failed, or its rate was below ``SAME_FACTOR`` (1.6) times the target's; in
  between, it says nothing (jitter of a fast path, a neutral server of another size).
- ``sni`` when the name's swap escaped and the address's did not: the throttle followed
  the name, whatever address carried it; ``address`` when the address's swap escaped and
  the name's did not. ``unknown`` when both escaped (a censor that keys on the pair) or
  one escaped and the other said nothing.
- A measurement whose answers were a lie (``dns_manipulation``) votes ``dns``.
- Nothing otherwise: neither swap escaped (the measurement was not throttled, or the
  neutral server is as slow as the target: no information either way), or the target
  failed in DNS (``dns_*``: there was no address to swap).

``decide`` turns the votes of a (group, target) in the window into the verdict's trigger:
each agent's strict majority is its vote, and a strict majority of the agents, at least
``MIN_VOTES`` (2) of them, names the trigger, so one agent alone (however many rounds)
names none; ``unknown`` otherwise. The analyzer takes the votes of the measurements the
verdict was decided on (the witnessed ones, of the throttled direction), gives a trigger
only to throttled and blocked verdicts, and ``dns`` to every blocked verdict whose
failure is DNS (``dns_manipulation``, ``dns_*``) and to the URL and tls targets on a name
that is blocked so in the same group.

False-positive controls: a swap is judged against the same agent's target exchange in
the same task (the same line, the same minute), so a congested region (everything slow
alike) escapes nothing and votes nothing; the votes only name a trigger for a verdict
the throttle and block rules already reached on their own.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from common.failures import AGENT_ERRORS, TARGET_FORBIDDEN

# Check outcomes that are evidence neither way: the agent could not make the check (an
# agent error: no time left) or its policy forbade the address (target_forbidden).
_NOT_EVIDENCE = AGENT_ERRORS | {TARGET_FORBIDDEN}

Trigger = Literal["sni", "address", "dns", "unknown"]
TRIGGERS: tuple[Trigger, ...] = ("sni", "address", "dns", "unknown")
SWAPS = ("sni", "address")
ESCAPE_FACTOR = 2.5
SAME_FACTOR = 1.6
MIN_VOTES = 2
# A result carries two checks; anything past a few entries is not from this contract.
_MAX_ITEMS = 4


@dataclass(frozen=True, slots=True)
class Check:
    """One swapped exchange: whether it worked, and its rate (bytes/s; None for a tls
    handshake, or a transfer too short to have one)."""

    ok: bool
    bps: float | None = None


@dataclass(frozen=True, slots=True)
class Checks:
    """The trigger checks of one measurement, by swap."""

    sni: Check | None = None
    address: Check | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Checks | None:
        """The checks of a result's data (``trigger_checks``), None when it has none. Only
        the first entry of each swap counts; malformed entries are skipped, and so are
        checks the agent could not make (an agent error: no time left before the task's
        deadline) or its policy forbade (``target_forbidden``): evidence neither way."""
        items = data.get("trigger_checks")
        if not isinstance(items, list) or not items:
            return None
        found: dict[str, Check] = {}
        for item in items[:_MAX_ITEMS]:
            if not isinstance(item, Mapping):
                continue
            swap = item.get("swap")
            if swap not in SWAPS or swap in found:
                continue
            failure = item.get("failure")
            if failure in _NOT_EVIDENCE:
                continue
            ok = not failure
            found[str(swap)] = Check(ok=ok, bps=_rate(item) if ok else None)
        return cls(**found) if found else None


def _rate(item: Mapping[str, Any]) -> float | None:
    """The rate a check is compared by: the sustained one, else the mean (as the target's)."""
    for key in ("sustained_bps", "bytes_per_second"):
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
    return None


def escaped(check: Check | None, *, failed: bool, bps: float | None) -> bool | None:
    """Whether a swapped exchange got past what stopped or slowed the target's: True,
    False, or None when it cannot say (no check; no rates to compare; in between)."""
    if check is None:
        return None
    if not check.ok:
        return False
    if failed:
        return True
    if bps is None or check.bps is None:
        return None
    if check.bps >= bps * ESCAPE_FACTOR:
        return True
    if check.bps < bps * SAME_FACTOR:
        return False
    return None


def vote(
    checks: Checks | None, *, failure: str | None, failed: bool, bps: float | None,
    dns_manipulation: bool = False,
) -> Trigger | None:  # fmt: skip
    """One measurement's vote (see the module docstring); None abstains."""
    if dns_manipulation:
        return "dns"
    if checks is None or (failure is not None and failure.startswith("dns_")):
        return None  # a target that failed in DNS had no address to swap: nothing to say
    by_sni = escaped(checks.sni, failed=failed, bps=bps)
    by_address = escaped(checks.address, failed=failed, bps=bps)
    if by_sni and by_address is False:
        return "sni"
    if by_address and by_sni is False:
        return "address"
    if by_sni or by_address:
        return "unknown"
    return None


def _majority(votes: Iterable[Trigger | None]) -> tuple[Trigger | None, int]:
    """The strict majority of the votes cast (abstentions aside) and how many were cast;
    ``unknown`` without one, None when none was cast."""
    counted = Counter(v for v in votes if v is not None)
    total = sum(counted.values())
    if not total:
        return None, 0
    top, n = counted.most_common(1)[0]
    return (top if 2 * n > total else "unknown"), total


def decide(votes_by_agent: Mapping[str, Iterable[Trigger | None]]) -> Trigger:
    """The trigger a (group, target)'s votes name: each agent's own majority is its vote,
    and the agents' votes name a trigger by a strict majority of at least ``MIN_VOTES``
    agents; else ``unknown``. One agent alone, however many rounds, names nothing."""
    by_agent = [_majority(votes)[0] for votes in votes_by_agent.values()]
    top, total = _majority(by_agent)
    if top is None or total < MIN_VOTES:
        return "unknown"
    return top
