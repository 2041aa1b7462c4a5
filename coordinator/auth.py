"""Where a caller is: loopback peers (served without a token while none is configured;
coordinator/access.py decides the rest)."""

from __future__ import annotations

import ipaddress
import urllib.parse

from common.address import is_loopback_host

__all__ = ["is_loopback_host", "peer_is_loopback"]


def peer_is_loopback(peer: str) -> bool:
    """grpc peers look like 'ipv4:127.0.0.1:5000', 'ipv6:%5B::1%5D:5000' (percent-encoded
    brackets) or 'unix:...'."""
    peer = urllib.parse.unquote(peer)
    if peer.startswith("unix:"):
        return True
    if peer.startswith("ipv4:"):
        return is_loopback_host(peer[5:].rsplit(":", 1)[0])
    if peer.startswith("ipv6:"):
        host = peer[5:].rsplit(":", 1)[0].strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_loopback
        return ip.is_loopback
    return False
