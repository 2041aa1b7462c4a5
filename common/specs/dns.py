"""The dns kind's spec: a name to resolve, record types, the resolver to ask, a control.

Pure: the target must be a name (not an address); no lookup happens here. The probe is
``agent/probes/dns.py``. A resolver (``resolver=``, ``control=``) is one of:

- ``IP[:port]``: plain DNS (``transport=`` udp or tcp), port 53 by default;
- ``tls://HOST[:port]``: DNS over TLS (RFC 7858), port 853 by default; the certificate
  is verified for HOST (a name or an address);
- ``https://HOST[:port]/path``: DNS over HTTPS (RFC 8484, POST of the wire message).

DoT and DoH ask a resolver that the agent's network cannot rewrite without breaking TLS:
the control a lying local resolver is compared with (docs/detection.md, "DNS").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.address import is_hostname, parse_address
from common.specs.base import Limits, SpecError
from common.specs.options import (
    TIMEOUT_HELP,
    check_known,
    opt_bool,
    opt_choice,
    opt_int,
    opt_timeout,
    parse_http_url,
    split_host_port,
    url_host,
)

NAME = "dns"
OPTIONS: Mapping[str, str] = {
    "type": "record types to ask for, comma-separated: A, AAAA, CNAME, TXT, MX, NS (default A,AAAA)",
    "resolver": "the resolver to ask: IP[:port], tls://HOST[:port] (DNS over TLS) or "
    "https://HOST/path (DNS over HTTPS) (default: the system's first nameserver)",
    "control": "a second resolver asked the same questions, as a reference (same forms as "
    "resolver; a DoT or DoH one the operator trusts)",
    "check_tls": "true or false: TLS-handshake the answered addresses the control did not "
    "give (SNI = the name, certificate verified) to tell a lie from a CDN (default: true "
    "when there is a control)",
    "tls_port": "the port check_tls connects to (default 443)",
    "ca_file": "PEM file of CA certificates to trust for DoT, DoH and check_tls instead of the system's",
    "transport": "plain DNS: udp (TCP fallback when truncated) or tcp (default udp)",
    "timeout": TIMEOUT_HELP,
}
_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "NS")


@dataclass(frozen=True, kw_only=True)
class Resolver:
    """Where to ask: ``mode`` "plain" (``host`` an address), "tls" (``host`` a name or an
    address) or "https" (``url``)."""

    mode: str
    host: str
    port: int
    url: str = ""

    def describe(self) -> str:
        if self.mode == "https":
            return self.url
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"tls://{where}" if self.mode == "tls" else where


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    types: tuple[str, ...] = ("A", "AAAA")
    resolver: str | None = None  # None: the system resolver
    resolver_port: int = 53
    resolver_mode: str = "plain"  # or "tls", "https" (then resolver_url)
    resolver_url: str = ""
    control: Resolver | None = None
    check_tls: bool = False
    tls_port: int = 443
    ca_file: str | None = None
    transport: str = "udp"
    timeout_s: float

    @property
    def asked(self) -> Resolver | None:
        if self.resolver is None:
            return None
        return Resolver(mode=self.resolver_mode, host=self.resolver, port=self.resolver_port,
                        url=self.resolver_url)  # fmt: skip


def parse_resolver(text: str, field: str) -> Resolver:
    """One resolver option (module docstring); raises SpecError naming ``field``."""
    raw = text.strip()
    lower = raw.lower()
    if lower.startswith("https://"):
        url = parse_http_url(raw, field)
        if url.scheme != "https":
            raise SpecError(field, f"{text!r}: DNS over HTTPS needs an https:// URL")
        host = url_host(url)
        return Resolver(mode="https", host=host, port=url.port or 443, url=str(url))
    if lower.startswith("http://"):
        raise SpecError(field, f"{text!r}: DNS over plain HTTP can be rewritten; use https://")
    if lower.startswith("tls://"):
        host, port = split_host_port(raw[len("tls://"):], default_port=853, field=field)
        if parse_address(host) is None and not is_hostname(host.lower()):
            raise SpecError(field, f"{text!r}: expected tls://HOST[:port] with a name or an address")
        return Resolver(mode="tls", host=host if parse_address(host) else host.lower(), port=port)
    if "://" in raw:
        raise SpecError(field, f"{text!r}: expected IP[:port], tls://HOST[:port] or https://HOST/path")
    host, port = split_host_port(raw, default_port=53, field=field)
    if parse_address(host) is None:
        raise SpecError(field, f"{text!r}: expected an IP address (or tls:// or https://)")
    return Resolver(mode="plain", host=host, port=port)


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    name = target.strip().lower()
    if parse_address(name) is not None:
        raise SpecError("target", f"{target!r} is an address; the dns kind resolves a name")
    if not is_hostname(name):
        raise SpecError("target", f"{target!r} is not a domain name")
    types: list[str] = []
    for raw in options.get("type", "A,AAAA").split(","):
        qtype = raw.strip().upper()
        if qtype not in _TYPES:
            raise SpecError("options.type", f"{raw.strip()!r} is not one of {', '.join(_TYPES)}")
        if qtype not in types:
            types.append(qtype)
    asked: Resolver | None = None
    if "resolver" in options and options["resolver"].strip().lower() not in ("", "system"):
        asked = parse_resolver(options["resolver"], "options.resolver")
    control = None
    if options.get("control", "").strip():
        control = parse_resolver(options["control"], "options.control")
    return Spec(
        target=name,
        types=tuple(types),
        resolver=asked.host if asked else None,
        resolver_port=asked.port if asked else 53,
        resolver_mode=asked.mode if asked else "plain",
        resolver_url=asked.url if asked else "",
        control=control,
        check_tls=opt_bool(options, "check_tls", default=control is not None),
        tls_port=opt_int(options, "tls_port", default=443, minimum=1, maximum=65535),
        ca_file=options.get("ca_file") or None,
        transport=opt_choice(options, "transport", default="udp", choices=("udp", "tcp")),
        timeout_s=opt_timeout(options, limits),
    )
