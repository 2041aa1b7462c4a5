"""Sockets for the path kinds (ping, traceroute): TTLs, ICMP errors and echo, unprivileged.

Linux reports the ICMP errors a datagram or a connecting TCP socket provokes on that same
socket when ``IP_RECVERR`` (``IPV6_RECVERR``) is set: each one is read from the socket's
error queue (``recvmsg`` with ``MSG_ERRQUEUE``) as a ``sock_extended_err`` that names the
ICMP type and code and the address of the router or host that sent it (the offender).
tracepath works this way, and so does everything here: no raw socket, no capability.
ICMP echo itself uses the unprivileged datagram ICMP socket where
``net.ipv4.ping_group_range`` lets the agent's group open one (:func:`icmp_socket`).

Everything read here comes from the network and is untrusted: a control message that is
not a well-formed ``sock_extended_err`` is ignored, and payloads are cut at
``MAX_PAYLOAD``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass

IP_RECVERR = 11  # linux/in.h; not in Python's socket module
IPV6_RECVERR = 25  # linux/in6.h
SOL_IPV6 = 41
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
MAX_PAYLOAD = 2048
_EE = struct.Struct("=IBBBBII")  # ee_errno, ee_origin, ee_type, ee_code, ee_pad, ee_info, ee_data

# ICMP types, per family: time exceeded, destination unreachable, echo request/reply.
TIME_EXCEEDED: dict[int, int] = {socket.AF_INET: 11, socket.AF_INET6: 3}
UNREACHABLE: dict[int, int] = {socket.AF_INET: 3, socket.AF_INET6: 1}
ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
# The destination-unreachable code that means "this host, no such port".
PORT_UNREACHABLE: dict[int, int] = {socket.AF_INET: 3, socket.AF_INET6: 4}


@dataclass(frozen=True)
class IcmpError:
    """One entry of a socket's error queue that an ICMP message caused."""

    offender: str  # the address that sent the ICMP message
    icmp_type: int
    icmp_code: int
    errno: int
    payload: bytes  # what the ICMP message quoted of our packet, after its transport header


def icmp_name(family: int, icmp_type: int, code: int) -> str:
    """A short name for an ICMP type: time_exceeded, port_unreachable, unreachable_<code>..."""
    if icmp_type == TIME_EXCEEDED[family]:
        return "time_exceeded"
    if icmp_type == UNREACHABLE[family]:
        return "port_unreachable" if code == PORT_UNREACHABLE[family] else f"unreachable_{code}"
    if icmp_type == ECHO_REPLY[family]:
        return "echo_reply"
    return f"icmp_{icmp_type}_{code}"


def parse_extended_err(level: int, kind: int, data: bytes) -> tuple[int, int, int, int, str] | None:
    """(errno, origin, type, code, offender) from one control message, or None when it is
    not an ICMP ``sock_extended_err`` with an offender address."""
    if (level, kind) not in ((socket.SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
        return None
    if len(data) < _EE.size + 2:
        return None
    err, origin, icmp_type, code, _pad, _info, _data = _EE.unpack_from(data)
    if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
        return None
    family = int.from_bytes(data[_EE.size : _EE.size + 2], sys.byteorder)  # sa_family: host order
    offset = _EE.size
    if family == socket.AF_INET and len(data) >= offset + 8:
        offender = str(ipaddress.IPv4Address(data[offset + 4 : offset + 8]))
    elif family == socket.AF_INET6 and len(data) >= offset + 24:
        offender = str(ipaddress.IPv6Address(data[offset + 8 : offset + 24]))
    else:
        return None
    return err, origin, icmp_type, code, offender


def enable_recverr(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)


def set_ttl(sock: socket.socket, ttl: int) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(SOL_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)


def read_errors(sock: socket.socket) -> list[IcmpError]:
    """Every entry waiting in the socket's error queue (non-blocking; none: [])."""
    found: list[IcmpError] = []
    for _ in range(64):  # bounded: a flood of errors cannot keep us here
        try:
            payload, ancdata, _flags, _addr = sock.recvmsg(MAX_PAYLOAD, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        for level, kind, data in ancdata:
            parsed = parse_extended_err(level, kind, data)
            if parsed is not None:
                err, _origin, icmp_type, code, offender = parsed
                found.append(IcmpError(offender, icmp_type, code, err, payload[:MAX_PAYLOAD]))
    return found


async def readable(sock: socket.socket, timeout: float) -> bool:  # noqa: ASYNC109 (a deadline per wait)
    """Wait until the socket has data or an error queued (epoll reports both), at most
    ``timeout`` seconds; False on timeout."""
    if timeout <= 0:
        return False
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(sock.fileno())


class IcmpUnavailable(OSError):
    """This host does not let the agent open an unprivileged ICMP socket."""


def icmp_socket(family: int) -> socket.socket:
    """A non-blocking datagram ICMP (echo) socket, or :class:`IcmpUnavailable` saying why."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    except PermissionError:
        raise IcmpUnavailable(
            "unprivileged ICMP sockets are closed on this host (sysctl net.ipv4.ping_group_range "
            "does not include the agent's group)"
        ) from None
    except OSError as exc:
        raise IcmpUnavailable(f"no ICMP socket: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def echo_request(family: int, seq: int, payload: bytes, *, constant_sum: bool = False) -> bytes:
    """An echo request for a datagram ICMP socket: the kernel fills in the identifier and
    the checksum. With ``constant_sum`` the payload starts with ``0xFFFF - seq``, so the
    checksum is the same for every ``seq`` (Paris traceroute: a load balancer hashing
    the first bytes of the ICMP header sees one flow)."""
    seq &= 0xFFFF
    if constant_sum:
        payload = struct.pack("!H", 0xFFFF - seq) + payload[2:]
    return struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, 0, seq) + payload


def quoted_echo_seq(family: int, quoted: bytes) -> int | None:
    """The sequence number of our echo request quoted in an ICMP error, else None."""
    if len(quoted) < 8 or quoted[0] != ECHO_REQUEST[family]:
        return None
    seq: int = struct.unpack_from("!H", quoted, 6)[0]
    return seq


def parse_echo_reply(family: int, data: bytes) -> int | None:
    """The sequence number of an echo reply read from a datagram ICMP socket, else None."""
    if len(data) < 8 or data[0] != ECHO_REPLY[family]:
        return None
    seq: int = struct.unpack_from("!H", data, 6)[0]
    return seq


def constant_sum_tag(seq: int) -> bytes:
    """Four bytes that carry ``seq`` and keep the 16-bit one's-complement sum of the
    packet the same whatever ``seq`` is: ``seq`` then ``0xFFFF - seq``. A UDP or ICMP
    checksum over a payload that starts with them is then the same for every probe of a
    trace (Paris traceroute's trick, so a load balancer that hashes the checksum too
    keeps every probe on one path), and the quoted payload still names the probe."""
    seq &= 0xFFFF
    return struct.pack("!HH", seq, 0xFFFF - seq)


def tag_seq(payload: bytes) -> int | None:
    """The ``seq`` of a quoted :func:`constant_sum_tag`, or None when it was not quoted
    (or is not ours)."""
    if len(payload) < 4:
        return None
    seq, rest = struct.unpack_from("!HH", payload)
    return seq if seq + rest == 0xFFFF else None


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's-complement sum of ``data`` (the checksum is its complement)."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
