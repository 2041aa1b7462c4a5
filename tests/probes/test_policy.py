from __future__ import annotations

import ipaddress

import pytest

from agent.policy import (
    TargetForbidden,
    check_address,
    check_host_literal,
    forbidden_reason,
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
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64 of a private address
        ("2002:c0a8:101::1", "192.168.1.1"),  # 6to4 of a private address
        ("198.18.0.1", "private"),  # benchmarking range
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1", "64:ff9b::808:808"])
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
