from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from agent.policy import (
    TargetForbidden,
    check_address,
    check_host_literal,
    forbidden_reason,
    parse_address,
    resolve_checked,
)
from agent.probes.failures import classify


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("100.64.0.1", "CGNAT (100.64.0.0/10)"),
        ("100.127.255.254", "CGNAT (100.64.0.0/10)"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100::1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped (127.0.0.1)"),
        ("::ffff:8.8.8.8", "IPv4-mapped (8.8.8.8)"),  # a resolver has no business returning one
        ("64:ff9b::a00:1", "an IPv4-embedding IPv6 address of 10.0.0.1 (private)"),  # NAT64
        ("2002:c0a8:101::1", "an IPv4-embedding IPv6 address of 192.168.1.1 (private)"),  # 6to4
        ("::7f00:1", "an IPv4-embedding IPv6 address of 127.0.0.1 (loopback)"),  # IPv4-compatible
        ("::2", "an IPv4-embedding IPv6 address of 0.0.0.2 (private)"),  # the smallest compatible
        ("198.18.0.1", "private"),  # benchmarking range
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    """The reason is what a refused task's failure_detail tells the operator: exact."""
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1", "100.63.255.255",
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
        "::1.2.3.4",  # IPv4-compatible form of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_literal_check_and_the_lift() -> None:
    with pytest.raises(TargetForbidden) as info:
        check_host_literal("127.0.0.1", allow_private=False)
    assert classify(info.value) == "target_forbidden"
    check_host_literal("127.0.0.1", allow_private=True)
    check_host_literal("example.com", allow_private=False)  # a name is checked after resolving
    with pytest.raises(TargetForbidden):
        check_address("rebound.example", "10.0.0.7", allow_private=False)


async def test_names_are_checked_after_resolving() -> None:
    with pytest.raises(TargetForbidden) as info:
        await resolve_checked("localhost", 80, allow_private=False)
    assert "loopback" in str(info.value)
    resolved = await resolve_checked("localhost", 80, allow_private=True)
    assert "127.0.0.1" in [r.address for r in resolved]


def test_a_refusal_names_the_host_the_address_and_why() -> None:
    with pytest.raises(TargetForbidden) as info:
        check_address("rebound.example", "10.0.0.7", allow_private=False)
    err = info.value
    assert (err.host, err.address, err.reason) == ("rebound.example", "10.0.0.7", "private")
    assert str(err) == "rebound.example -> 10.0.0.7 is private; refused by the target policy"
    assert isinstance(err, OSError) and classify(err) == "target_forbidden"


def test_an_address_that_is_not_one_is_refused() -> None:
    with pytest.raises(TargetForbidden) as info:
        check_address("odd.example", "not-an-address", allow_private=False)
    assert (info.value.host, info.value.address, info.value.reason) == (
        "odd.example", "not-an-address", "not an IP address",
    )
    check_address("odd.example", "not-an-address", allow_private=True)  # the lift is total


def test_parsed_addresses_are_checked_as_they_are() -> None:
    with pytest.raises(TargetForbidden) as info:
        check_address("h", ipaddress.ip_address("fe80::1"), allow_private=False)
    assert (info.value.address, info.value.reason) == ("fe80::1", "link-local")
    check_address("h", ipaddress.ip_address("8.8.8.8"), allow_private=False)


def test_a_host_literal_is_refused_under_its_own_spelling() -> None:
    with pytest.raises(TargetForbidden) as info:
        check_host_literal("[::1]", allow_private=False)
    assert (info.value.host, info.value.address, info.value.reason) == ("[::1]", "::1", "loopback")
    with pytest.raises(TargetForbidden) as info:
        check_host_literal("fe80::1%eth0", allow_private=False)
    assert (info.value.host, info.value.address) == ("fe80::1%eth0", "fe80::1")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("fe80::1%eth0", "fe80::1"),  # a zone is not part of the address
        ("[fe80::1%eth0]", "fe80::1"),
        ("fe80::1%a%b", "fe80::1"),  # everything after the first %
        ("example.com", None),
        ("[::1", None),  # a bracket without its pair is no literal
        ("::1]", None),
        ("[]", None),
        ("", None),
        ("%eth0", None),
    ],
)
def test_parse_address(host: str, address: str | None) -> None:
    parsed = parse_address(host)
    assert (str(parsed) if parsed is not None else None) == address


# ------------------------------------------------------------------ after resolving


async def test_literals_resolve_to_themselves_with_the_port() -> None:
    (v4,) = await resolve_checked("127.0.0.1", 8080, allow_private=True)
    assert (v4.family, v4.address, v4.sockaddr) == (socket.AF_INET, "127.0.0.1", ("127.0.0.1", 8080))
    (v6,) = await resolve_checked("[::1]", 443, allow_private=True)
    assert (v6.family, v6.address, v6.sockaddr[:2]) == (socket.AF_INET6, "::1", ("::1", 443))


async def test_a_forbidden_literal_is_refused_before_any_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[object] = []

    async def never(*args: object, **kwargs: object) -> list[object]:
        looked_up.append(args)
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", never)
    with pytest.raises(TargetForbidden) as info:
        await resolve_checked("[::1]", 443, allow_private=False)
    assert (info.value.host, info.value.reason) == ("[::1]", "loopback")
    assert looked_up == []


async def test_overrides_replace_the_name_case_insensitively() -> None:
    overrides = {"twitter.demo": "127.0.0.5"}
    (r,) = await resolve_checked("Twitter.DEMO", 80, allow_private=True, overrides=overrides)
    assert (r.address, r.sockaddr) == ("127.0.0.5", ("127.0.0.5", 80))
    # the override's address is still judged by the policy, under the name it stands for
    with pytest.raises(TargetForbidden) as info:
        await resolve_checked("twitter.demo", 80, allow_private=False, overrides=overrides)
    assert (info.value.host, info.value.address, info.value.reason) == ("twitter.demo", "127.0.0.5", "loopback")
    # other names are left alone
    (other,) = await resolve_checked("127.0.0.9", 80, allow_private=True, overrides=overrides)
    assert other.address == "127.0.0.9"


def _info(family: int, address: str, port: int) -> tuple[object, ...]:
    sockaddr: tuple[object, ...] = (address, port) if family == socket.AF_INET else (address, port, 0, 0)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


async def test_every_answer_is_kept_once_and_only_ip_families(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[object, ...]] = []

    async def answers(host: str, port: int, **kw: object) -> list[tuple[object, ...]]:
        asked.append((host, port, kw))
        return [
            _info(socket.AF_INET, "8.8.8.8", port),
            _info(socket.AF_INET, "8.8.8.8", port),  # the same again
            (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/run/x.sock"),  # not an IP family
            _info(socket.AF_INET6, "2001:4860:4860::8888", port),
            _info(socket.AF_INET, "8.8.4.4", port),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", answers)
    resolved = await resolve_checked("dns.example", 53, allow_private=False)
    assert [(r.family, r.address) for r in resolved] == [
        (socket.AF_INET, "8.8.8.8"), (socket.AF_INET6, "2001:4860:4860::8888"), (socket.AF_INET, "8.8.4.4"),
    ]
    assert resolved[1].sockaddr == ("2001:4860:4860::8888", 53, 0, 0)
    assert asked == [("dns.example", 53, {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_TCP})]


async def test_one_inside_address_refuses_the_whole_name(monkeypatch: pytest.MonkeyPatch) -> None:
    async def rebinding(host: str, port: int, **kw: object) -> list[tuple[object, ...]]:
        return [_info(socket.AF_INET, "8.8.8.8", port), _info(socket.AF_INET, "10.0.0.7", port)]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    with pytest.raises(TargetForbidden) as info:
        await resolve_checked("rebind.example", 80, allow_private=False)
    assert (info.value.host, info.value.address, info.value.reason) == ("rebind.example", "10.0.0.7", "private")


async def test_a_name_without_ip_addresses_is_a_resolution_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unix_only(host: str, port: int, **kw: object) -> list[tuple[object, ...]]:
        return [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/run/x.sock")]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", unix_only)
    with pytest.raises(socket.gaierror) as info:
        await resolve_checked("odd.example", 80, allow_private=False)
    assert info.value.errno == socket.EAI_NONAME
    assert info.value.strerror == "odd.example: no IPv4 or IPv6 address"
