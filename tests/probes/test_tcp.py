from __future__ import annotations

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits
from tests.probes.servers import (
    closed_port,
    full_backlog_listener,
    reset_on_accept,
    silent_listener,
    tcp_server,
)


async def probe(target: str, limits: Limits, wait_s: str = "1"):  # type: ignore[no-untyped-def]
    return await run_probe(parse_spec("tcp", target, {"timeout": wait_s}, limits), limits)


async def test_connects_and_reports_the_address(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await probe(f"127.0.0.1:{port}", limits)
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["address"] == "127.0.0.1"
    assert outcome.data["family"] == "ipv4"
    assert 0 < outcome.data["connect_s"] < 1


async def test_resolves_a_name(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await probe(f"localhost:{port}", limits)
    # localhost may list ::1 first where nothing listens; either way 127.0.0.1 must connect
    assert outcome.failure is None, outcome.failure_detail
    assert "127.0.0.1" in outcome.data["addresses"]


async def test_closed_port_is_refused(limits: Limits) -> None:
    outcome = await probe(f"127.0.0.1:{closed_port()}", limits)
    assert outcome.failure == "connection_refused"
    assert "refused" in outcome.failure_detail.lower()


async def test_full_backlog_times_out(limits: Limits) -> None:
    with full_backlog_listener() as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, wait_s="0.5")
    assert outcome.failure == "generic_timeout"
    assert outcome.duration_s >= 0.45  # it waited its time (load only makes it longer)


@pytest.mark.timing
async def test_full_backlog_times_out_on_time(limits: Limits) -> None:
    with full_backlog_listener() as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, wait_s="0.5")
    assert outcome.failure == "generic_timeout"
    assert outcome.duration_s < 2


async def test_a_reset_after_accept_still_connected(limits: Limits) -> None:
    # The tcp kind measures the handshake only: an RST after it is not its failure.
    async with tcp_server(reset_on_accept) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits)
    assert outcome.failure is None


async def test_loopback_is_forbidden_by_default() -> None:
    strict = Limits()
    with silent_listener() as port:
        literal = await probe(f"127.0.0.1:{port}", strict)
        named = await probe(f"localhost:{port}", strict)
    assert literal.failure == "target_forbidden"
    assert named.failure == "target_forbidden"  # refused after resolving
    assert "loopback" in named.failure_detail
