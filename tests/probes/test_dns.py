from __future__ import annotations

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits
from agent.probes.failures import FAILURES
from tests.probes.servers import LIE, OK_A, OK_AAAA, dns_server, silent_udp


async def probe(name: str, port: int, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    spec = parse_spec("dns", name, {"resolver": f"127.0.0.1:{port}", "timeout": "1", **options}, limits)
    outcome = await run_probe(spec, limits)
    assert outcome.failure is None or outcome.failure in FAILURES
    return outcome


async def test_answers_a_and_aaaa(limits: Limits) -> None:
    async with dns_server() as port:
        outcome = await probe("ok.test", port, limits)
    assert outcome.failure is None
    assert sorted(outcome.data["answers"]) == sorted([OK_A, OK_AAAA])
    assert outcome.data["rcode"] == "NOERROR"
    assert outcome.data["resolver"] == f"127.0.0.1:{port}"
    assert outcome.data["bogon_answers"] == []
    assert outcome.data["responses"]["A"]["answers"][0] == {"type": "A", "value": OK_A, "ttl": 300}
    assert outcome.duration_s > 0


async def test_keeps_the_cname_chain(limits: Limits) -> None:
    async with dns_server() as port:
        outcome = await probe("alias.test", port, limits, type="A")
    assert outcome.failure is None
    assert outcome.data["cname_chain"] == ["middle.test", "ok.test"]
    assert outcome.data["answers"] == [OK_A]


async def test_a_lie_is_reported_as_a_bogon(limits: Limits) -> None:
    async with dns_server() as port:
        outcome = await probe("blocked.test", port, limits)
    assert outcome.failure is None  # the resolver answered; the answer is the evidence
    assert outcome.data["answers"] == [LIE]
    assert outcome.data["bogon_answers"] == [LIE]
    assert outcome.data["responses"]["AAAA"]["failure"] == "dns_no_answer"


@pytest.mark.parametrize(
    ("name", "failure", "rcode"),
    [
        ("nx.test", "dns_nxdomain", "NXDOMAIN"),
        ("servfail.test", "dns_servfail", "SERVFAIL"),
        ("refused.test", "dns_refused", "REFUSED"),
        ("noanswer.test", "dns_no_answer", "NOERROR"),
    ],
)
async def test_error_answers(limits: Limits, name: str, failure: str, rcode: str) -> None:
    async with dns_server() as port:
        outcome = await probe(name, port, limits)
    assert outcome.failure == failure
    assert outcome.data["rcode"] == rcode
    assert outcome.data["answers"] == []


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_truncated_answer_falls_back_to_tcp(limits: Limits, transport: str) -> None:
    async with dns_server() as port:
        outcome = await probe("big.test", port, limits, type="A", transport=transport)
    assert outcome.failure is None
    assert len(outcome.data["answers"]) == 60
    assert outcome.data["transport"] == transport


async def test_silent_resolver_times_out(limits: Limits) -> None:
    with silent_udp() as port:
        outcome = await probe("ok.test", port, limits, timeout="0.5")
    assert outcome.failure == "dns_timeout"
    assert outcome.duration_s >= 0.4  # it waited its time (load only makes it longer)


@pytest.mark.timing
async def test_silent_resolver_times_out_on_time(limits: Limits) -> None:
    with silent_udp() as port:
        outcome = await probe("ok.test", port, limits, timeout="0.5")
    assert outcome.failure == "dns_timeout"
    assert outcome.duration_s < 3


async def test_silent_over_tcp_times_out(limits: Limits) -> None:
    async with dns_server() as port:
        outcome = await probe("silent.test", port, limits, transport="tcp", timeout="0.5")
    assert outcome.failure == "dns_timeout"


async def test_private_resolver_is_refused_by_the_policy() -> None:
    strict = Limits()
    spec = parse_spec("dns", "ok.test", {"resolver": "127.0.0.1:53"}, strict)
    outcome = await run_probe(spec, strict)
    assert outcome.failure == "target_forbidden"
    assert "loopback" in outcome.failure_detail


@pytest.mark.parametrize("name", ["intranet", "db.corp", "printer.local", "vault.internal", "nas.home.arpa",
                                  "10.0.0.10.in-addr.arpa", "Git.Internal."])  # fmt: skip
async def test_the_system_resolver_answers_no_internal_name(name: str) -> None:
    """The agent host's own resolver may sit inside a private network: a dns job asks it
    only public names (docs/security.md), unless the operator allowed private targets.
    Refused before any packet leaves: no resolver is needed for this test."""
    strict = Limits()
    spec = parse_spec("dns", name, {"resolver": "system", "timeout": "1"}, strict)
    outcome = await run_probe(spec, strict)
    assert outcome.failure == "target_forbidden", (outcome.failure, outcome.failure_detail)
    assert "only a local resolver answers" in outcome.failure_detail


async def test_a_named_resolver_is_still_asked_a_local_use_name(limits: Limits) -> None:
    assert limits.allow_private_targets  # the probe tests' limits
    async with dns_server() as port:
        outcome = await probe("ok.test", port, limits)  # .test through a named resolver: asked
    assert outcome.failure is None, outcome.failure_detail
