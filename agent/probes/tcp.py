"""tcp: open a TCP connection to ``host:port`` and report the address and connect time.

The name is resolved with the system resolver (``getaddrinfo``) and every address it
returns is checked by the target policy; the addresses are then tried in order until
one connects, all within ``timeout``. The connection is closed right away. The spec is
parsed in ``common/specs/tcp.py``.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from typing import Any

from agent.policy import ResolvedAddress, resolve_checked
from agent.probes.base import Limits, ProbeOutcome
from agent.probes.common import failed, now, rounded
from agent.probes.locate import locate_after
from common.specs.tcp import NAME, Spec


async def connect(
    addresses: list[ResolvedAddress],
) -> tuple[socket.socket, ResolvedAddress, float]:
    """Connect to the first address that accepts; returns the socket, the address and the time."""
    loop = asyncio.get_running_loop()
    last: BaseException | None = None
    for address in addresses:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        started = now()
        try:
            await loop.sock_connect(sock, address.sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock, address, now() - started
    assert last is not None  # addresses is never empty (resolve_checked guarantees it)
    raise last


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {"host": spec.host, "port": spec.port}
    try:
        async with asyncio.timeout(spec.timeout_s):
            resolve_started = now()
            addresses = await resolve_checked(
                spec.host, spec.port, allow_private=limits.allow_private_targets,
                overrides=limits.host_overrides,
            )
            data["resolve_s"] = rounded(now() - resolve_started)
            data["addresses"] = [a.address for a in addresses]
            sock, address, connect_s = await connect(addresses)
    except Exception as exc:
        outcome = failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
        if spec.locate and outcome.failure != "target_forbidden":
            data["locate"] = await locate_after(spec.host, spec.port, None, limits, started=started,
                                                timeout_s=spec.timeout_s)  # fmt: skip
            outcome = replace(outcome, data=data, duration_s=round(now() - started, 6))
        return outcome
    try:
        data["address"] = address.address
        data["family"] = "ipv6" if address.family == socket.AF_INET6 else "ipv4"
        data["connect_s"] = rounded(connect_s)
        data["local_address"] = str(sock.getsockname()[0])
    finally:
        sock.close()
    if spec.locate:
        data["locate"] = await locate_after(spec.host, spec.port, None, limits, started=started,
                                            timeout_s=spec.timeout_s, address=address.address)  # fmt: skip
    return ProbeOutcome(
        kind=NAME, target=spec.target, failure=None, duration_s=round(now() - started, 6), data=data
    )
