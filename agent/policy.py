"""Target policy: which addresses an agent may probe.

An agent runs probes that strangers submit to the coordinator, so it must not become a
way into the network it stands in. Before connecting (when the target is an address
literal) and again after resolving a name (so a DNS answer cannot rebind a public name to
an inside address), every address is checked; loopback, private, link-local, CGNAT
(100.64.0.0/10), multicast, reserved and unspecified addresses are refused, for IPv4 and
IPv6 alike. IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) are refused outright (a
resolver has no business returning one); an IPv4-compatible, NAT64 (``64:ff9b::/96``) or
6to4 IPv6 address is judged by the IPv4 address inside it.

A refusal is the exception :class:`TargetForbidden`, which the failure classifier turns
into the failure ``target_forbidden``. ``Limits.allow_private_targets`` lifts the policy
(tests and labs need it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from common.address import IPAddress, parse_address

# parse_address is common.address' (the spec parsers use it too); re-exported for the
# policy's callers.
__all__ = [
    "IPAddress",
    "ResolvedAddress",
    "TargetForbidden",
    "check_address",
    "check_host_literal",
    "forbidden_reason",
    "parse_address",
    "resolve_checked",
]

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class TargetForbidden(OSError):
    """The target policy refused an address (failure ``target_forbidden``).

    An ``OSError`` so that client libraries (aiohttp's resolver path) wrap and surface it
    the way they do resolution errors, and the classifier still finds it.
    """

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} -> {address} is {reason}; refused by the target policy")
        self.host = host
        self.address = address
        self.reason = reason


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the policy refuses ``address``, or None when it may be probed."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"IPv4-mapped ({address.ipv4_mapped})"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            return f"an IPv4-embedding IPv6 address of {embedded} ({inner})" if inner else None
        if address.is_site_local:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "CGNAT (100.64.0.0/10)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_address(host: str, address: str | IPAddress, *, allow_private: bool) -> None:
    """Raise :class:`TargetForbidden` when the policy refuses ``address`` (reached via ``host``)."""
    if allow_private:
        return
    parsed = parse_address(address) if isinstance(address, str) else address
    if parsed is None:
        raise TargetForbidden(host, str(address), "not an IP address")
    reason = forbidden_reason(parsed)
    if reason is not None:
        raise TargetForbidden(host, str(parsed), reason)


def check_host_literal(host: str, *, allow_private: bool) -> None:
    """Before connecting: refuse ``host`` if it is an address literal the policy forbids."""
    parsed = parse_address(host)
    if parsed is not None:
        check_address(host, parsed, allow_private=allow_private)


@dataclass(frozen=True, kw_only=True)
class ResolvedAddress:
    family: int
    address: str
    sockaddr: tuple[str, int] | tuple[str, int, int, int]


async def resolve_checked(
    host: str, port: int, *, allow_private: bool, overrides: Mapping[str, str] | None = None
) -> list[ResolvedAddress]:
    """Resolve ``host`` for TCP and check every address the resolver returns.

    Refuses the whole target when any returned address is forbidden: a name that
    resolves to an inside address is either misconfigured or an attack (rebinding).
    Resolution errors (``socket.gaierror``) propagate for the classifier.
    """
    check_host_literal(host, allow_private=allow_private)
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if overrides and name.lower() in overrides:
        name = overrides[name.lower()]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    resolved: list[ResolvedAddress] = []
    seen: set[tuple[object, ...]] = set()
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        key = (family, *sockaddr)
        if key in seen:
            continue
        seen.add(key)
        address = str(sockaddr[0])
        check_address(host, address, allow_private=allow_private)
        resolved.append(
            ResolvedAddress(family=family, address=address, sockaddr=sockaddr)  # type: ignore[arg-type]
        )
    if not resolved:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no IPv4 or IPv6 address")
    return resolved


#: Suffixes of names that live only inside a network (RFC 6761, 6762, 8375, 9476 and
#: the usual private choices), and the reverse zones, which name a network's own hosts.
LOCAL_SUFFIXES = (
    "local", "localhost", "localdomain", "internal", "intranet", "lan", "home", "home.arpa",
    "corp", "private", "test", "invalid", "alt", "onion", "in-addr.arpa", "ip6.arpa",
)  # fmt: skip


def check_public_name(name: str, *, allow_private: bool) -> None:
    """Refuse a name that only a network's own resolver knows: one label, or under a
    local-use suffix (``LOCAL_SUFFIXES``). For the dns kind through the *system* resolver:
    the agent host's resolver may sit inside a private network, and a job must not read
    its internal A, AAAA or TXT records that way. Public names pass, whatever they
    resolve to (a censor's lie is often a private address: that is the evidence).
    ``--allow-private-targets`` lifts it, as it lifts the address policy."""
    if allow_private:
        return
    bare = name.lower().rstrip(".")
    labels = bare.split(".")
    if len(labels) < 2:
        raise TargetForbidden(name, name, "a single-label name, which only a local resolver answers")
    for suffix in LOCAL_SUFFIXES:
        if bare == suffix or bare.endswith("." + suffix):
            raise TargetForbidden(name, name, f"under .{suffix}, a name only a local resolver answers")
