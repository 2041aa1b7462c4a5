"""traceroute: the routers on the way to a host, hop by hop, without privileges.

Each probe leaves with a TTL (hop limit) of 1, 2, 3...; the router where it runs out
answers with an ICMP time-exceeded, which Linux hands back on the probe's own socket
(``IP_RECVERR``, :mod:`agent.probes.netpath`). The destination answers differently: a
port-unreachable (udp), a SYN-ACK or a reset (tcp), an echo reply (icmp).

Paris-style: every probe of a trace has the same flow identifier, so a load balancer that
hashes it puts them all on one path and the hops form a real path, not a mix of several.

- udp: one socket, one source port, one destination port; the payload starts with
  :func:`~agent.probes.netpath.constant_sum_tag`, so the UDP checksum is the same too;
- tcp: every SYN from the same source port (``SO_REUSEADDR``; each attempt ends with a
  reset, leaving no TIME_WAIT) to the same destination port;
- icmp: one unprivileged ICMP socket (one echo identifier), and the payload compensates
  the sequence number so the ICMP checksum is constant.

A hop's probes go one at a time, each waiting up to ``wait`` seconds, and the error queue
is emptied before each, so a reply is matched to the probe that is out. A late reply to an
earlier probe is recognised and ignored where the router quoted our payload (Linux and
most routers quote far more than RFC 792's 8 bytes); one that quoted only the 8 bytes of
the UDP or ICMP header cannot be told apart and counts for the current probe. The trace
stops when the destination answers, at an unreachable from a router, after
``gap_limit`` silent hops in a row, at ``max_hops``, or at the timeout; ``stopped`` says
which. Hops found before a timeout are kept.

The result: ``hops`` (per TTL: ``address`` (the one most of its replies came from, "" when
none came), ``addresses`` (all that answered, for a load-balanced hop), ``rtts_s`` (the
replies' RTTs), ``lost`` (probes without a reply), ``icmp`` (what came back: time_exceeded, port_unreachable,
syn_ack, reset, echo_reply...), ``asn`` when the agent has an IP-to-ASN table and the
address is in it), ``reached``, ``stopped``, ``hop_count``. A trace that did not reach
the destination is a failure (``host_unreachable`` after an unreachable, else
``generic_timeout``) that still carries its hops.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.policy import ResolvedAddress, resolve_checked
from agent.probes import netpath
from agent.probes.base import Limits, ProbeOutcome
from agent.probes.common import failed, now, rounded
from agent.probes.failures import GENERIC_TIMEOUT, HOST_UNREACHABLE
from common.specs.traceroute import NAME, Spec

PAYLOAD_LEN = 32  # udp and icmp probes: a fixed length, part of the constant flow


@dataclass(frozen=True)
class Reply:
    address: str
    rtt_s: float
    icmp: str
    reached: bool  # the destination itself answered


class Tracer(Protocol):
    async def probe(self, ttl: int, seq: int, wait: float) -> Reply | None: ...

    def close(self) -> None: ...


def _reply_from_error(err: netpath.IcmpError, family: int, dest: str, rtt: float) -> Reply:
    name = netpath.icmp_name(family, err.icmp_type, err.icmp_code)
    return Reply(err.offender, rtt, name, reached=err.offender == dest and name != "time_exceeded")


class _Datagram:
    """udp and icmp: one socket for the whole trace."""

    def __init__(self, address: ResolvedAddress, port: int, method: str) -> None:
        self.family = address.family
        self.dest = address.address
        self.method = method
        if method == "icmp":
            self.sock = netpath.icmp_socket(self.family)
            port = 0
        else:
            self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
        try:
            netpath.enable_recverr(self.sock)
            self.sock.connect((self.dest, port, *address.sockaddr[2:]))
        except BaseException:
            self.sock.close()
            raise

    def _packet(self, seq: int) -> bytes:
        if self.method == "icmp":
            return netpath.echo_request(self.family, seq, bytes(PAYLOAD_LEN), constant_sum=True)
        return netpath.constant_sum_tag(seq) + bytes(PAYLOAD_LEN - 4)

    def _quoted_seq(self, err: netpath.IcmpError) -> int | None:
        if self.method == "icmp":
            return netpath.quoted_echo_seq(self.family, err.payload)
        return netpath.tag_seq(err.payload)

    async def probe(self, ttl: int, seq: int, wait: float) -> Reply | None:
        netpath.read_errors(self.sock)  # late replies to earlier probes: not this one's
        netpath.set_ttl(self.sock, ttl)
        sent = now()
        try:
            self.sock.send(self._packet(seq))
        except BlockingIOError:
            return None
        except OSError:
            # A queued error from an earlier probe surfaced on send (sk_err); try once more.
            netpath.read_errors(self.sock)
            try:
                self.sock.send(self._packet(seq))
            except OSError:
                return None
        deadline = sent + wait
        while (left := deadline - now()) > 0:
            if not await netpath.readable(self.sock, left):
                return None
            arrived = now()
            for err in netpath.read_errors(self.sock):
                quoted = self._quoted_seq(err)
                if quoted is None or quoted == seq & 0xFFFF:
                    return _reply_from_error(err, self.family, self.dest, arrived - sent)
            for _ in range(8):
                try:
                    data = self.sock.recv(netpath.MAX_PAYLOAD)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # an error already read from the queue
                if self.method == "udp":
                    return Reply(self.dest, arrived - sent, "udp_reply", reached=True)
                if netpath.parse_echo_reply(self.family, data) == seq & 0xFFFF:
                    return Reply(self.dest, arrived - sent, "echo_reply", reached=True)
        return None

    def close(self) -> None:
        self.sock.close()


class _Tcp:
    """tcp: a connect per probe, every one from the same source port."""

    def __init__(self, address: ResolvedAddress, port: int) -> None:
        self.address = address
        self.family = address.family
        self.dest = address.address
        self.sockaddr = (self.dest, port, *address.sockaddr[2:])
        self.local_port = 0
        self.constant_flow = True

    def _socket(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("::" if self.family == socket.AF_INET6 else "0.0.0.0", self.local_port))
            except OSError:
                if not self.local_port:
                    raise
                self.constant_flow = False  # the port was taken meanwhile: a new flow
                sock.bind(("::" if self.family == socket.AF_INET6 else "0.0.0.0", 0))
            self.local_port = self.local_port or sock.getsockname()[1]
            netpath.enable_recverr(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    async def probe(self, ttl: int, seq: int, wait: float) -> Reply | None:
        loop = asyncio.get_running_loop()
        sock = self._socket()
        try:
            netpath.set_ttl(sock, ttl)
            sent = now()
            try:
                async with asyncio.timeout(wait):
                    await loop.sock_connect(sock, self.sockaddr)
            except ConnectionRefusedError:
                # a reset, or an ICMP port-unreachable from a router (Linux maps both to
                # ECONNREFUSED): the error queue names a router's
                arrived = now()
                errors = netpath.read_errors(sock)
                if errors:
                    return _reply_from_error(errors[-1], self.family, self.dest, arrived - sent)
                return Reply(self.dest, arrived - sent, "reset", reached=True)
            except TimeoutError:
                return None
            except OSError:
                arrived = now()
                errors = netpath.read_errors(sock)
                if not errors:
                    return None
                return _reply_from_error(errors[-1], self.family, self.dest, arrived - sent)
            return Reply(self.dest, now() - sent, "syn_ack", reached=True)
        finally:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()

    def close(self) -> None:
        pass


async def trace_path(
    tracer: Tracer, *, first_hop: int, max_hops: int, queries: int, wait_s: float, gap_limit: int,
    asn_lookup: Callable[[str], int | None] | None, hops: list[dict[str, Any]], out: dict[str, Any],
) -> None:
    """Probe TTL ``first_hop`` to ``max_hops`` with ``tracer``, appending each hop to ``hops``
    as it is done (so a caller's timeout keeps them) and setting ``out["reached"]`` and
    ``out["stopped"]``. Used by the traceroute kind and by locating a censor."""
    seq = 0
    gap = 0
    for ttl in range(first_hop, max_hops + 1):
        replies: list[Reply] = []
        for _ in range(queries):
            reply = await tracer.probe(ttl, seq, wait_s)
            seq += 1
            if reply:
                replies.append(reply)
        by_address = Counter(r.address for r in replies)
        address = by_address.most_common(1)[0][0] if replies else ""
        hop: dict[str, Any] = {
            "ttl": ttl,
            "address": address,
            "addresses": sorted(by_address),
            "rtts_s": [rounded(r.rtt_s) for r in replies],
            "lost": queries - len(replies),
            "icmp": next((r.icmp for r in replies if r.address == address), ""),
            "asn": asn_lookup(address) if address and asn_lookup else None,
        }
        hops.append(hop)
        if any(r.reached for r in replies):
            out["reached"], out["stopped"] = True, "reached"
            return
        if replies and all(r.icmp != "time_exceeded" for r in replies):
            out["stopped"] = "unreachable"
            return
        gap = 0 if replies else gap + 1
        if gap >= gap_limit:
            out["stopped"] = "gap_limit"
            return
    out["stopped"] = "max_hops"


def make_tracer(address: ResolvedAddress, method: str, port: int) -> Tracer:
    return _Tcp(address, port) if method == "tcp" else _Datagram(address, port, method)


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    hops: list[dict[str, Any]] = []
    data: dict[str, Any] = {"host": spec.host, "method": spec.method, "hops": hops, "reached": False}
    if spec.method != "icmp":
        data["port"] = spec.port
    tracer: Tracer | None = None
    deadline = asyncio.get_running_loop().time() + spec.timeout_s
    try:
        async with asyncio.timeout_at(deadline):
            addresses = await resolve_checked(
                spec.host, spec.port or 33434, allow_private=limits.allow_private_targets,
                overrides=limits.host_overrides,
            )
        address = addresses[0]
        data["address"] = address.address
        data["family"] = "ipv6" if address.family == socket.AF_INET6 else "ipv4"
        tracer = make_tracer(address, spec.method, spec.port)
        try:
            async with asyncio.timeout_at(deadline):
                await trace_path(
                    tracer, first_hop=spec.first_hop, max_hops=spec.max_hops, queries=spec.queries,
                    wait_s=spec.wait_s, gap_limit=spec.gap_limit, asn_lookup=limits.asn_lookup,
                    hops=hops, out=data,
                )  # fmt: skip
        except TimeoutError:
            if not hops:
                raise
            data["stopped"] = "timeout"
    except Exception as exc:
        data["hop_count"] = len(hops)
        return failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    finally:
        if tracer is not None:
            tracer.close()
    if isinstance(tracer, _Tcp) and not tracer.constant_flow:
        data["constant_flow"] = False
    data["hop_count"] = len(hops)
    failure = None
    detail = ""
    if not data["reached"]:
        failure = HOST_UNREACHABLE if data["stopped"] == "unreachable" else GENERIC_TIMEOUT
        last = next((h for h in reversed(hops) if h["address"]), None)
        detail = f"not reached ({data['stopped']}); last hop that answered: " + (
            f"{last['address']} at TTL {last['ttl']}" if last else "none"
        )
    return ProbeOutcome(
        kind=NAME, target=spec.target, failure=failure, failure_detail=detail,
        duration_s=round(now() - started, 6), data=data,
    )  # fmt: skip
