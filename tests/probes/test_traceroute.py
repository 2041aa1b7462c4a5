"""traceroute on loopback and across a routed path of namespaces (tests/probes/chain.py):
the exact hops for each method, Paris-style constant flows seen at a router, and the trace
stopping where nft drops or rejects on the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits, SpecError
from tests.probes import chain
from tests.probes.servers import closed_port


async def trace(target: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    return await run_probe(parse_spec("traceroute", target, options, limits), limits)


@pytest.mark.parametrize(("method", "icmp"), [("udp", "port_unreachable"), ("tcp", "reset")])
async def test_loopback_is_one_hop(method: str, icmp: str, limits: Limits) -> None:
    outcome = await trace("127.0.0.1", limits, method=method, port=str(closed_port()))
    assert outcome.failure is None, outcome.failure_detail
    d = outcome.data
    assert (d["reached"], d["stopped"], d["hop_count"]) == (True, "reached", 1)
    hop = d["hops"][0]
    assert (hop["ttl"], hop["address"], hop["icmp"], hop["lost"]) == (1, "127.0.0.1", icmp, 0)
    assert len(hop["rtts_s"]) == 3


async def test_the_target_policy_applies() -> None:
    outcome = await trace("127.0.0.1", Limits())
    assert outcome.failure == "target_forbidden"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"method": "paris"}, "options.method"),
        ({"max_hops": "65"}, "options.max_hops"),
        ({"first_hop": "31"}, "options.first_hop"),
        ({"queries": "6"}, "options.queries"),
        ({"wait": "6"}, "options.wait"),
        ({"method": "icmp", "port": "80"}, "options.port"),
        ({"gap_limit": "0"}, "options.gap_limit"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, str], field: str, limits: Limits) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("traceroute", "example.com", options, limits)
    assert info.value.field == field


requires_chain = pytest.mark.skipif(chain.unavailable_reason() is not None, reason=str(chain.unavailable_reason()))


def hops_of(result: dict[str, object]) -> list[tuple[str, str, int]]:
    data = result["data"]
    assert isinstance(data, dict)
    return [(h["address"], h["icmp"], h["lost"]) for h in data["hops"]]


@pytest.mark.netns
@requires_chain
def test_each_method_gives_the_configured_path(tmp_path: Path) -> None:
    asn_file = tmp_path / "asn.txt"
    asn_file.write_text("# prefix asn\n10.83.0.0/16 64500\n10.83.2.0/24 AS64501\n")
    with chain.chain("path", 83) as c:
        r1, r2, target = c.hops
        for method, last in (("udp", "port_unreachable"), ("tcp", "reset"), ("icmp", "echo_reply")):
            result = c.probe("traceroute", target, f"method={method}", f"--asn-file={asn_file}")
            assert result["failure"] == "", result
            assert hops_of(result) == [(r1, "time_exceeded", 0), (r2, "time_exceeded", 0), (target, last, 0)]
            data = result["data"]
            assert isinstance(data, dict)
            assert (data["reached"], data["stopped"]) == (True, "reached")
            # the longest prefix wins: r2 (10.83.2.2) is in the /24
            assert [h["asn"] for h in data["hops"]] == [64500, 64501, 64500]


@pytest.mark.netns
@requires_chain
def test_every_probe_of_a_trace_is_one_flow_at_the_router() -> None:
    with chain.chain("flow", 84) as c:
        # r1 records each distinct (source port, destination port, checksum) it forwards.
        chain.sh("ip", "netns", "exec", c.r1, "nft", "-f", "-", stdin=(
            "table inet watch {\n"
            " set udp_flows { typeof udp sport . udp dport . udp checksum; }\n"
            " set tcp_flows { typeof tcp sport . tcp dport; }\n"
            " chain pass {\n  type filter hook forward priority 0;\n"
            f"  ip daddr {c.target} udp dport 33434 add @udp_flows {{ udp sport . udp dport . udp checksum }}\n"
            f"  ip daddr {c.target} tcp dport 443 add @tcp_flows {{ tcp sport . tcp dport }}\n"
            " }\n}\n"
        ))  # fmt: skip
        for method in ("udp", "tcp"):
            result = c.probe("traceroute", c.target, f"method={method}")
            assert result["failure"] == "", result
            assert [h[0] for h in hops_of(result)] == c.hops
        # 9 probes each, r1 forwarded 6 of them (TTL 2 and 3): one flow per method
        for name in ("udp_flows", "tcp_flows"):
            listed = chain.sh("ip", "netns", "exec", c.r1, "nft", "list", "set", "inet", "watch", name).stdout
            elements = listed.split("elements = {", 1)[1].split("}", 1)[0].split(",")
            assert len(elements) == 1, listed


@pytest.mark.netns
@requires_chain
def test_a_drop_on_the_way_ends_the_trace_at_the_hop_before() -> None:
    with chain.chain("drop", 85) as c:
        r1, r2, _ = c.hops
        c.censor(f"ip daddr {c.target} tcp dport 443 drop")
        result = c.probe("traceroute", c.target, "method=tcp", "wait=0.3", "gap_limit=2")
        assert result["failure"] == "generic_timeout", result
        assert hops_of(result) == [(r1, "time_exceeded", 0), (r2, "time_exceeded", 0), ("", "", 3), ("", "", 3)]
        data = result["data"]
        assert isinstance(data, dict)
        assert (data["reached"], data["stopped"]) == (False, "gap_limit")
        assert f"last hop that answered: {r2} at TTL 2" in str(result["failure_detail"])


@pytest.mark.netns
@requires_chain
def test_a_reject_on_the_way_stops_the_trace_with_its_sender() -> None:
    with chain.chain("rej", 86) as c:
        r1, r2, _ = c.hops
        c.censor(f"ip daddr {c.target} udp dport 33434 reject with icmp type admin-prohibited")
        result = c.probe("traceroute", c.target)
        assert result["failure"] == "host_unreachable", result
        assert hops_of(result) == [(r1, "time_exceeded", 0), (r2, "time_exceeded", 0), (r2, "unreachable_13", 0)]


@pytest.mark.netns
@requires_chain
def test_silent_hops_end_at_the_timeout_with_what_was_found() -> None:
    with chain.chain("slow", 87) as c:
        c.censor(f"ip daddr {c.target} drop")
        result = c.probe("traceroute", c.target, "wait=0.4", "gap_limit=64", "timeout=2")
        data = result["data"]
        assert isinstance(data, dict)
        assert result["failure"] == "generic_timeout", result
        assert data["stopped"] == "timeout"
        assert [h["address"] for h in data["hops"][:2]] == c.hops[:2]
        assert float(str(result["duration_s"])) < 3
