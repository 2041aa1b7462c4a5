"""DNS manipulation: a resolver that answers a name with an address that is not the name's.

A dns measurement that got answers is marked ``dns_manipulation`` (a failure, like a
block page, so the blocked rule judges it) by these rules (docs/detection.md, "DNS"):

1. **A bogon** (a private, loopback, reserved ... address: ``bogon_answers``, the agent's
   target policy decides) among the answers, while the reference answered with addresses
   and none of them is a bogon. Iran's 10.10.34.35 is the classic case.
2. **No overlap and no valid TLS.** The answers share no address and no network (the
   same /24, or /48 for IPv6: a stand-in for "the same ASN" until the coordinator has an
   IP-to-ASN table) with the reference, *and* the agent's TLS checks of the answers
   (``tls_checks``: a handshake on 443 with the name as SNI, certificate verified) were
   made and none was valid. A CDN that answers with another of its addresses serves a
   valid certificate for the name there, so it is never called a lie; a block-page
   server or a bogus address does not.

The **reference** is, per measurement at ingest (``judge``), the control resolver the same
agent asked in the same task (``-o control=tls://...``, DoT or DoH that the network cannot
rewrite unseen); and at each evaluation (``mark``), the answers of the majority of the
groups for the same name in the window (``majority``: groups whose answers overlap, more
than half of them, in two countries or more), when at least ``MIN_OTHER_GROUPS`` groups
of it are not the measurement's own.

A TLS check "failed" (rule 2) when none was valid and either every failure was at the TLS
level (a certificate that does not verify for the name, a broken handshake) or the
control's own first address served valid TLS for the name (``tls_reference``): a refused
port means nothing for a name that serves no HTTPS at all.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from common.failures import CONNECTION_RESET, TLS_CERT_INVALID, TLS_HANDSHAKE_FAILED

MIN_OTHER_GROUPS = 2
GROUP_ADDRESSES = 64  # a group's answers a comparison looks at (its most recent ones)
_MAX = 32


def _addresses(values: object) -> tuple[str, ...]:
    out: list[str] = []
    if not isinstance(values, list):
        return ()
    for value in values[: _MAX * 4]:
        if not isinstance(value, str) or len(value) > 64:
            continue
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            continue  # a CNAME, MX or TXT value: not an address
        text = str(address)
        if text not in out:
            out.append(text)
        if len(out) >= _MAX:
            break
    return tuple(out)


@functools.lru_cache(maxsize=1 << 16)
def _network(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) of an address; cached: the analysis asks for the same
    few addresses at every evaluation, and ipaddress costs some 20 us a call."""
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# TLS failures that say the address does not serve the name: a certificate that does not
# verify for it, or a handshake it broke. A refused or silent port is weaker (the name may
# not serve HTTPS at all) and counts only when the control's address served valid TLS.
_TLS_LEVEL = frozenset({TLS_CERT_INVALID, TLS_HANDSHAKE_FAILED, CONNECTION_RESET})


@dataclass(frozen=True, slots=True)
class Answers:
    """A dns measurement's answers, as far as the rules look at them."""

    addresses: tuple[str, ...]
    bogons: tuple[str, ...] = ()
    control: tuple[str, ...] | None = None  # None: no control, or it did not answer
    control_bogons: tuple[str, ...] = ()
    tls_checked: int = 0  # answers whose TLS was checked
    tls_valid: int = 0  # of those, valid for the name
    tls_failures: tuple[str, ...] = ()  # the failure classes of the checks that were not valid
    reference_valid: bool | None = None  # the control's own address: valid TLS for the name?

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Answers | None:
        """The answers of a dns result's data, or None when it has no address answer."""
        addresses = _addresses(data.get("answers"))
        if not addresses:
            return None
        bogons = tuple(a for a in _addresses(data.get("bogon_answers")) if a in addresses)
        control = None
        control_bogons: tuple[str, ...] = ()
        ctl = data.get("control")
        if isinstance(ctl, dict) and not ctl.get("failure"):
            found = _addresses(ctl.get("answers"))
            if found:
                control = found
                control_bogons = tuple(a for a in found if _is_bogon(a))
        checked = valid = 0
        failures: list[str] = []
        checks = data.get("tls_checks")
        if isinstance(checks, list):
            for check in checks[:_MAX]:
                if isinstance(check, dict) and check.get("checked") is True:
                    checked += 1
                    if check.get("valid") is True:
                        valid += 1
                    else:
                        failure = check.get("failure")
                        failures.append(failure[:40] if isinstance(failure, str) else "")
        reference_valid = None
        ref = data.get("tls_reference")
        if isinstance(ref, dict) and ref.get("checked") is True:
            reference_valid = ref.get("valid") is True
        return cls(addresses=addresses, bogons=bogons, control=control,
                   control_bogons=control_bogons, tls_checked=checked, tls_valid=valid,
                   tls_failures=tuple(failures), reference_valid=reference_valid)  # fmt: skip

    @property
    def tls_failed(self) -> bool:
        """TLS was checked for some answer and valid for none, and that says the answers do
        not serve the name: a TLS-level failure, or the control's address served it."""
        if self.tls_checked == 0 or self.tls_valid > 0:
            return False
        return self.reference_valid is True or all(f in _TLS_LEVEL for f in self.tls_failures)

    @property
    def networks(self) -> frozenset[str]:
        return frozenset(_network(a) for a in self.addresses)


def _is_bogon(address: str) -> bool:
    """For the control's answers, which the agent's policy did not classify: an address
    that is not globally routable (private, loopback, reserved, ...), as the policy's
    ranges are (agent/policy.py)."""
    ip = ipaddress.ip_address(address)
    return not ip.is_global


@dataclass(frozen=True, slots=True)
class Reference:
    """Addresses that a trusted source got for the name, and their networks."""

    addresses: frozenset[str]
    networks: frozenset[str]
    bogons: bool  # the reference itself has inside addresses (a lab, an intranet name)

    @classmethod
    def of(cls, addresses: Iterable[str], bogons: bool) -> Reference:
        found = frozenset(addresses)
        return cls(addresses=found, networks=frozenset(_network(a) for a in found), bogons=bogons)


def lie(answers: Answers, reference: Reference) -> str:
    """Why ``answers`` are a lie against ``reference`` (module docstring), or ""."""
    if not reference.addresses:
        return ""
    if answers.bogons and not reference.bogons:
        return f"answered {answers.bogons[0]}, a bogon, where the reference has none"
    if not answers.tls_failed:  # the cheap test first: most answers pass it
        return ""
    if set(answers.addresses) & reference.addresses or answers.networks & reference.networks:
        return ""
    first = min(reference.addresses)
    return (f"answered {answers.addresses[0]}, sharing no address or network with the "
            f"reference ({first}), and TLS for the name failed there")  # fmt: skip


def judge(answers: Answers | None) -> str:
    """Against the same task's control resolver (at ingest): why it is a lie, or ""."""
    if answers is None or answers.control is None:
        return ""
    return lie(answers, Reference.of(answers.control, bool(answers.control_bogons)))


def majority(by_group: Mapping[str, tuple[frozenset[str], frozenset[str], str]]) -> set[str]:
    """The largest set of groups whose answers overlap (an address or a network in common)
    those of one of them, when it is more than half of the groups, at least
    ``MIN_OTHER_GROUPS``, and (where countries are known) from two countries or more: a
    national censor's lie is told in one country. ``by_group``: group -> (addresses,
    networks, country). Indexed, so linear in the answers, not quadratic in the groups."""
    by_address: dict[str, set[str]] = {}
    by_network: dict[str, set[str]] = {}
    for group, (addresses, networks, _country) in by_group.items():
        for a in addresses:
            by_address.setdefault(a, set()).add(group)
        for n in networks:
            by_network.setdefault(n, set()).add(group)
    best: set[str] = set()
    for seed in sorted(by_group):
        addresses, networks, _ = by_group[seed]
        members = set().union(*(by_address[a] for a in addresses), *(by_network[n] for n in networks))
        if len(members) > len(best):
            best = members
            if len(best) == len(by_group):
                break  # everyone: no larger set exists
    countries = {by_group[g][2] for g in best}
    known = {c for c in countries if c}
    if len(best) * 2 <= len(by_group) or len(best) < MIN_OTHER_GROUPS:
        return set()
    if known and len(known) < 2 and "" not in countries:
        return set()
    return best


def mark(groups: dict[str, dict[str, dict[str, list[Any]]]]) -> int:
    """Mark, in place, the dns measurements of one name (``groups``: group -> kind ->
    agent -> measurements) whose answers lie against those of the majority of the groups
    (``majority``) other than their own (module docstring). Returns how many were marked."""
    found: dict[str, list[tuple[float, Answers]]] = {}
    bogons: dict[str, bool] = {}
    country: dict[str, str] = {}
    for group, kinds in groups.items():
        for ms in kinds.get("dns", {}).values():
            for m in ms:
                if m.answers is not None and not m.dns_manipulation and m.failure is None:
                    found.setdefault(group, []).append((m.at, m.answers))
                    bogons[group] = bogons.get(group, False) or bool(m.answers.bogons)
                    country[group] = m.country
    if len(found) < MIN_OTHER_GROUPS + 1:
        return 0
    # each group's answers, the most recent first, at most GROUP_ADDRESSES of them: what
    # the comparison costs is bounded whatever the agents send
    addresses: dict[str, list[str]] = {}
    for group, items in found.items():
        kept: dict[str, None] = {}
        for _, answers in sorted(items, key=lambda item: -item[0]):
            for a in answers.addresses:
                kept.setdefault(a)
            if len(kept) >= GROUP_ADDRESSES:
                break
        addresses[group] = list(kept)[:GROUP_ADDRESSES]
    sets = {g: (frozenset(a), frozenset(_network(x) for x in a), country[g]) for g, a in addresses.items()}
    agreed = majority(sets)
    if not agreed:
        return 0
    marked = 0
    for group, kinds in groups.items():
        by_agent = kinds.get("dns")
        others = [g for g in agreed if g != group]
        if not by_agent or len(others) < MIN_OTHER_GROUPS:
            continue
        reference = Reference(
            addresses=frozenset().union(*(sets[g][0] for g in others)),
            networks=frozenset().union(*(sets[g][1] for g in others)),
            bogons=any(bogons[g] for g in others),
        )
        for agent, ms in by_agent.items():
            new = []
            for m in ms:
                if m.answers is not None and not m.dns_manipulation and m.failure is None and lie(m.answers, reference):
                    m = replace(m, dns_manipulation=True)
                    marked += 1
                new.append(m)
            by_agent[agent] = new
    return marked
