"""Locating a censor (-o locate=true): the TTL steps against a real on-path censor (nft on
the second router of tests/probes/chain.py), and the decision over synthetic steps."""

from __future__ import annotations

import pytest

from agent.probes.locate import client_hello, decide, http_request
from tests.polling import poll
from tests.probes import chain

requires_chain = pytest.mark.skipif(chain.unavailable_reason() is not None, reason=str(chain.unavailable_reason()))


def located(result: dict[str, object]) -> dict[str, object]:
    data = result["data"]
    assert isinstance(data, dict), result
    found = data["locate"]
    assert isinstance(found, dict)
    return found


def wait_http(c: chain.Chain) -> None:
    _, up = poll(lambda: chain.sh("ip", "netns", "exec", c.cli, "curl", "-s", "-o", "/dev/null", "-m", "2",
                                  f"http://{c.target}/", check=False),
                 lambda done: done.returncode == 0, timeout=15, interval=0.2)  # fmt: skip
    assert up is not None, "the target's HTTP server did not start"


@pytest.mark.netns
@requires_chain
def test_a_reset_is_located_at_the_censors_hop_for_the_syn_and_for_the_request() -> None:
    with chain.chain("lrst", 91) as c:
        server = c.serve_http()
        try:
            wait_http(c)
            c.censor(f"ip daddr {c.target} tcp dport 443 reject with tcp reset\n"
                     f"ip daddr {c.target} tcp dport 80 ct state established tcp flags & psh == psh "
                     "reject with tcp reset", hook="prerouting")  # fmt: skip
            for kind, target, method, failure in (
                ("tcp", f"{c.target}:443", "syn", "connection_refused"),
                ("http", f"http://{c.target}/", "data", "connection_reset"),
            ):
                result = c.probe(kind, target, "locate=true", "timeout=10")
                assert result["failure"] == failure, result
                found = located(result)
                assert (found["method"], found["at"], found["censor_ttl"], found["censor_hop"], found["response"]) == (
                    method, "path", 2, c.hops[1], "reset"), found
                assert found["destination_ttl"] == 3 and found["path"] == c.hops
        finally:
            server.kill()
            server.wait(timeout=10)


@pytest.mark.netns
@requires_chain
def test_a_drop_is_located_at_the_censors_hop() -> None:
    with chain.chain("ldrop", 92) as c:
        c.censor(f"ip daddr {c.target} tcp dport 443 drop", hook="prerouting")
        result = c.probe("tcp", f"{c.target}:443", "locate=true", "timeout=4")
        assert result["failure"] == "generic_timeout", result
        found = located(result)
        assert (found["at"], found["censor_ttl"], found["censor_hop"], found["response"]) == (
            "path", 2, c.hops[1], "drop"), found


@pytest.mark.netns
@requires_chain
def test_no_censor_on_the_path_is_at_the_destination() -> None:
    with chain.chain("lnone", 93) as c:
        server = c.serve_http()
        try:
            wait_http(c)
            result = c.probe("http", f"http://{c.target}/", "locate=true", "timeout=10")
            assert result["failure"] == "", result
            found = located(result)
            assert (found["method"], found["at"], found["censor_ttl"], found["censor_hop"], found["response"]) == (
                "data", "destination", 3, "", "response"), found
            assert [s["outcome"] for s in found["steps"]] == ["expired", "expired", "response"]  # type: ignore[union-attr]
        finally:
            server.kill()
            server.wait(timeout=10)


def steps(*outcomes: str) -> list[dict[str, object]]:
    return [{"ttl": i + 1, "outcome": o, "address": ""} for i, o in enumerate(outcomes)]


PATH = ["10.0.1.1", "10.0.2.2", "10.0.3.3", "198.51.100.7"]


@pytest.mark.parametrize(
    ("outcomes", "path", "destination", "expected"),
    [
        # a reset below the destination's distance is injected on the way
        (("expired", "reset"), PATH, 4, ("path", 2, "10.0.2.2", "reset")),
        # a page that arrives before the request could reach the server: a block page
        (("expired", "expired", "response"), PATH, 4, ("path", 3, "10.0.3.3", "response")),
        # silence where the control trace had a router answering, and after: a drop
        (("expired", "silent", "silent"), PATH, 4, ("path", 2, "10.0.2.2", "drop")),
        # one silent router, then the path goes on: not a drop
        (("expired", "silent", "expired", "reset"), PATH, 4, ("destination", 4, "", "reset")),
        # one lost ICMP before a reset: the reset names the hop, not the silence
        (("expired", "silent", "reset"), PATH, 4, ("path", 3, "10.0.3.3", "reset")),
        # the last step silent, with a router there in the control trace: a drop
        (("expired", "silent"), PATH, 4, ("path", 2, "10.0.2.2", "drop")),
        # a step that could not be made (a handshake refused after a trigger) says nothing
        (("expired", "no_handshake"), PATH, 4, ("", None, "", "")),
        (("error_emfile",), PATH, 4, ("", None, "", "")),
        (("expired", "expired", "expired", "response"), PATH, 4, ("destination", 4, "", "response")),
        # no control trace to the end: an answer past the last router that answered
        (("expired", "expired", "reset"), ["10.0.1.1", "10.0.2.2"], None, ("unknown", 3, "", "reset")),
        # an ICMP unreachable from a router names that router
        (("expired", "unreachable_13"), PATH, 4, ("path", 2, "10.0.2.2", "unreachable_13")),
        (("expired", "expired"), PATH, 4, ("", None, "", "")),
    ],
)
def test_the_decision(
    outcomes: tuple[str, ...], path: list[str], destination: int | None, expected: tuple[object, ...]
) -> None:
    got = decide(steps(*outcomes), path, destination)
    assert (got["at"], got["censor_ttl"], got["censor_hop"], got["response"]) == expected


def test_the_triggers_carry_the_name() -> None:
    hello = client_hello("blocked.example", ("http/1.1",))
    assert hello[0] == 0x16 and b"blocked.example" in hello  # a TLS handshake record with the SNI
    assert b"blocked.example" not in client_hello("")
    request = http_request("blocked.example", "/a?b=1")
    assert request.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: blocked.example\r\n") and request.endswith(b"\r\n\r\n")
