"""Pure address parsing: IP literals and host names, no DNS.

The agent's target policy (``agent/policy.py``) judges the addresses parsed here; the
spec parsers (:mod:`common.specs`) and :mod:`common.hostport` use the same parsing, so
the coordinator refuses at submission what an agent could not parse.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address (brackets and an IPv6 zone allowed), or None for a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_hostname(name: str) -> bool:
    """An ASCII DNS name (a final dot allowed): labels of letters, digits, ``-`` and ``_``,
    at most 63 characters each and 253 in all."""
    text = name[:-1] if name.endswith(".") else name
    if not text or len(text) > 253:
        return False
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        return False
    return all(_LABEL.fullmatch(label) for label in text.split("."))


def normal_host(host: str) -> str | None:
    """A host name or IP literal (IPv6 without brackets) normalised (the address as
    ``ipaddress`` writes it, the name in lower case), or None when it is neither."""
    parsed = parse_address(host)
    if parsed is not None:
        return str(parsed)
    lowered = host.lower()
    return lowered if is_hostname(lowered) else None


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1, ::ffff:127.x): a peer on this
    machine, to which a bearer token may travel in plaintext."""
    if host == "localhost":
        return True
    ip = parse_address(host)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
