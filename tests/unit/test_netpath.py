"""The path kinds' socket plumbing that does not need a network: reading the kernel's
extended errors (untrusted bytes), and the Paris-style constant checksums."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from agent.probes import netpath


def _ee(origin: int, icmp_type: int, code: int, offender: bytes) -> bytes:
    return struct.pack("=IBBBBII", 113, origin, icmp_type, code, 0, 0, 0) + offender


def _sin(address: str) -> bytes:
    return socket.AF_INET.to_bytes(2, sys.byteorder) + b"\0\0" + socket.inet_aton(address) + bytes(8)


def _sin6(address: str) -> bytes:
    return socket.AF_INET6.to_bytes(2, sys.byteorder) + bytes(6) + socket.inet_pton(socket.AF_INET6, address) + bytes(4)


def test_an_icmp_error_names_its_type_code_and_sender() -> None:
    data = _ee(netpath.SO_EE_ORIGIN_ICMP, 11, 0, _sin("192.0.2.7"))
    assert netpath.parse_extended_err(socket.SOL_IP, netpath.IP_RECVERR, data) == (113, 2, 11, 0, "192.0.2.7")
    data6 = _ee(netpath.SO_EE_ORIGIN_ICMP6, 1, 4, _sin6("2001:db8::9"))
    assert netpath.parse_extended_err(netpath.SOL_IPV6, netpath.IPV6_RECVERR, data6) == (113, 3, 1, 4, "2001:db8::9")


@pytest.mark.parametrize(
    ("level", "kind", "data"),
    [
        (socket.SOL_IP, netpath.IP_RECVERR + 1, _ee(2, 11, 0, _sin("192.0.2.7"))),  # another cmsg
        (socket.SOL_IP, netpath.IP_RECVERR, _ee(1, 11, 0, _sin("192.0.2.7"))),  # a local error
        (socket.SOL_IP, netpath.IP_RECVERR, _ee(2, 11, 0, b"")),  # no offender
        (socket.SOL_IP, netpath.IP_RECVERR, _ee(2, 11, 0, _sin("192.0.2.7"))[:19]),  # cut short
        (socket.SOL_IP, netpath.IP_RECVERR, b"\xff" * 7),
        (socket.SOL_IP, netpath.IP_RECVERR, _ee(2, 11, 0, b"\x07\x00" + bytes(30))),  # unknown family
    ],
)
def test_anything_else_is_ignored(level: int, kind: int, data: bytes) -> None:
    assert netpath.parse_extended_err(level, kind, data) is None


def test_icmp_names() -> None:
    v4, v6 = socket.AF_INET, socket.AF_INET6
    assert netpath.icmp_name(v4, 11, 0) == netpath.icmp_name(v6, 3, 0) == "time_exceeded"
    assert netpath.icmp_name(v4, 3, 3) == netpath.icmp_name(v6, 1, 4) == "port_unreachable"
    assert netpath.icmp_name(v4, 3, 13) == "unreachable_13"
    assert netpath.icmp_name(v4, 5, 1) == "icmp_5_1"


def test_udp_probes_of_a_trace_have_one_checksum_and_name_their_sequence() -> None:
    pad = bytes(28)
    sums = {netpath.ones_complement_sum(netpath.constant_sum_tag(seq) + pad) for seq in (0, 1, 2, 999, 65535)}
    assert len(sums) == 1
    for seq in (0, 7, 65535):
        assert netpath.tag_seq(netpath.constant_sum_tag(seq) + pad) == seq
    assert netpath.tag_seq(b"\0\1\0\1") is None  # not a tag of ours
    assert netpath.tag_seq(b"\0\1") is None  # quoted too short


def test_icmp_probes_of_a_trace_have_one_checksum() -> None:
    packets = [netpath.echo_request(socket.AF_INET, seq, bytes(32), constant_sum=True) for seq in (0, 1, 40, 65535)]
    assert len({netpath.ones_complement_sum(p) for p in packets}) == 1
    assert [netpath.quoted_echo_seq(socket.AF_INET, p) for p in packets] == [0, 1, 40, 65535]
    plain = [netpath.echo_request(socket.AF_INET, seq, bytes(32)) for seq in (0, 1)]
    assert len({netpath.ones_complement_sum(p) for p in plain}) == 2  # without it, they differ


def test_echo_replies() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 77, 12) + b"x"
    assert netpath.parse_echo_reply(socket.AF_INET, reply) == 12
    assert netpath.parse_echo_reply(socket.AF_INET, reply[:7]) is None
    assert netpath.parse_echo_reply(socket.AF_INET6, reply) is None  # type 0 is not an ICMPv6 reply
