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
groups for the same name in the window (``majority``: groups with an answer overlapping
one answer set, more than half of them, not all of one declared country), corroborated
by another group of it, when at least ``MIN_OTHER_GROUPS`` groups of it are not the
measurement's own.

A TLS check "failed" (rule 2) when none was valid and either every failure was at the TLS
level (a certificate that does not verify for the name, a broken handshake) or the
control's own first address served valid TLS for the name (``tls_reference``): a refused
port means nothing for a name that serves no HTTPS at all; and never when the control's
address failed TLS too.
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
        if self.reference_valid is False:  # the control's address fails too: the name serves
            return False  # no valid TLS anywhere (an HTTP-only name on shared hosting)
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


def one_country(groups: Iterable[str], countries: Mapping[str, str]) -> bool:
    """Whether the groups' declared countries are all one country (groups that declared
    none are left out; no declared country at all is not "one country")."""
    known = {countries.get(g, "") for g in groups} - {""}
    return len(known) == 1


def majority(kept: Mapping[str, list[Answers]], countries: Mapping[str, str]) -> set[str]:
    """The largest set of groups with an answer that overlaps (an address or a network in
    common) one answer set, when it is more than half of the groups, at least
    ``MIN_OTHER_GROUPS``, and not all of one declared country: a national censor's lie is
    told in one country. Seeded by single answer sets, not by a group's union, so a group
    whose agents got both the lie and the truth does not bridge the liars into the
    majority. Indexed, and each distinct answer set seeds once."""
    by_address: dict[str, set[str]] = {}
    by_network: dict[str, set[str]] = {}
    for group, lst in kept.items():
        for answers in lst:
            for a in answers.addresses:
                by_address.setdefault(a, set()).add(group)
            for n in answers.networks:
                by_network.setdefault(n, set()).add(group)
    best: set[str] = set()
    seeded: set[tuple[str, ...]] = set()
    for group in sorted(kept):
        for answers in kept[group]:
            if answers.addresses in seeded:
                continue
            seeded.add(answers.addresses)
            members = set().union(
                *(by_address[a] for a in answers.addresses), *(by_network[n] for n in answers.networks)
            )
            if len(members) > len(best):
                best = members
    if len(best) * 2 <= len(kept) or len(best) < MIN_OTHER_GROUPS:
        return set()
    if one_country(best, countries):
        return set()
    return best


def mark(groups: dict[str, dict[str, dict[str, list[Any]]]]) -> int:
    """Mark, in place, the dns measurements of one name (``groups``: group -> kind ->
    agent -> measurements) whose answers lie against those of the majority of the groups
    (``majority``) other than their own (module docstring). The reference is made of the
    majority's answers that another group of the majority corroborates (an address or a
    network in common), so a lying agent inside a majority group lends its lie no weight.
    Returns how many were marked."""
    found: dict[str, list[tuple[float, Answers]]] = {}
    country: dict[str, str] = {}
    for group, kinds in groups.items():
        for ms in kinds.get("dns", {}).values():
            for m in ms:
                if m.answers is not None and not m.dns_manipulation and m.failure is None:
                    found.setdefault(group, []).append((m.at, m.answers))
                    if m.country:
                        country[group] = m.country
    if len(found) < MIN_OTHER_GROUPS + 1:
        return 0
    # each group's answer sets, the most recent first, up to GROUP_ADDRESSES addresses in
    # all: what the comparison costs is bounded whatever the agents send
    kept: dict[str, list[Answers]] = {}
    for group, items in found.items():
        total = 0
        for _, answers in sorted(items, key=lambda item: -item[0]):
            if total >= GROUP_ADDRESSES:
                break
            kept.setdefault(group, []).append(answers)
            total += len(answers.addresses)
    agreed = majority(kept, country)
    if not agreed:
        return 0
    by_address: dict[str, set[str]] = {}
    by_network: dict[str, set[str]] = {}
    for g in agreed:
        for answers in kept[g]:
            for a in answers.addresses:
                by_address.setdefault(a, set()).add(g)
            for n in answers.networks:
                by_network.setdefault(n, set()).add(g)

    def corroborated(group: str, answers: Answers) -> bool:
        return any(by_address.get(a, set()) - {group} for a in answers.addresses) or any(
            by_network.get(n, set()) - {group} for n in answers.networks
        )

    trusted = {g: [ans for ans in kept[g] if corroborated(g, ans)] for g in agreed}
    marked = 0
    for group, kinds in groups.items():
        by_agent = kinds.get("dns")
        others = [g for g in agreed if g != group and trusted[g]]
        if not by_agent or len(others) < MIN_OTHER_GROUPS:
            continue
        reference = Reference(
            addresses=frozenset(a for g in others for ans in trusted[g] for a in ans.addresses),
            networks=frozenset(n for g in others for ans in trusted[g] for n in ans.networks),
            bogons=any(ans.bogons for g in others for ans in trusted[g]),
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
