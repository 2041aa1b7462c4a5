"""Who may call: bearer tokens per role (agent, api), and loopback-only without one."""

from __future__ import annotations

import hmac
import ipaddress
import urllib.parse
from typing import Any

import grpc

from common.address import is_loopback_host

__all__ = ["TokenAuth", "is_loopback_host", "peer_is_loopback"]


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


class TokenAuth:
    """Bearer tokens in the ``authorization`` metadata, compared in constant time.

    With no token configured for a role, only loopback peers are served for it."""

    def __init__(self, agent_token: str | None, api_token: str | None) -> None:
        self.tokens = {"agent": agent_token, "api": api_token}

    async def check(self, context: grpc.aio.ServicerContext[Any, Any], role: str) -> None:
        expected = self.tokens[role]
        if expected is None:
            if not peer_is_loopback(context.peer()):
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"no {role} token is configured on the coordinator, so only loopback "
                    f"clients are served (set VANTAGE_{role.upper()}_TOKEN on both sides)",
                )
            return
        given = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                given = value.removeprefix("Bearer ").strip()
        if not given:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing {role} token")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"wrong {role} token")
