"""dns: resolve a name through the system resolver or an explicit one, with dnspython.

Each record type (A and AAAA by default) is one query sent straight to the resolver
(UDP, falling back to TCP when the answer is truncated, or TCP only), so the probe sees
the resolver's own rcode: a SERVFAIL or REFUSED is reported as such, not retried
elsewhere. The CNAME chain in the answer is kept. Answers in ranges the target policy
forbids (private, loopback, ...) are listed under ``bogon_answers``: a resolver that
answers a public name with ``10.10.34.35`` is lying, the classic DNS block.

The resolver may also be asked over TLS (``resolver=tls://HOST``, RFC 7858, with
dnspython) or HTTPS (``resolver=https://HOST/path``, RFC 8484: a POST of the wire message,
with aiohttp), so that the agent's network cannot rewrite the answer unseen. ``control=``
names a second resolver asked the same questions in the same task (``data["control"]``):
the reference a lying local resolver is compared with. With ``check_tls`` (the default
when there is a control), each answered address the control did not also give (every
answer without a control; at most ``MAX_TLS_CHECKS``) gets a TLS handshake on port 443
(``tls_port``) with the name as SNI and the certificate verified, and so does the
control's first address (``data["tls_reference"]``: does the name serve valid TLS at all?)
(``data["tls_checks"]``): a CDN's other address serves a valid certificate for the name,
a block-page server or a bogus address does not (docs/detection.md, "DNS").

The policy applies to an explicit resolver (an agent must not become a DNS scanner of its
own network) and to every address a TLS check connects to, but not to the system
resolver the host is configured with. The spec and its options are parsed in
``common/specs/dns.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from agent.policy import (
    TargetForbidden,
    check_address,
    check_host_literal,
    check_public_name,
    forbidden_reason,
    resolve_checked,
)
from agent.probes import failures as f
from agent.probes.base import Limits, ProbeOutcome, SpecError
from agent.probes.common import failed, now
from agent.probes.http import PolicyResolver
from agent.probes.tls import make_context
from common.specs.dns import NAME, Resolver, Spec

MAX_TLS_CHECKS = 2
TLS_CHECK_TIMEOUT_S = 5.0
MAX_DOH_BYTES = 65535  # the largest DNS message
Exchange = Callable[[dns.message.Message], Awaitable[dns.message.Message]]


class DohError(Exception):
    """A DoH server answered, but not with a DNS message (status, type or size)."""


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


async def _ask(spec: Spec, qtype: str, exchange: Exchange) -> _Answer:
    started = now()
    query = dns.message.make_query(spec.target, dns.rdatatype.from_text(qtype))
    try:
        async with asyncio.timeout(spec.timeout_s):
            response = await exchange(query)
    except DohError as exc:
        return _Answer(qtype=qtype, failure=f.HTTP_ERROR, detail=str(exc), duration_s=now() - started)
    except (dns.exception.DNSException, OSError, EOFError, TimeoutError, aiohttp.ClientError) as exc:
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


def _plain(spec: Spec, where: str, port: int) -> Exchange:
    async def exchange(query: dns.message.Message) -> dns.message.Message:
        if spec.transport == "tcp":
            return await dns.asyncquery.tcp(query, where, timeout=spec.timeout_s, port=port)
        response, _tcp = await dns.asyncquery.udp_with_fallback(
            query, where, timeout=spec.timeout_s, port=port
        )
        return response

    return exchange


async def _tls(spec: Spec, resolver: Resolver, context: ssl.SSLContext, limits: Limits) -> Exchange:
    """DNS over TLS: the name (or address) is resolved through the policy once; the
    certificate is verified for it."""
    addresses = await resolve_checked(
        resolver.host, resolver.port, allow_private=limits.allow_private_targets,
        overrides=limits.host_overrides,
    )  # fmt: skip
    where = addresses[0].address

    async def exchange(query: dns.message.Message) -> dns.message.Message:
        return await dns.asyncquery.tls(
            query, where, timeout=spec.timeout_s, port=resolver.port, ssl_context=context,
            server_hostname=resolver.host,
        )  # fmt: skip

    return exchange


def _https(resolver: Resolver, session: aiohttp.ClientSession) -> Exchange:
    """DNS over HTTPS (RFC 8484): POST the wire query, read at most one DNS message."""

    async def exchange(query: dns.message.Message) -> dns.message.Message:
        headers = {"Content-Type": "application/dns-message", "Accept": "application/dns-message"}
        async with session.post(resolver.url, data=query.to_wire(), headers=headers,
                                allow_redirects=False) as resp:  # fmt: skip
            if resp.status != 200:
                raise DohError(f"DoH status {resp.status}")
            kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind != "application/dns-message":
                raise DohError(f"DoH content type {kind[:60]!r}, not application/dns-message")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(16 * 1024):
                body += chunk
                if len(body) > MAX_DOH_BYTES:
                    raise DohError(f"DoH answer longer than {MAX_DOH_BYTES} bytes")
            return dns.message.from_wire(bytes(body))

    return exchange


async def _context(spec: Spec, limits: Limits) -> ssl.SSLContext:
    try:
        return await asyncio.to_thread(
            make_context, verify=True, sni="x", ca_file=spec.ca_file, alpn=(), ca_dir=limits.ca_dir
        )
    except SpecError:
        raise
    except (OSError, ValueError) as exc:  # the system's roots could not be loaded
        raise SpecError("options.ca_file", f"cannot load the CA certificates: {exc}") from exc


async def _exchange_for(
    spec: Spec, resolver: Resolver | None, limits: Limits, context: ssl.SSLContext | None,
    session: aiohttp.ClientSession | None,
) -> tuple[Exchange, str, str]:  # fmt: skip
    """How to ask ``resolver`` (None: the system's), what to call it and its transport.
    A DoT resolver needs ``context``, a DoH one ``session`` too."""
    if resolver is None:
        # The system resolver may be a private network's: no internal names through it.
        check_public_name(spec.target, allow_private=limits.allow_private_targets)
        where, port = await _system_resolver()
        return _plain(spec, where, port), f"{where}:{port}", spec.transport
    if resolver.mode == "https":
        assert session is not None, "a DoH resolver needs the probe's HTTP session"
        # aiohttp looks up names through PolicyResolver, but never an address: check it here
        check_host_literal(resolver.host, allow_private=limits.allow_private_targets)
        return _https(resolver, session), resolver.describe(), "https"
    if resolver.mode == "tls":
        assert context is not None, "a DoT resolver needs the probe's TLS context"
        return await _tls(spec, resolver, context, limits), resolver.describe(), "tls"
    check_address(resolver.host, resolver.host, allow_private=limits.allow_private_targets)
    return _plain(spec, resolver.host, resolver.port), resolver.describe(), spec.transport


async def _questions(spec: Spec, exchange: Exchange) -> list[_Answer]:
    return list(await asyncio.gather(*(_ask(spec, qtype, exchange) for qtype in spec.types)))


def _summary(answers: list[_Answer]) -> dict[str, Any]:
    records = [record for a in answers for record in a.answers]
    chain: list[str] = []
    for a in answers:
        chain.extend(c for c in a.cname_chain if c not in chain)
    return {
        "rcode": next((a.rcode for a in answers if a.rcode and a.rcode != "NOERROR"), answers[0].rcode),
        "answers": [str(r["value"]) for r in records],
        "records": records,
        "cname_chain": chain,
    }


async def _tls_check(
    name: str, address: str, port: int, context: ssl.SSLContext, limits: Limits, timeout_s: float
) -> dict[str, Any]:
    """A TLS handshake with ``address``:``port`` (443) for ``name``: valid when the
    certificate verifies for the name. An address the policy forbids is not connected to."""
    out: dict[str, Any] = {"address": address, "checked": False, "valid": False, "failure": ""}
    try:
        check_address(name, address, allow_private=limits.allow_private_targets)
    except TargetForbidden:
        out["failure"] = f.TARGET_FORBIDDEN
        return out
    out["checked"] = True
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=name, family=family,
                ssl_handshake_timeout=timeout_s,
            )  # fmt: skip
        writer.transport.abort()
        out["valid"] = True
    except Exception as exc:
        out["failure"] = f.classify(exc)
    return out


def _reference_address(control: list[_Answer], unconfirmed: list[str]) -> list[str]:
    """The control's first A/AAAA answer, of the family of the answers being checked
    when it has one (an IPv4-only agent cannot check an IPv6 reference)."""
    addresses = [str(r["value"]) for a in control for r in a.answers if r["type"] in ("A", "AAAA")]
    v6 = ":" in unconfirmed[0]
    same = [a for a in addresses if (":" in a) == v6]
    return (same or addresses)[:1]


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {"query": spec.target, "types": list(spec.types), "transport": spec.transport}
    # The CA roots and an HTTP session cost CPU on every probe: made only when needed.
    resolvers = [r for r in (spec.asked, spec.control) if r is not None]
    needs_tls = spec.check_tls or any(r.mode != "plain" for r in resolvers)
    try:
        context = await _context(spec, limits) if needs_tls else None
        async with contextlib.AsyncExitStack() as stack:
            session = None
            if context is not None and any(r.mode == "https" for r in resolvers):
                session = await stack.enter_async_context(aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(
                        resolver=PolicyResolver(allow_private=limits.allow_private_targets,
                                                overrides=limits.host_overrides),
                        ssl=context, force_close=True, use_dns_cache=False,
                    ),
                    timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
                    headers={"User-Agent": "vantage-probe/0.1"},
                ))  # fmt: skip
            exchange, described, transport = await _exchange_for(spec, spec.asked, limits, context, session)
            data["resolver"] = described
            data["resolver_source"] = "system" if spec.asked is None else "option"
            data["transport"] = transport
            if spec.control is None:
                answers = await _questions(spec, exchange)
                control: list[_Answer] | None = None
            else:
                control_data: dict[str, Any] = {"resolver": spec.control.describe()}
                data["control"] = control_data
                try:
                    control_exchange, _, control_transport = await _exchange_for(
                        spec, spec.control, limits, context, session
                    )
                    control_data["transport"] = control_transport
                    answers, control = await asyncio.gather(
                        _questions(spec, exchange), _questions(spec, control_exchange)
                    )
                except OSError as exc:  # the control's name or address (policy too): its own failure
                    control_data.update(failure=f.classify(exc), failure_detail=f.describe(exc))
                    answers, control = await _questions(spec, exchange), None
    except SpecError:
        raise
    except Exception as exc:
        return failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    data.update(_summary(answers))
    data["bogon_answers"] = _bogons(data["records"])
    data["responses"] = {a.qtype: a.to_data() for a in answers}
    reference: set[str] = set()
    if control is not None:
        summary = _summary(control)
        failure, detail = _overall(control)
        data["control"].update(rcode=summary["rcode"], answers=summary["answers"],
                               failure=failure or "", failure_detail=detail)  # fmt: skip
        reference = set(summary["answers"])
    failure, detail = _overall(answers)
    if spec.check_tls and context is not None and failure is None:
        addresses = [str(r["value"]) for r in data["records"] if r["type"] in ("A", "AAAA")]
        unconfirmed = [a for a in dict.fromkeys(addresses) if a not in reference][:MAX_TLS_CHECKS]
        timeout = min(spec.timeout_s, TLS_CHECK_TIMEOUT_S)
        checks = [_tls_check(spec.target, a, spec.tls_port, context, limits, timeout) for a in unconfirmed]
        # The control's first address, once there is something to check: whether the name
        # serves valid TLS at all (a refused port at a lie means more when it does).
        ref = _reference_address(control, unconfirmed) if unconfirmed and control is not None else []
        checks += [_tls_check(spec.target, a, spec.tls_port, context, limits, timeout) for a in ref]
        done = list(await asyncio.gather(*checks))
        data["tls_checks"] = done[: len(unconfirmed)]
        if ref:
            data["tls_reference"] = done[-1]
    return ProbeOutcome(
        kind=NAME,
        target=spec.target,
        failure=failure,
        failure_detail=detail,
        duration_s=round(now() - started, 6),
        data=data,
    )
