"""DNS manipulation (issue 10): answers that are a bogon, or that share nothing with the
reference and fail TLS for the name, are a failure; a CDN's other addresses are not."""

from __future__ import annotations

from coordinator.analysis import Analyzer, Measurement
from coordinator.analysis.dnslie import Answers, Reference, judge, lie, majority
from coordinator.model import AgentInfo, ProbeResultData, TaskResultData
from coordinator.observe import measurement_from_result

NAME = "twitter.com"
REAL = ("104.244.42.1",)
CDN_OTHER = ("104.244.42.129",)  # same /24: another of the site's addresses
ELSEWHERE = ("151.101.1.140",)  # another network altogether


def _answers(addresses: tuple[str, ...], *, checked: int = 0, valid: int = 0,
             control: tuple[str, ...] | None = None, bogons: tuple[str, ...] = (),
             failures: tuple[str, ...] | None = None, reference_valid: bool | None = None) -> Answers:  # fmt: skip
    if failures is None:
        failures = ("tls_cert_invalid",) * (checked - valid)
    return Answers(addresses=addresses, bogons=bogons, control=control, tls_checked=checked, tls_valid=valid,
                   tls_failures=failures, reference_valid=reference_valid)  # fmt: skip


def _ref(addresses: tuple[str, ...], bogons: bool = False) -> Reference:
    return Reference.of(addresses, bogons)


def test_a_bogon_where_the_reference_has_none_is_a_lie() -> None:
    assert lie(_answers(("10.10.34.35",), bogons=("10.10.34.35",)), _ref(REAL)).startswith("answered 10.10.34.35, a bogon")
    # where the reference itself answers inside addresses (a lab, an intranet): not by itself
    assert lie(_answers(("10.10.34.35",), bogons=("10.10.34.35",)), _ref(("10.0.0.1",), True)) == ""


def test_no_overlap_is_a_lie_only_when_tls_fails_for_the_name() -> None:
    assert lie(_answers(ELSEWHERE, checked=1, valid=0), _ref(REAL)).startswith("answered 151.101.1.140")
    assert lie(_answers(ELSEWHERE, checked=1, valid=1), _ref(REAL)) == ""  # a CDN: TLS is valid
    assert lie(_answers(ELSEWHERE), _ref(REAL)) == ""  # TLS not checked: no evidence
    assert lie(_answers(CDN_OTHER, checked=1, valid=0), _ref(REAL)) == ""  # same network
    assert lie(_answers(REAL + ELSEWHERE, checked=1, valid=0), _ref(REAL)) == ""  # overlaps
    assert lie(_answers(ELSEWHERE, checked=1), _ref(())) == ""  # nothing to compare with


def test_a_refused_port_counts_only_when_the_name_serves_valid_tls_elsewhere() -> None:
    """A name that serves no HTTPS at all refuses port 443 at every address, lie or not."""
    refused = _answers(ELSEWHERE, checked=1, failures=("connection_refused",))
    assert lie(refused, _ref(REAL)) == ""
    served = _answers(ELSEWHERE, checked=1, failures=("connection_refused",), reference_valid=True)
    assert lie(served, _ref(REAL)) != ""
    assert lie(_answers(ELSEWHERE, checked=1, failures=("generic_timeout",), reference_valid=False), _ref(REAL)) == ""


def test_the_majority_spans_countries_and_more_than_half_the_groups() -> None:
    countries = {"ru": "RU", "de": "DE", "us": "US"}
    groups = {"ru": [_answers(ELSEWHERE)], "de": [_answers(REAL)], "us": [_answers(CDN_OTHER)]}
    assert majority(groups, countries) == {"de", "us"}
    # a national lie told to most groups (ASNs of one country) is no majority
    one_country = {f"as{i}": [_answers(("198.51.100.7",))] for i in range(4)} | {"de": [_answers(REAL)]}
    assert majority(one_country, {f"as{i}": "RU" for i in range(4)} | {"de": "DE"}) == set()
    assert majority({"a": [_answers(REAL)], "b": [_answers(ELSEWHERE)]}, {}) == set()


def test_judge_uses_the_tasks_own_control() -> None:
    assert judge(_answers(ELSEWHERE, checked=1, control=REAL)) != ""
    assert judge(_answers(ELSEWHERE, checked=1, control=None)) == ""
    assert judge(None) == ""


def test_answers_of_untrusted_data_keep_addresses_only_and_bound_them() -> None:
    found = Answers.of({
        "answers": ["cname.example", "1.2.3.4", "1.2.3.4", "::ffff:1.2.3.5", 7] + [f"9.9.{i // 250}.{i % 250}" for i in range(500)],
        "bogon_answers": ["10.0.0.1", "1.2.3.4"],
        "control": {"failure": "", "answers": ["5.6.7.8"]},
        "tls_checks": [{"checked": True, "valid": False}, {"checked": False, "valid": False}, "x"],
    })  # fmt: skip
    assert found is not None
    assert found.addresses[:2] == ("1.2.3.4", "::ffff:102:305") and len(found.addresses) == 32
    assert found.bogons == ("1.2.3.4",)  # only a bogon that is an answer
    assert found.control == ("5.6.7.8",) and (found.tls_checked, found.tls_valid) == (1, 0)
    assert Answers.of({"answers": ["cname.example"]}) is None
    failed_control = Answers.of({"answers": ["1.2.3.4"], "control": {"failure": "dns_timeout", "answers": []}})
    assert failed_control is not None and failed_control.control is None


def _m(at: float, group: str, agent: str, answers: Answers) -> Measurement:
    return Measurement(at=at, group=group, agent_id=agent, target=NAME, kind="dns", failure=None,
                       duration_s=0.05, answers=answers)  # fmt: skip


def _rounds(a: Analyzer, by_group: dict[str, Answers], rounds: int = 2) -> dict[str, tuple[str, str]]:
    for r in range(rounds):
        for group, answers in by_group.items():
            for i in (1, 2):
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", answers))
    return {v.group: (v.verdict, v.failure) for v in a.evaluate(rounds * 10.0).regions}


def test_a_region_whose_resolver_lies_is_blocked_by_dns_manipulation() -> None:
    v = _rounds(Analyzer(), {"ru": _answers(ELSEWHERE, checked=1), "de": _answers(REAL), "us": _answers(CDN_OTHER)})
    assert v == {"ru": ("blocked", "dns_manipulation"), "de": ("ok", ""), "us": ("ok", "")}


def test_cdn_answers_that_differ_everywhere_are_not_a_lie() -> None:
    """Each region gets another network's address, as a CDN with regional points of
    presence answers; every TLS check is valid."""
    v = _rounds(Analyzer(), {
        "ru": _answers(("95.100.1.1",), checked=1, valid=1),
        "de": _answers(("23.40.1.1",), checked=1, valid=1),
        "us": _answers(ELSEWHERE, checked=1, valid=1),
    })  # fmt: skip
    assert {verdict for verdict, _ in v.values()} == {"ok"}


def test_two_groups_behind_one_censor_do_not_hide_each_other() -> None:
    """ru and by both get the lie; de, us and br the truth: both liars are marked."""
    lying = _answers(("10.10.34.35",), bogons=("10.10.34.35",))
    v = _rounds(Analyzer(), {"ru": lying, "by": lying, "de": _answers(REAL), "us": _answers(CDN_OTHER), "br": _answers(REAL)})
    assert v["ru"] == ("blocked", "dns_manipulation") and v["by"] == ("blocked", "dns_manipulation")
    assert {v[g] for g in ("de", "us", "br")} == {("ok", "")}


def test_a_lying_agent_inside_a_majority_group_lends_its_lie_no_weight() -> None:
    """ru's two agents get the lie and the truth (two ISPs); by gets the lie only; de, us
    and br the truth. ru's lie is corroborated by no other group of the majority, so it
    is no reference: by is blocked (and ru's lying agent with it)."""
    lying = _answers(("10.10.34.35",), bogons=("10.10.34.35",))
    a = Analyzer()
    for r in range(2):
        for group, per_agent in {"ru": (lying, _answers(REAL)), "by": (lying, lying), "de": (_answers(REAL),) * 2,
                                 "us": (_answers(CDN_OTHER),) * 2, "br": (_answers(REAL),) * 2}.items():  # fmt: skip
            for i, answers in enumerate(per_agent, start=1):
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", answers))
    v = {x.group: (x.verdict, x.failure) for x in a.evaluate(20.0).regions}
    assert v["by"] == ("blocked", "dns_manipulation")
    assert {v[g] for g in ("de", "us", "br")} == {("ok", "")}


def test_a_control_address_without_valid_tls_makes_no_lie() -> None:
    """An HTTP-only name on shared hosting: the control's own address fails TLS for the
    name too, so a failed check says nothing."""
    assert lie(_answers(ELSEWHERE, checked=1, reference_valid=False), _ref(REAL)) == ""


def test_two_regions_are_not_enough_to_call_a_lie_without_a_control() -> None:
    v = _rounds(Analyzer(), {"ru": _answers(ELSEWHERE, checked=1), "de": _answers(REAL)})
    assert v["ru"][0] != "blocked"


def _dns_result(data: dict[str, object]) -> TaskResultData:
    return TaskResultData(
        task_id="t1", job_id="j1", agent_id="ru-1", started_at=4.0, finished_at=5.0,
        result=ProbeResultData(kind="dns", target=NAME, failure="", failure_detail="", duration_s=0.1, data=data),
    )  # fmt: skip


def test_a_stored_result_that_lies_against_its_control_is_marked_at_once() -> None:
    """Through the wire and the ingest path: typed DnsData in, a marked measurement out."""
    from coordinator.convert import probe_result_from_pb
    from protos.results import probe_result_to_pb

    sent = {
        "query": NAME, "answers": ["198.51.100.7"], "bogon_answers": [],
        "control": {"resolver": "tls://1.1.1.1:853", "transport": "tls", "answers": list(REAL), "failure": ""},
        "tls_checks": [{"address": "198.51.100.7", "checked": True, "valid": False, "failure": "connection_refused"}],
        "tls_reference": {"address": REAL[0], "checked": True, "valid": True, "failure": ""},
    }  # fmt: skip
    wire = probe_result_to_pb(kind="dns", target=NAME, failure="", failure_detail="", duration_s=0.1, data=sent)
    result = TaskResultData(task_id="t1", job_id="j1", agent_id="ru-1", started_at=4.0, finished_at=5.0,
                            result=probe_result_from_pb(wire))  # fmt: skip
    agent = AgentInfo(agent_id="ru-1", region="ru", country="RU", asn=12389)
    m = measurement_from_result(result, agent, NAME, "region")
    assert m.dns_manipulation and m.failed and m.failure_class == "dns_manipulation"
    honest = measurement_from_result(_dns_result({**sent, "answers": list(REAL)}), agent, NAME, "region")
    assert not honest.dns_manipulation and honest.answers is not None
