"""Locating a censor on the path (``-o locate=true`` on tcp, tls and http).

The method is Censored Planet's CenTrace, unprivileged:

1. A control trace: a Paris UDP traceroute to the target's address
   (:mod:`agent.probes.traceroute`), for the routers' addresses and the destination's
   distance (``destination_ttl``). A censor keyed on the blocked service (a TCP port, an
   SNI, a Host) lets it through.
2. The trigger, sent with TTL 1, 2, 3...: the bytes that provoke the block (the TLS
   ClientHello with the target's SNI, or the HTTP request with its Host) on a connection
   whose handshake was made at the normal TTL, one new connection per TTL; or, when the
   handshake itself is what fails (a block keyed on the address and port), the SYN.
3. Each TTL's outcome: ``expired`` (a router's time-exceeded came back: the trigger died
   before anything acted on it), ``reset``, ``response`` (data or a SYN-ACK), ``closed``,
   an ICMP unreachable, or ``silent``.

The first TTL whose outcome is not ``expired`` is where the trigger met what answers it.
Below the destination's distance, anything that answers is a middlebox (a reset or a
block page the server could not have sent: the request never reached it), and so is a
silence where the control trace had a router answering (a drop): ``at`` is ``path``,
``censor_ttl`` that TTL and ``censor_hop`` the control trace's router there, with its
ASN when the agent has an ASN table. At or past the destination's distance it is ``at``
``destination``: no censor on the way, the block (if any) is the destination's own. A
single silent TTL followed by an expired one is a router that does not answer, not a
drop. Without a control trace that reached the destination, an answer past the last
router that answered is ``unknown``.

Bounded: at most ``max_hops`` TTLs and the time the task has left (``budget_s``); what was
found before the time ran out is kept, with ``stopped`` saying why it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from collections.abc import Callable
from typing import Any

from agent.policy import ResolvedAddress, resolve_checked
from agent.probes import netpath
from agent.probes.base import Limits
from agent.probes.common import budget_left, now
from agent.probes.traceroute import make_tracer, trace_path

MAX_HOPS = 30
STEP_WAIT_S = 1.0
CONTROL_WAIT_S = 0.5
_NORMAL_TTL = 64
_LINGER_RESET = b"\1\0\0\0\0\0\0\0"


def client_hello(sni: str, alpn: tuple[str, ...] = ()) -> bytes:
    """The first flight of a TLS client handshake with this SNI ("" sends none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni or None)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def http_request(host: str, path: str) -> bytes:
    return (f"GET {path or '/'} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vantage-probe/0.1\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n").encode("ascii", "replace")  # fmt: skip


def _socket(address: ResolvedAddress) -> socket.socket:
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    sock.setblocking(False)
    netpath.enable_recverr(sock)
    return sock


def _close(sock: socket.socket) -> None:
    """Close with a reset that reaches the server (at the normal TTL), leaving it no
    half-open connection and us no TIME_WAIT."""
    with contextlib.suppress(OSError):
        netpath.set_ttl(sock, _NORMAL_TTL)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def _from_errors(sock: socket.socket, family: int) -> tuple[str, str] | None:
    errors = netpath.read_errors(sock)
    if not errors:
        return None
    err = errors[-1]
    name = netpath.icmp_name(family, err.icmp_type, err.icmp_code)
    return ("expired" if name == "time_exceeded" else name), err.offender


async def syn_step(address: ResolvedAddress, port: int, ttl: int, wait_s: float) -> tuple[str, str]:
    """The SYN with this TTL: (outcome, the ICMP sender's address or "")."""
    loop = asyncio.get_running_loop()
    sock = _socket(address)
    try:
        netpath.set_ttl(sock, ttl)
        try:
            async with asyncio.timeout(wait_s):
                await loop.sock_connect(sock, (address.address, port, *address.sockaddr[2:]))
        except ConnectionRefusedError:
            # a reset, or an ICMP port-unreachable (Linux maps both to ECONNREFUSED): the
            # error queue tells a router's ICMP from the destination's reset
            return _from_errors(sock, address.family) or ("reset", "")
        except TimeoutError:
            return "silent", ""
        except OSError:
            return _from_errors(sock, address.family) or ("silent", "")
        return "response", ""
    finally:
        _close(sock)


async def handshake_ok(address: ResolvedAddress, port: int, wait_s: float) -> bool:
    """Whether a plain TCP handshake at the normal TTL completes (nothing is sent: a
    stateful censor is not set off by it)."""
    loop = asyncio.get_running_loop()
    sock = _socket(address)
    try:
        async with asyncio.timeout(wait_s):
            await loop.sock_connect(sock, (address.address, port, *address.sockaddr[2:]))
    except (OSError, TimeoutError):
        return False
    finally:
        _close(sock)
    return True


async def data_step(
    address: ResolvedAddress, port: int, ttl: int, trigger: bytes, wait_s: float
) -> tuple[str, str]:
    """A handshake at the normal TTL, then ``trigger`` with this TTL: (outcome, address)."""
    loop = asyncio.get_running_loop()
    sock = _socket(address)
    try:
        try:
            async with asyncio.timeout(wait_s):
                await loop.sock_connect(sock, (address.address, port, *address.sockaddr[2:]))
        except (OSError, TimeoutError):
            return "no_handshake", ""
        netpath.set_ttl(sock, ttl)
        try:
            await loop.sock_sendall(sock, trigger)
        except ConnectionResetError:
            return "reset", ""
        except OSError as exc:
            return f"error_{errno.errorcode.get(exc.errno or 0, exc.errno)}".lower(), ""
        deadline = now() + wait_s
        while (left := deadline - now()) > 0:
            if not await netpath.readable(sock, left):
                break
            found = _from_errors(sock, address.family)
            if found is not None:
                return found
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                return "reset", ""
            except OSError as exc:
                # An ICMP error on an established connection is only an errno (Linux
                # queues no sender for it): EHOSTUNREACH is what time-exceeded becomes;
                # the control trace names the router at this TTL.
                if exc.errno == errno.EHOSTUNREACH:
                    return "expired", ""
                return f"error_{errno.errorcode.get(exc.errno or 0, exc.errno)}".lower(), ""
            return ("response", "") if data else ("closed", "")
        return "silent", ""
    finally:
        _close(sock)


# Outcomes that say nothing of where a block sits: the step itself could not be made.
INCONCLUSIVE = frozenset({"no_handshake"})


def inconclusive(outcome: str) -> bool:
    return outcome in INCONCLUSIVE or outcome.startswith("error_")


def decide(steps: list[dict[str, Any]], path: list[str], destination_ttl: int | None) -> dict[str, Any]:
    """Where the block sits, from the TTL steps and the control trace (module docstring).
    A silent TTL is a drop only when the next TTL is silent too (or it is the last step,
    with a router answering there in the control trace): one lost ICMP is not a censor.
    A step that could not be made ends the decision without a location."""
    last_router = max((i + 1 for i, a in enumerate(path) if a), default=0)
    none = {"at": "", "censor_ttl": None, "censor_hop": "", "response": ""}
    for i, step in enumerate(steps):
        outcome, ttl = step["outcome"], step["ttl"]
        if inconclusive(outcome):
            return none
        if outcome == "expired":
            continue
        at_destination = destination_ttl is not None and ttl >= destination_ttl
        control = path[ttl - 1] if ttl <= len(path) else ""
        if outcome == "silent" and not at_destination:
            following = steps[i + 1]["outcome"] if i + 1 < len(steps) else None
            if not (following == "silent" or (following is None and control)):
                continue  # a router that did not answer this once, not a drop
            response = "drop"
        else:
            response = "drop" if outcome == "silent" else outcome
        if at_destination:
            at = "destination"
        elif destination_ttl is not None or ttl < last_router:
            at = "path"
        else:
            at = "unknown"
        hop = step["address"] if step["address"] and outcome not in ("reset", "response", "closed") else control
        return {"at": at, "censor_ttl": ttl, "censor_hop": hop if at != "destination" else "",
                "response": response}  # fmt: skip
    return none


async def locate(
    address: ResolvedAddress,
    port: int,
    trigger: bytes | None,
    *,
    budget_s: float,
    asn_lookup: Callable[[str], int | None] | None = None,
    max_hops: int = MAX_HOPS,
    wait_s: float = STEP_WAIT_S,
) -> dict[str, Any]:
    """Run the control trace and the TTL steps within ``budget_s``; the ``locate`` data."""
    hops: list[dict[str, Any]] = []
    trace: dict[str, Any] = {"reached": False, "stopped": ""}
    out: dict[str, Any] = {"method": "syn" if trigger is None else "data", "at": "", "censor_ttl": None,
                           "censor_hop": "", "censor_asn": None, "response": "", "destination_ttl": None,
                           "path": [], "steps": [], "stopped": ""}  # fmt: skip
    steps: list[dict[str, Any]] = out["steps"]
    deadline = asyncio.get_running_loop().time() + max(budget_s, 0.0)
    try:
        async with asyncio.timeout_at(deadline):
            tracer = make_tracer(address, "udp", 33434)
            try:
                await trace_path(tracer, first_hop=1, max_hops=max_hops, queries=2,
                                 wait_s=min(CONTROL_WAIT_S, wait_s), gap_limit=3, asn_lookup=None,
                                 hops=hops, out=trace)  # fmt: skip
            finally:
                tracer.close()
            path = [h["address"] for h in hops]
            out["path"] = path
            if trace["reached"]:
                out["destination_ttl"] = len(hops)
            if trigger is not None and not await handshake_ok(address, port, wait_s):
                out["method"], trigger = "syn", None  # the handshake itself is blocked
            limit = min(max_hops, out["destination_ttl"] or max_hops)
            out["stopped"] = "decided"
            for ttl in range(1, limit + 1):
                if trigger is None:
                    outcome, sender = await syn_step(address, port, ttl, wait_s)
                else:
                    outcome, sender = await data_step(address, port, ttl, trigger, wait_s)
                    destination = out["destination_ttl"]
                    if outcome == "expired" and destination is not None and ttl >= destination:
                        # an errno-only ICMP error where the trigger reached the destination's
                        # distance cannot be a time-exceeded: an unreachable (a reject)
                        outcome = "unreachable"
                steps.append({"ttl": ttl, "outcome": outcome, "address": sender})
                if inconclusive(outcome):
                    out["stopped"] = outcome  # the step could not be made: no location
                    break
                found = decide(steps, path, out["destination_ttl"])
                # a silent TTL is judged once the next one is known (or it is the last)
                if found["censor_ttl"] is not None and (outcome != "silent" or found["censor_ttl"] < ttl):
                    break
    except TimeoutError:
        out["stopped"] = "timeout"
        out["path"] = [h["address"] for h in hops]
    out.update(decide(steps, out["path"], out["destination_ttl"]))
    if out["stopped"] == "decided" and out["censor_ttl"] is None:
        out["stopped"] = "not_found"
    if out["censor_hop"] and asn_lookup is not None:
        out["censor_asn"] = asn_lookup(out["censor_hop"])
    return out


async def locate_after(
    host: str, port: int, trigger: bytes | None, limits: Limits, *, started: float, timeout_s: float,
    address: str = "",
) -> dict[str, Any]:
    """Locate after a probe of ``host:port`` that started at ``started``: in what is left of
    the task's time (``vantage probe``, with no task: the probe's timeout again), toward
    the address the probe used when it got that far. Never raises: a name that no longer
    resolves, or no time left, is said in ``stopped``."""
    budget = budget_left(started)
    if budget is None:
        budget = timeout_s
    empty: dict[str, Any] = {"method": "syn" if trigger is None else "data", "stopped": ""}
    if budget < 2 * STEP_WAIT_S:
        return {**empty, "stopped": "no_time"}
    resolving = now()
    try:
        async with asyncio.timeout(budget):
            addresses = await resolve_checked(host, port, allow_private=limits.allow_private_targets,
                                              overrides=limits.host_overrides)  # fmt: skip
    except (OSError, TimeoutError):
        return {**empty, "stopped": "unresolved"}
    chosen = next((a for a in addresses if a.address == address), addresses[0])
    try:
        return await locate(chosen, port, trigger, budget_s=budget - (now() - resolving),
                            asn_lookup=limits.asn_lookup)  # fmt: skip
    except OSError as exc:  # no socket to be had (EMFILE...): the probe's result stands
        return {**empty, "stopped": f"error: {exc.strerror or exc}"[:80]}
