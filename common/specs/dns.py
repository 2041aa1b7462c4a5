"""The dns kind's spec: a name to resolve, record types, an optional resolver address.

Pure: the target must be a name (not an address), ``resolver=`` an IP literal with an
optional port; no lookup happens here. The probe is ``agent/probes/dns.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.address import is_hostname, parse_address
from common.specs.base import Limits, SpecError
from common.specs.options import TIMEOUT_HELP, check_known, opt_choice, opt_timeout, split_host_port

NAME = "dns"
OPTIONS: Mapping[str, str] = {
    "type": "record types to ask for, comma-separated: A, AAAA, CNAME, TXT, MX, NS (default A,AAAA)",
    "resolver": "IP[:port] of the resolver to ask (default: the system's first nameserver)",
    "transport": "udp (TCP fallback when truncated) or tcp (default udp)",
    "timeout": TIMEOUT_HELP,
}
_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "NS")


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    types: tuple[str, ...] = ("A", "AAAA")
    resolver: str | None = None  # None: the system resolver
    resolver_port: int = 53
    transport: str = "udp"
    timeout_s: float


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
    resolver: str | None = None
    port = 53
    if "resolver" in options and options["resolver"].strip().lower() not in ("", "system"):
        resolver, port = split_host_port(options["resolver"], default_port=53, field="options.resolver")
        if parse_address(resolver) is None:
            raise SpecError("options.resolver", f"{options['resolver']!r}: expected an IP address")
    return Spec(
        target=name,
        types=tuple(types),
        resolver=resolver,
        resolver_port=port,
        transport=opt_choice(options, "transport", default="udp", choices=("udp", "tcp")),
        timeout_s=opt_timeout(options, limits),
    )
