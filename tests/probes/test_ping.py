"""ping against local targets: TCP on loopback (what CI hosts allow without privileges),
and ICMP and TCP across a routed path of namespaces with nft dropping or rejecting on the
way (tests/probes/chain.py)."""

from __future__ import annotations

import socket

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits, SpecError
from agent.probes.netpath import IcmpUnavailable, icmp_socket
from agent.probes.ping import summarise
from tests.probes import chain
from tests.probes.servers import closed_port, silent_listener


def icmp_closed_reason() -> str | None:
    try:
        icmp_socket(socket.AF_INET).close()
    except IcmpUnavailable as exc:
        return str(exc)
    return None


async def ping(target: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    return await run_probe(parse_spec("ping", target, options, limits), limits)


async def test_tcp_ping_times_each_handshake(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await ping("127.0.0.1", limits, method="tcp", port=str(port), count="4", interval="0.2",
                             wait="8", timeout="15")  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    d = outcome.data
    assert (d["method"], d["port"], d["sent"], d["received"], d["loss"]) == ("tcp", port, 4, 4, 0.0)
    assert len(d["rtts_s"]) == 4 and d["lost_seqs"] == []
    assert 0 < d["rtt_min_s"] <= d["rtt_avg_s"] <= d["rtt_max_s"] < 0.5
    assert d["rtt_mdev_s"] >= 0 and d["jitter_s"] >= 0
    # four requests 0.2 s apart: the probe takes at least 0.6 s (a slow host only adds to
    # it) and stops once all are back, not when the last one's 8 s wait for a reply ends
    assert 0.6 <= outcome.duration_s < 0.6 + 8, outcome.duration_s


async def test_a_reset_is_a_reply(limits: Limits) -> None:
    outcome = await ping("127.0.0.1", limits, method="tcp", port=str(closed_port()), count="2", interval="0.2")
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["received"] == 2


async def test_auto_uses_icmp_where_the_host_allows_it_and_tcp_elsewhere(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await ping("127.0.0.1", limits, port=str(port), count="2", interval="0.2")
    assert outcome.failure is None, outcome.failure_detail
    closed = icmp_closed_reason()
    if closed is None:
        assert outcome.data["method"] == "icmp" and outcome.data["icmp_unavailable"] == ""
    else:
        assert outcome.data["method"] == "tcp"
        assert "ping_group_range" in outcome.data["icmp_unavailable"]
    assert outcome.data["received"] == 2


async def test_icmp_asked_for_where_it_is_closed_is_an_agent_error(limits: Limits) -> None:
    reason = icmp_closed_reason()
    if reason is None:
        pytest.skip("this host allows unprivileged ICMP; the chain tests cover ICMP ping")
    outcome = await ping("127.0.0.1", limits, method="icmp", count="1")
    assert outcome.failure == "agent_spec_error"
    assert "ping_group_range" in outcome.failure_detail


async def test_the_target_policy_applies() -> None:
    strict = Limits()
    outcome = await ping("127.0.0.1", strict, method="tcp", count="1")
    assert outcome.failure == "target_forbidden"


def test_summary_figures() -> None:
    s = summarise([0.010, None, 0.030, 0.020])
    assert (s["sent"], s["received"], s["loss"]) == (4, 3, 0.25)
    assert s["lost_seqs"] == [1]
    assert (s["rtt_min_s"], s["rtt_avg_s"], s["rtt_max_s"]) == (0.01, 0.02, 0.03)
    assert s["rtt_mdev_s"] == pytest.approx(0.008165, abs=1e-6)  # population sd of 10, 30, 20 ms
    assert s["jitter_s"] == pytest.approx(0.015)  # |30-10| and |20-30| ms, averaged
    empty = summarise([None, None])
    assert empty["loss"] == 1.0 and empty["rtt_avg_s"] is None and empty["jitter_s"] is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"count": "101"}, "options.count"),
        ({"count": "0"}, "options.count"),
        ({"interval": "0.1"}, "options.interval"),
        ({"size": "1473"}, "options.size"),
        ({"method": "raw"}, "options.method"),
        ({"port": "0"}, "options.port"),
        ({"count": "40", "interval": "1", "timeout": "30"}, "options.count"),
        ({"wait": "20"}, "options.wait"),
        ({"ttl": "3"}, "options.ttl"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, str], field: str, limits: Limits) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("ping", "example.com", options, limits)
    assert info.value.field == field


def test_a_url_is_not_a_ping_target(limits: Limits) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("ping", "https://example.com/", {}, limits)
    assert info.value.field == "target"


requires_chain = pytest.mark.skipif(chain.unavailable_reason() is not None, reason=str(chain.unavailable_reason()))


@pytest.mark.netns
@requires_chain
def test_icmp_and_tcp_ping_across_routers_with_loss() -> None:
    with chain.chain("ping", 81) as c:
        clean = c.probe("ping", c.target, "method=icmp", "count=3", "interval=0.2")
        assert clean["failure"] == "", clean
        data = clean["data"]
        assert isinstance(data, dict)
        assert (data["method"], data["received"], data["loss"]) == ("icmp", 3, 0.0)
        # Every second echo request, and every second SYN, dropped on the second router.
        c.censor(f"ip daddr {c.target} icmp type echo-request numgen inc mod 2 == 1 drop\n"
                 f"ip daddr {c.target} tcp flags & (syn | ack) == syn numgen inc mod 2 == 1 drop")
        for method in ("icmp", "tcp"):
            lossy = c.probe("ping", c.target, f"method={method}", "count=4", "interval=0.2", "wait=0.5")
            data = lossy["data"]
            assert isinstance(data, dict)
            assert lossy["failure"] == "", lossy
            assert (data["sent"], data["received"], data["loss"], data["lost_seqs"]) == (4, 2, 0.5, [1, 3]), data


@pytest.mark.netns
@requires_chain
def test_an_unreachable_from_a_router_is_reported_with_its_sender() -> None:
    with chain.chain("unr", 82) as c:
        c.censor(f"ip daddr {c.target} icmp type echo-request reject with icmp type host-unreachable")
        result = c.probe("ping", c.target, "method=icmp", "count=2", "interval=0.2", "wait=0.5")
        assert result["failure"] == "host_unreachable", result
        data = result["data"]
        assert isinstance(data, dict)
        assert data["received"] == 0
        assert data["replies_from"] == {c.hops[1]: 2}


@pytest.mark.netns
@requires_chain
def test_no_reply_at_all_is_a_timeout() -> None:
    with chain.chain("mute", 88) as c:
        c.censor(f"ip daddr {c.target} tcp dport 443 drop")
        result = c.probe("ping", c.target, "method=tcp", "count=2", "interval=0.2", "wait=0.3")
        assert result["failure"] == "generic_timeout", result
        assert result["failure_detail"] == "no reply to 2 requests within 0.3 s"
        data = result["data"]
        assert isinstance(data, dict)
        assert (data["received"], data["loss"], data["lost_seqs"]) == (0, 1.0, [0, 1])
