"""What a throttle or a block keys on (issue 10, coordinator/analysis/trigger.py): the
votes of single measurements, their majority, and the trigger the analyzer gives the
verdicts: only to throttled and blocked ones, ``dns`` for DNS blocks and the URLs on a
name lied about."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coordinator.analysis import Analyzer, Measurement
from coordinator.analysis.trigger import Check, Checks, decide, escaped, vote

TARGET = "https://video.example/big.bin"
LINE = 2_500_000.0
SLOW = 16_000.0


def _checks(sni: float | None, address: float | None) -> Checks:
    """Checks with these rates; None: that swap failed."""
    return Checks(
        sni=Check(ok=sni is not None, bps=sni), address=Check(ok=address is not None, bps=address)
    )


def _m(at: float, group: str, agent: str, bps: float, checks: Checks | None = None, *,
       target: str = TARGET, kind: str = "throughput", failure: str | None = None,
       dns_manipulation: bool = False) -> Measurement:  # fmt: skip
    return Measurement(
        at=at, group=group, agent_id=agent, target=target, kind=kind, failure=failure,
        duration_s=2.0, throughput_bps=bps if kind == "throughput" and failure is None else None,
        control_bps=LINE if kind == "throughput" else None, trigger_checks=checks,
        dns_manipulation=dns_manipulation, country=group.upper(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("check", "failed", "bps", "expected"),
    [
        (None, False, SLOW, None),
        (Check(ok=False), False, SLOW, False),  # the swap failed: it escaped nothing
        (Check(ok=True), True, None, True),  # it worked where the target failed
        (Check(ok=True, bps=SLOW * 2.5), False, SLOW, True),  # the factor itself escapes
        (Check(ok=True, bps=SLOW * 2.49), False, SLOW, None),  # in between: nothing said
        (Check(ok=True, bps=SLOW * 1.6), False, SLOW, None),
        (Check(ok=True, bps=SLOW * 1.59), False, SLOW, False),
        (Check(ok=True, bps=None), False, SLOW, None),  # a handshake has no rate
        (Check(ok=True, bps=LINE), False, None, None),
    ],
)
def test_escaped(check: Check | None, failed: bool, bps: float | None, expected: bool | None) -> None:
    assert escaped(check, failed=failed, bps=bps) is expected


@pytest.mark.parametrize(
    ("checks", "failure", "bps", "expected"),
    [
        (_checks(LINE, SLOW), None, SLOW, "sni"),
        (_checks(SLOW, LINE), None, SLOW, "address"),
        (_checks(LINE, LINE), None, SLOW, "unknown"),  # both escape: the pair, say
        (_checks(LINE, SLOW * 2), None, SLOW, "unknown"),  # one escaped, the other said nothing
        (_checks(SLOW, SLOW), None, SLOW, None),  # nothing escaped: no information
        (_checks(LINE, LINE), None, LINE, None),  # not throttled at all
        (_checks(LINE, None), "connection_reset", None, "sni"),  # a reset keyed on the name
        (_checks(None, LINE), "connection_reset", None, "address"),
        (_checks(None, None), "connection_reset", None, None),
        (None, None, SLOW, None),
        (None, "dns_nxdomain", None, None),
        (_checks(None, LINE), "dns_nxdomain", None, None),  # no address to swap: nothing said
    ],
)
def test_vote(checks: Checks | None, failure: str | None, bps: float | None, expected: str | None) -> None:
    assert vote(checks, failure=failure, failed=failure is not None, bps=bps) == expected


def test_a_lie_votes_dns() -> None:
    assert vote(None, failure=None, failed=True, bps=None, dns_manipulation=True) == "dns"


def test_decide_needs_a_strict_majority_of_two_agents() -> None:
    assert decide({"a": ["sni"]}) == "unknown"  # one round, one agent: not enough
    assert decide({"a": ["sni", "sni", "sni"]}) == "unknown"  # one agent alone, however many rounds
    assert decide({"a": ["sni"], "b": ["sni"]}) == "sni"
    assert decide({"a": ["sni"], "b": ["address"]}) == "unknown"
    assert decide({"a": ["address"], "b": ["address"], "c": ["sni"]}) == "address"
    assert decide({"a": ["sni"], "b": ["sni"], "c": ["unknown"], "d": ["unknown"]}) == "unknown"
    # each agent's own majority is its vote; abstentions do not count
    assert decide({"a": [None, "sni", "sni", "address"], "b": [None, None, "sni"], "c": [None]}) == "sni"
    assert decide({"a": ["sni", "address"], "b": ["sni"]}) == "unknown"  # a's tie is unknown
    assert decide({}) == "unknown"


def test_checks_of_reads_the_first_of_each_swap_and_skips_garbage() -> None:
    data = {"trigger_checks": [
        "junk", {"swap": "sni", "failure": "", "sustained_bps": 5.0, "bytes_per_second": 9.0},
        {"swap": "sni", "failure": "", "sustained_bps": 1e9},
        {"swap": "address", "failure": "connection_reset", "bytes_per_second": 7.0},
    ]}  # fmt: skip
    assert Checks.of(data) == Checks(sni=Check(ok=True, bps=5.0), address=Check(ok=False))
    # only the first few entries are read: a result carries two
    assert Checks.of({"trigger_checks": [{"swap": "other"}] * 4 + data["trigger_checks"]}) is None
    assert Checks.of({"trigger_checks": [{"swap": "sni", "bytes_per_second": float("nan")}]}) == Checks(
        sni=Check(ok=True, bps=None)
    )
    # a check the agent had no time for is no evidence: as if it were not there
    skipped = {"swap": "address", "failure": "agent_deadline_missed"}
    assert Checks.of({"trigger_checks": [skipped, {"swap": "sni", "failure": ""}]}) == Checks(sni=Check(ok=True))
    # nor is one the agent's policy forbade (a neutral server on a private address, say)
    forbidden = {"swap": "sni", "failure": "target_forbidden"}
    assert Checks.of({"trigger_checks": [forbidden, skipped]}) is None
    assert Checks.of({"trigger_checks": []}) is None
    assert Checks.of({"trigger_checks": "x"}) is None
    assert Checks.of({}) is None


def _rounds(a: Analyzer, rates: dict[str, tuple[float, Checks | None]], rounds: int = 3) -> None:
    for r in range(rounds):
        for group, (bps, checks) in rates.items():
            for i in (1, 2):
                jitter = 1 + 0.02 * ((r + i) % 3)
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", bps * jitter, checks))


def _verdicts(a: Analyzer, now: float = 30.0) -> dict[tuple[str, str], object]:
    return {(v.group, v.target): v for v in a.evaluate(now).regions}


def test_the_analyzer_names_the_trigger_of_a_throttle_and_only_there() -> None:
    a = Analyzer()
    _rounds(a, {
        "ru": (SLOW, _checks(LINE, SLOW)),  # an SNI-keyed throttle
        "by": (SLOW, _checks(SLOW, LINE)),  # an address-keyed one
        "kz": (SLOW, None),  # throttled, no checks
        "de": (LINE, _checks(LINE, LINE)),
        "us": (LINE, _checks(LINE, LINE)),
    })  # fmt: skip
    v = _verdicts(a)
    assert [v[(g, TARGET)].verdict for g in ("ru", "by", "kz", "de", "us")] == [  # type: ignore[attr-defined]
        "throttled", "throttled", "throttled", "ok", "ok"]  # fmt: skip
    assert v[("ru", TARGET)].trigger == "sni"  # type: ignore[attr-defined]
    assert v[("by", TARGET)].trigger == "address"  # type: ignore[attr-defined]
    assert v[("kz", TARGET)].trigger == "unknown"  # type: ignore[attr-defined]
    assert v[("de", TARGET)].trigger == v[("us", TARGET)].trigger == ""  # type: ignore[attr-defined]


def test_a_congested_region_escapes_nothing_and_is_not_throttled() -> None:
    """The whole line slow: the target, the control and both checks alike."""
    a = Analyzer()
    for r in range(3):
        for group, line in (("br", 300_000.0), ("de", LINE), ("us", LINE)):
            for i in (1, 2):
                m = _m(r * 10.0 + i, group, f"{group}-{i}", line, _checks(line, line))
                a.add(replace(m, control_bps=line))
    v = _verdicts(a)
    assert v[("br", TARGET)].verdict == "ok" and v[("br", TARGET)].trigger == ""  # type: ignore[attr-defined]


def test_a_dns_block_and_the_urls_on_its_name_say_dns() -> None:
    a = Analyzer()
    url = "https://social.example/"
    for r in range(3):
        for group in ("de", "ru", "us"):
            for i in (1, 2):
                lied = group == "de"
                at = r * 10.0 + i
                a.add(_m(at, group, f"{group}-{i}", 0, kind="dns", target="social.example",
                         dns_manipulation=lied))  # fmt: skip
                # the fetch went to the lie's address and was reset there
                a.add(_m(at, group, f"{group}-{i}", LINE, target=url,
                         failure="connection_reset" if lied else None,
                         checks=_checks(None, None) if lied else None))  # fmt: skip
    v = _verdicts(a)
    assert v[("de", "social.example")].verdict == "blocked"  # type: ignore[attr-defined]
    assert v[("de", "social.example")].failure == "dns_manipulation"  # type: ignore[attr-defined]
    assert v[("de", "social.example")].trigger == "dns"  # type: ignore[attr-defined]
    assert v[("de", url)].verdict == "blocked" and v[("de", url)].trigger == "dns"  # type: ignore[attr-defined]
    assert v[("ru", url)].trigger == "" and v[("ru", "social.example")].trigger == ""  # type: ignore[attr-defined]


def test_a_measurement_of_another_kind_cannot_carry_checks() -> None:
    with pytest.raises(ValueError, match="trigger_checks"):
        _m(0.0, "ru", "ru-1", 1.0, _checks(1.0, 1.0), kind="http")


def test_one_agent_alone_names_no_trigger() -> None:
    """Only ru-1 runs the checks (ru-2's jobs carry none): three rounds of its votes are
    one agent's word, and the verdict's trigger stays unknown."""
    a = Analyzer()
    for r in range(3):
        for group, bps in (("ru", SLOW), ("de", LINE), ("us", LINE)):
            for i in (1, 2):
                checks = _checks(LINE, SLOW) if (group, i) == ("ru", 1) else None
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", bps, checks))
    ru = _verdicts(a)[("ru", TARGET)]
    assert ru.verdict == "throttled" and ru.trigger == "unknown", ru  # type: ignore[attr-defined]


def test_dns_failures_among_a_throttles_samples_do_not_make_it_dns() -> None:
    """A throttled ru, no trigger checks anywhere, whose agents saw one round of resolver
    timeouts: the timeouts are no lie and no swap, so the trigger stays unknown."""
    a = Analyzer()
    for r in range(4):
        for group, bps in (("ru", SLOW), ("de", LINE), ("us", LINE)):
            for i in (1, 2):
                failure = "dns_timeout" if (group, r) == ("ru", 3) else None
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", bps, failure=failure))
    ru = _verdicts(a, 40.0)[("ru", TARGET)]
    assert ru.verdict == "throttled" and ru.trigger == "unknown", ru  # type: ignore[attr-defined]


def test_uploads_do_not_vote_on_a_download_throttle() -> None:
    """ru's downloads are throttled with no checks; its uploads (not throttled) carry
    checks whose swaps happen to escape: they are about another series and say nothing
    of the download's trigger."""
    a = Analyzer()
    for r in range(3):
        for group in ("ru", "de", "us"):
            for i in (1, 2):
                at = r * 10.0 + i
                a.add(_m(at, group, f"{group}-{i}", SLOW if group == "ru" else LINE))
                up = _m(at, group, f"{group}-{i}", LINE / 3, _checks(LINE, LINE / 3) if group == "ru" else None)
                a.add(replace(up, direction="upload"))
    ru = _verdicts(a)[("ru", TARGET)]
    assert ru.verdict == "throttled" and ru.direction == "download", ru  # type: ignore[attr-defined]
    assert ru.trigger == "unknown", ru  # type: ignore[attr-defined]
