"""Where a block sits: the agents' locate data read defensively, and blocked verdicts
carrying the location most agents report."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coordinator.analysis import Analyzer
from coordinator.analysis.located import Located, where
from tests.analysis.helpers import reach

HOP = Located(at="path", ttl=2, hop="198.18.0.6", asn=64502)


def test_an_agents_location_is_read() -> None:
    data = {"locate": {"at": "path", "censor_ttl": 2, "censor_hop": "198.18.0.6", "censor_asn": 64502}}
    assert Located.of(data) == HOP
    assert Located.of({"locate": {"at": "destination", "censor_ttl": 4, "censor_hop": "", "censor_asn": None}}) == \
        Located(at="destination", ttl=4, hop="", asn=0)
    # an IPv6 hop comes out normalised
    v6 = Located.of({"locate": {"at": "path", "censor_ttl": 3, "censor_hop": "2001:DB8:0::1"}})
    assert v6 is not None and v6.hop == "2001:db8::1"


@pytest.mark.parametrize(
    "locate",
    [
        None,
        "path",
        {"at": "", "censor_ttl": None},  # nothing answered
        {"at": "middle", "censor_ttl": 2},
        {"at": "path", "censor_ttl": 0},
        {"at": "path", "censor_ttl": 256},
        {"at": "path", "censor_ttl": True},
        {"at": "path", "censor_ttl": 2, "censor_hop": "router.example"},  # not an address
        {"at": "path", "censor_ttl": 2, "censor_hop": 'x"} evil{'},
        # a scope id parses as part of an IPv6 address and could carry anything
        {"at": "path", "censor_ttl": 2, "censor_hop": "fe80::1%\x1b[31m\nfake"},
        {"at": "path", "censor_ttl": 2, "censor_hop": "fe80::1%eth0"},
        {"at": "path", "censor_ttl": 2, "censor_hop": "1" * 100_000},
    ],
)
def test_anything_else_is_no_location(locate: object) -> None:
    assert Located.of({"locate": locate}) is None


def test_a_bad_asn_is_dropped_not_the_location() -> None:
    got = Located.of({"locate": {"at": "path", "censor_ttl": 2, "censor_hop": "10.0.0.1", "censor_asn": 2**33}})
    assert got == Located(at="path", ttl=2, hop="10.0.0.1", asn=0)


def test_each_agent_votes_once_with_its_latest() -> None:
    other = replace(HOP, ttl=3, hop="198.18.0.10")
    # a-1 moved from hop 3 to hop 2; a-2 and a-3 say hop 2; a-4 says hop 3
    votes = [("a-1", 1.0, other), ("a-1", 2.0, HOP), ("a-2", 1.0, HOP), ("a-3", 1.0, HOP), ("a-4", 1.0, other)]
    assert where(votes) == HOP
    # a tie goes to the nearer TTL
    assert where([("a", 1.0, other), ("b", 1.0, HOP)]) == HOP
    assert where([]) is None


def test_a_blocked_verdict_carries_where_the_block_sits() -> None:
    a = Analyzer()
    for r in range(2):
        for g in ("ru", "de", "us"):
            for i in range(2):
                m = reach(r * 10.0 + i, g, f"{g}-{i}", "facebook", "connection_reset" if g == "ru" else None)
                a.add(replace(m, located=HOP) if g == "ru" else m)
    snap = a.evaluate(15.0)
    verdicts = {v.group: v for v in snap.regions}
    assert (verdicts["ru"].verdict, verdicts["ru"].located) == ("blocked", HOP)
    assert verdicts["de"].verdict == "ok" and verdicts["de"].located is None


def test_only_located_kinds_carry_a_location() -> None:
    with pytest.raises(ValueError, match=r"Measurement\.located"):
        replace(reach(1.0, "ru", "ru-0", "t", kind="dns"), located=HOP)
