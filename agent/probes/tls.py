"""tls: TCP, then a TLS handshake with a chosen SNI, ALPN and verification.

Reports the TCP connect and handshake times, the negotiated version, cipher and ALPN
protocol, and the leaf certificate (subject, issuer, SANs, validity, SHA-256 of the DER),
read by :mod:`agent.probes.x509` so it is reported with verification off too.

``sni=`` may differ from the host (the differential test: the same server under the
target's name and under a neutral one) or be empty, which sends no SNI at all; then the
certificate chain is still verified (when ``verify`` is on) but the name cannot be, and
``data["hostname_checked"]`` is false.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.policy import resolve_checked
from agent.probes.base import Limits, ProbeOutcome, SpecError
from agent.probes.common import failed, now, rounded
from agent.probes.options import (
    TIMEOUT_HELP,
    check_known,
    opt_bool,
    opt_timeout,
    split_host_port,
)
from agent.probes.tcp import connect
from agent.probes.x509 import summarize
from common.address import is_hostname, parse_address

NAME = "tls"
OPTIONS: Mapping[str, str] = {
    "sni": "server name to send (default: the target's host when it is a name; empty: none)",
    "alpn": "ALPN protocols to offer, comma-separated (default h2,http/1.1; empty: none)",
    "verify": "verify the certificate chain and name: true or false (default true)",
    "ca_file": "PEM file of CA certificates to trust instead of the system's",
    "timeout": TIMEOUT_HELP,
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    host: str
    port: int
    sni: str  # "" sends none
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    verify: bool = True
    ca_file: str | None = None
    timeout_s: float


def parse_tls_options(options: Mapping[str, str], host: str) -> tuple[str, tuple[str, ...], bool, str | None]:
    """sni, alpn, verify and ca_file as the tls and throughput kinds share them."""
    if "sni" in options:
        sni = options["sni"].strip().lower()
        if sni and not is_hostname(sni):
            raise SpecError("options.sni", f"{options['sni']!r} is not a host name")
    else:
        sni = "" if _is_address(host) else host
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    if "alpn" in options:
        alpn = tuple(p.strip() for p in options["alpn"].split(",") if p.strip())
        for proto in alpn:
            if len(proto) > 255 or not proto.isascii():
                raise SpecError("options.alpn", f"{proto!r} is not an ALPN protocol id")
    verify = opt_bool(options, "verify", default=True)
    ca_file = options.get("ca_file") or None
    return sni, alpn, verify, ca_file


def _is_address(host: str) -> bool:
    return parse_address(host) is not None


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    text = target.strip()
    if text.startswith("https://"):
        raise SpecError("target", f"{target!r}: the tls kind takes host[:port], not a URL")
    host, port = split_host_port(text, default_port=443)
    sni, alpn, verify, ca_file = parse_tls_options(options, host)
    return Spec(
        target=text,
        host=host,
        port=port,
        sni=sni,
        alpn=alpn,
        verify=verify,
        ca_file=ca_file,
        timeout_s=opt_timeout(options, limits),
    )


def make_context(*, verify: bool, sni: str, ca_file: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """A client context; blocking (reads ``ca_file``): call it in a thread."""
    if verify:
        context = ssl.create_default_context(cafile=ca_file)
        context.check_hostname = bool(sni)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def describe_tls(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any]:
    """Version, cipher, ALPN and leaf certificate of an established TLS session."""
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "tls_version": ssl_object.version() or "",
        "cipher": cipher[0] if cipher else "",
        "alpn": ssl_object.selected_alpn_protocol() or "",
        "certificate": summarize(der).to_data() if der else None,
    }


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {
        "host": spec.host,
        "port": spec.port,
        "sni": spec.sni,
        "verify": spec.verify,
        "hostname_checked": spec.verify and bool(spec.sni),
    }
    loop = asyncio.get_running_loop()
    try:
        context = await asyncio.to_thread(
            make_context, verify=spec.verify, sni=spec.sni, ca_file=spec.ca_file, alpn=spec.alpn
        )
    except (OSError, ssl.SSLError) as exc:
        raise SpecError("options.ca_file", f"cannot load {spec.ca_file!r}: {exc}") from exc
    try:
        async with asyncio.timeout(spec.timeout_s):
            addresses = await resolve_checked(
                spec.host, spec.port, allow_private=limits.allow_private_targets,
                overrides=limits.host_overrides,
            )
            sock, address, connect_s = await connect(addresses)
            data["address"] = address.address
            data["connect_s"] = rounded(connect_s)
            handshake_started = now()
            try:
                transport, _protocol = await loop.create_connection(
                    asyncio.Protocol,
                    sock=sock,
                    ssl=context,
                    server_hostname=spec.sni,  # "" sends no SNI
                    ssl_handshake_timeout=spec.timeout_s,
                )
            except BaseException:
                sock.close()
                raise
            data["handshake_s"] = rounded(now() - handshake_started)
    except Exception as exc:
        return failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    try:
        data.update(describe_tls(transport.get_extra_info("ssl_object")))
    finally:
        transport.abort()
    return ProbeOutcome(
        kind=NAME, target=spec.target, failure=None, duration_s=round(now() - started, 6), data=data
    )
