"""dns: resolve a name through the system resolver or an explicit one, with dnspython.

Each record type (A and AAAA by default) is one query sent straight to the resolver
(UDP, falling back to TCP when the answer is truncated, or TCP only), so the probe sees
the resolver's own rcode: a SERVFAIL or REFUSED is reported as such, not retried
elsewhere. The CNAME chain in the answer is kept. Answers in ranges the target policy
forbids (private, loopback, ...) are listed under ``bogon_answers``: a resolver that
answers a public name with ``10.10.34.35`` is lying, the classic DNS block.

The policy applies to an explicit ``resolver=`` address (an agent must not become a DNS
scanner of its own network) but not to the system resolver the host is configured with.
The spec and its options are parsed in ``common/specs/dns.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from agent.policy import check_address, forbidden_reason
from agent.probes import failures as f
from agent.probes.base import Limits, ProbeOutcome
from agent.probes.common import failed, now
from common.specs.dns import NAME, Spec


async def _system_resolver() -> tuple[str, int]:
    def read() -> tuple[str, int]:
        resolver = dns.resolver.Resolver()
        if not resolver.nameservers:
            raise OSError("no nameserver in the system configuration")
        return str(resolver.nameservers[0]), int(resolver.port)

    return await asyncio.to_thread(read)


@dataclass(frozen=True, kw_only=True)
class _Answer:
    qtype: str
    rcode: str = ""
    answers: tuple[dict[str, Any], ...] = ()
    cname_chain: tuple[str, ...] = ()
    failure: str | None = None
    detail: str = ""
    duration_s: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return {
            "rcode": self.rcode,
            "answers": [dict(a) for a in self.answers],
            "cname_chain": list(self.cname_chain),
            "failure": self.failure or "",
            "duration_s": round(self.duration_s, 6),
        }


_RCODE_FAILURES = {
    dns.rcode.NXDOMAIN: f.DNS_NXDOMAIN,
    dns.rcode.SERVFAIL: f.DNS_SERVFAIL,
    dns.rcode.REFUSED: f.DNS_REFUSED,
}


async def _ask(spec: Spec, qtype: str, where: str, port: int) -> _Answer:
    started = now()
    query = dns.message.make_query(spec.target, dns.rdatatype.from_text(qtype))
    try:
        if spec.transport == "tcp":
            response = await dns.asyncquery.tcp(query, where, timeout=spec.timeout_s, port=port)
        else:
            response, _tcp = await dns.asyncquery.udp_with_fallback(
                query, where, timeout=spec.timeout_s, port=port
            )
    except (dns.exception.DNSException, OSError, EOFError) as exc:
        failure = f.DNS_TIMEOUT if isinstance(exc, dns.exception.Timeout) else f.classify(exc)
        if failure == f.GENERIC_TIMEOUT:
            failure = f.DNS_TIMEOUT
        return _Answer(qtype=qtype, failure=failure, detail=f.describe(exc), duration_s=now() - started)
    rcode = response.rcode()
    answer = _Answer(qtype=qtype, rcode=dns.rcode.to_text(rcode), duration_s=now() - started)
    if rcode != dns.rcode.NOERROR:
        return _Answer(
            qtype=qtype,
            rcode=answer.rcode,
            failure=_RCODE_FAILURES.get(rcode, f.UNKNOWN_FAILURE),
            detail=f"rcode {answer.rcode}",
            duration_s=answer.duration_s,
        )
    records: list[dict[str, Any]] = []
    chain: list[str] = []
    wanted = dns.rdatatype.from_text(qtype)
    name = dns.name.from_text(spec.target)
    # Follow the CNAME chain through the answer section ourselves, so a lie is kept as is.
    for _ in range(16):
        follow = None
        for rrset in response.answer:
            if rrset.name != name:
                continue
            if rrset.rdtype == wanted:
                records.extend(
                    {"type": qtype, "value": rdata.to_text(), "ttl": int(rrset.ttl)} for rdata in rrset
                )
            elif rrset.rdtype == dns.rdatatype.CNAME and wanted != dns.rdatatype.CNAME:
                follow = rrset[0].target
        if records or follow is None:
            break
        chain.append(follow.to_text(omit_final_dot=True))
        name = follow
    return _Answer(
        qtype=qtype,
        rcode=answer.rcode,
        answers=tuple(records),
        cname_chain=tuple(chain),
        failure=None if records else f.DNS_NO_ANSWER,
        detail="" if records else f"no {qtype} record",
        duration_s=answer.duration_s,
    )


def _bogons(records: list[dict[str, Any]]) -> list[str]:
    out = []
    for record in records:
        if record["type"] in ("A", "AAAA"):
            try:
                address = ipaddress.ip_address(record["value"])
            except ValueError:
                continue
            if forbidden_reason(address) is not None:
                out.append(str(record["value"]))
    return out


def _overall(answers: list[_Answer]) -> tuple[str | None, str]:
    by_failure = {a.failure: a for a in answers if a.failure}
    if f.DNS_NXDOMAIN in by_failure:
        return f.DNS_NXDOMAIN, by_failure[f.DNS_NXDOMAIN].detail
    if any(a.answers for a in answers):
        return None, ""
    for failure in (f.DNS_SERVFAIL, f.DNS_REFUSED, f.DNS_TIMEOUT, f.DNS_NO_ANSWER):
        if failure in by_failure:
            return failure, by_failure[failure].detail
    first = next(iter(by_failure.values()))
    return first.failure, first.detail


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {"query": spec.target, "types": list(spec.types), "transport": spec.transport}
    try:
        if spec.resolver is None:
            where, port = await _system_resolver()
            data["resolver"] = f"{where}:{port}"
            data["resolver_source"] = "system"
        else:
            where, port = spec.resolver, spec.resolver_port
            data["resolver"] = f"[{where}]:{port}" if ":" in where else f"{where}:{port}"
            data["resolver_source"] = "option"
            check_address(where, where, allow_private=limits.allow_private_targets)
        answers = await asyncio.gather(*(_ask(spec, qtype, where, port) for qtype in spec.types))
    except Exception as exc:
        return failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    records = [record for a in answers for record in a.answers]
    chain: list[str] = []
    for a in answers:
        chain.extend(c for c in a.cname_chain if c not in chain)
    data.update(
        rcode=next((a.rcode for a in answers if a.rcode and a.rcode != "NOERROR"), answers[0].rcode),
        answers=[str(r["value"]) for r in records],
        records=records,
        cname_chain=chain,
        bogon_answers=_bogons(records),
        responses={a.qtype: a.to_data() for a in answers},
    )
    failure, detail = _overall(list(answers))
    return ProbeOutcome(
        kind=NAME,
        target=spec.target,
        failure=failure,
        failure_detail=detail,
        duration_s=round(now() - started, 6),
        data=data,
    )
