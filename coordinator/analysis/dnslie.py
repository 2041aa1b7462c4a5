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
rewrite unseen); and at each evaluation (``mark``), the answers the other groups got for
the same name in the window, when at least ``MIN_OTHER_GROUPS`` other groups answered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

MIN_OTHER_GROUPS = 2
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


def _network(address: str) -> str:
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class Answers:
    """A dns measurement's answers, as far as the rules look at them."""

    addresses: tuple[str, ...]
    bogons: tuple[str, ...] = ()
    control: tuple[str, ...] | None = None  # None: no control, or it did not answer
    control_bogons: tuple[str, ...] = ()
    tls_checked: int = 0  # answers whose TLS was checked
    tls_valid: int = 0  # of those, valid for the name

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
        checks = data.get("tls_checks")
        if isinstance(checks, list):
            for check in checks[:_MAX]:
                if isinstance(check, dict) and check.get("checked") is True:
                    checked += 1
                    valid += 1 if check.get("valid") is True else 0
        return cls(addresses=addresses, bogons=bogons, control=control,
                   control_bogons=control_bogons, tls_checked=checked, tls_valid=valid)  # fmt: skip

    @property
    def tls_failed(self) -> bool:
        """TLS was checked for some answer and valid for none."""
        return self.tls_checked > 0 and self.tls_valid == 0


def _is_bogon(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global


def lie(answers: Answers, reference: Iterable[str], reference_bogons: bool) -> str:
    """Why ``answers`` are a lie against ``reference`` (addresses the reference resolver
    or the other groups got), or "" when they are not (module docstring)."""
    ref = tuple(reference)
    if not ref:
        return ""
    if answers.bogons and not reference_bogons:
        return f"answered {answers.bogons[0]}, a bogon, where the reference has none"
    ours = set(answers.addresses)
    if ours & set(ref):
        return ""
    if {_network(a) for a in ours} & {_network(a) for a in ref}:
        return ""
    if answers.tls_failed:
        return (f"answered {answers.addresses[0]}, sharing no address or network with the "
                f"reference ({ref[0]}), and TLS for the name failed there")  # fmt: skip
    return ""


def judge(answers: Answers | None) -> str:
    """Against the same task's control resolver (at ingest): why it is a lie, or ""."""
    if answers is None or answers.control is None:
        return ""
    return lie(answers, answers.control, bool(answers.control_bogons))


def mark(groups: dict[str, dict[str, dict[str, list[Any]]]]) -> int:
    """Mark, in place, the dns measurements of one name (``groups``: group -> kind ->
    agent -> measurements) whose answers lie against the other groups' answers in the
    window (module docstring). Returns how many were marked."""
    seen: dict[str, list[Answers]] = {}
    for group, kinds in groups.items():
        for ms in kinds.get("dns", {}).values():
            for m in ms:
                if m.answers is not None and not m.dns_manipulation:
                    seen.setdefault(group, []).append(m.answers)
    if len(seen) < MIN_OTHER_GROUPS + 1:
        return 0
    marked = 0
    for group, kinds in groups.items():
        by_agent = kinds.get("dns")
        if not by_agent or group not in seen:
            continue
        others = [a for g, found in seen.items() if g != group for a in found]
        if len({g for g in seen if g != group}) < MIN_OTHER_GROUPS:
            continue
        reference = [addr for a in others for addr in a.addresses]
        reference_bogons = any(a.bogons for a in others)
        for agent, ms in by_agent.items():
            new = []
            for m in ms:
                if m.answers is not None and not m.dns_manipulation and m.failure is None and lie(
                    m.answers, reference, reference_bogons
                ):
                    m = replace(m, dns_manipulation=True)
                    marked += 1
                new.append(m)
            by_agent[agent] = new
    return marked
