"""The dns probe over TLS and HTTPS, with a control resolver and TLS checks of the answers
(issue 10): real servers on 127.0.0.1 only."""

from __future__ import annotations

import ssl

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits, SpecError
from agent.probes.failures import FAILURES
from tests.probes.conftest import TLSMaterial
from tests.probes.servers import OK_A, dns_server, doh_server, dot_server, http_server, zone_of


async def probe(name: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    spec = parse_spec("dns", name, {"timeout": "2", **options}, limits)
    outcome = await run_probe(spec, limits)
    assert outcome.failure is None or outcome.failure in FAILURES
    return outcome


async def test_dns_over_tls_answers_and_says_so(limits: Limits, tls_material: TLSMaterial) -> None:
    async with dot_server(tls_material.server_context) as port:
        outcome = await probe("ok.test", limits, resolver=f"tls://127.0.0.1:{port}", ca_file=tls_material.ca_file, type="A")
        untrusted = await probe("ok.test", limits, resolver=f"tls://127.0.0.1:{port}", type="A")
        by_name = await probe("ok.test", limits, resolver=f"tls://localhost:{port}", ca_file=tls_material.ca_file, type="A")
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["answers"] == [OK_A]
    assert outcome.data["transport"] == "tls" and outcome.data["resolver"] == f"tls://127.0.0.1:{port}"
    assert untrusted.failure == "tls_cert_invalid", untrusted.failure_detail  # not silently plain
    assert by_name.failure is None and by_name.data["answers"] == [OK_A]


async def test_dns_over_https_answers_and_refuses_what_is_not_a_dns_message(
    limits: Limits, tls_material: TLSMaterial
) -> None:
    async with doh_server(tls_material.server_context) as port:
        outcome = await probe("ok.test", limits, resolver=f"https://localhost:{port}/dns-query",
                              ca_file=tls_material.ca_file, type="A")  # fmt: skip
        portal = await probe("ok.test", limits, resolver=f"https://localhost:{port}/html",
                             ca_file=tls_material.ca_file, type="A")  # fmt: skip
        missing = await probe("ok.test", limits, resolver=f"https://localhost:{port}/none",
                              ca_file=tls_material.ca_file, type="A")  # fmt: skip
        nx = await probe("nx.test", limits, resolver=f"https://localhost:{port}/dns-query",
                         ca_file=tls_material.ca_file, type="A")  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["answers"] == [OK_A] and outcome.data["transport"] == "https"
    assert portal.failure == "http_error" and "text/html" in portal.failure_detail
    assert missing.failure == "http_error" and "status 404" in missing.failure_detail
    assert nx.failure == "dns_nxdomain"


async def test_a_lie_checked_against_a_control_and_tls(limits: Limits, tls_material: TLSMaterial) -> None:
    """The local resolver answers vantage.test with 127.0.0.2 (nothing serves TLS there);
    the control over TLS says 127.0.0.1, where a server holds a valid certificate."""
    lying = zone_of({"vantage.test": "127.0.0.2"})
    honest = zone_of({"vantage.test": "127.0.0.1"})
    async with dns_server(lying) as local, dot_server(tls_material.server_context, honest) as dot, \
            http_server(tls_material.server_context) as web:  # fmt: skip
        lie = await probe("vantage.test", limits, resolver=f"127.0.0.1:{local}", control=f"tls://127.0.0.1:{dot}",
                          ca_file=tls_material.ca_file, tls_port=str(web), type="A")  # fmt: skip
        truth = await probe("vantage.test", limits, resolver=f"tls://127.0.0.1:{dot}", control=f"tls://127.0.0.1:{dot}",
                            ca_file=tls_material.ca_file, tls_port=str(web), type="A")  # fmt: skip
    assert lie.failure is None  # the resolver answered: the analysis judges the answer
    assert lie.data["answers"] == ["127.0.0.2"]
    control = lie.data["control"]
    assert control["answers"] == ["127.0.0.1"] and control["transport"] == "tls" and control["failure"] == ""
    (check,) = lie.data["tls_checks"]
    assert check == {"address": "127.0.0.2", "checked": True, "valid": False, "failure": "connection_refused"}
    # the control's address serves valid TLS for the name: the refused port is evidence
    assert lie.data["tls_reference"] == {"address": "127.0.0.1", "checked": True, "valid": True, "failure": ""}
    assert truth.data["answers"] == truth.data["control"]["answers"] == ["127.0.0.1"]
    assert truth.data["tls_checks"] == []  # confirmed by the control: nothing to check
    assert "tls_reference" not in truth.data


async def test_a_cdn_answer_the_control_did_not_give_passes_its_tls_check(
    limits: Limits, tls_material: TLSMaterial
) -> None:
    local = zone_of({"vantage.test": "127.0.0.1"})
    control = zone_of({"vantage.test": "127.0.0.3"})
    async with dns_server(local) as plain, dns_server(control) as other, http_server(tls_material.server_context) as web:
        outcome = await probe("vantage.test", limits, resolver=f"127.0.0.1:{plain}", control=f"127.0.0.1:{other}",
                              ca_file=tls_material.ca_file, tls_port=str(web), type="A")  # fmt: skip
    assert outcome.data["tls_checks"] == [
        {"address": "127.0.0.1", "checked": True, "valid": True, "failure": ""}
    ]
    # 127.0.0.3 serves nothing: the reference check says so, and it does not matter here
    assert outcome.data["tls_reference"]["failure"] == "connection_refused"


async def test_tls_checks_obey_the_target_policy(tls_material: TLSMaterial, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answered address the policy forbids (a lie pointing inside the agent's network)
    is not connected to: the check says so instead."""
    from agent.probes import dns as dns_probe

    strict = Limits(allow_private_targets=False, ca_dir="/")
    context = ssl.create_default_context(cafile=tls_material.ca_file)

    async def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the check tried to connect: {args}")

    monkeypatch.setattr(dns_probe.asyncio, "open_connection", no_connection)
    check = await dns_probe._tls_check("vantage.test", "10.10.34.35", 443, context, strict, 1.0)
    assert check == {"address": "10.10.34.35", "checked": False, "valid": False, "failure": "target_forbidden"}


async def test_a_doh_resolver_given_as_an_address_obeys_the_target_policy(tls_material: TLSMaterial) -> None:
    """aiohttp never looks an address up, so the policy is checked before the POST: a job
    cannot make the agent POST to its own network through a DoH URL."""
    strict = Limits(allow_private_targets=False, ca_dir="/")
    async with doh_server(tls_material.server_context) as port:
        url = f"https://127.0.0.1:{port}/dns-query"
        as_resolver = await run_probe(parse_spec("dns", "ok.test", {"resolver": url, "timeout": "2"}, strict), strict)
    assert as_resolver.failure == "target_forbidden", as_resolver.failure_detail


async def test_a_doh_answer_in_several_pieces_is_read_whole(limits: Limits, tls_material: TLSMaterial) -> None:
    """60 A records (about 1 KB), written by the server in two parts 50 ms apart."""
    async with doh_server(tls_material.server_context) as port:
        outcome = await probe("big.test", limits, resolver=f"https://localhost:{port}/dns-query-split",
                              ca_file=tls_material.ca_file, type="A")  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    assert len(outcome.data["answers"]) == 60


async def test_a_control_that_cannot_be_reached_is_its_own_failure(limits: Limits) -> None:
    async with dns_server() as port:
        outcome = await probe("ok.test", limits, resolver=f"127.0.0.1:{port}", control="tls://127.0.0.1:1",
                              type="A", check_tls="false")  # fmt: skip
    assert outcome.failure is None and outcome.data["answers"] == [OK_A]
    assert outcome.data["control"]["failure"] == "connection_refused"
    assert "tls_checks" not in outcome.data


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"resolver": "http://1.1.1.1/dns-query"}, "options.resolver", "plain HTTP"),
        ({"resolver": "tls://"}, "options.resolver", ""),
        ({"resolver": "quic://1.1.1.1"}, "options.resolver", "expected IP[:port], tls://"),
        ({"resolver": "dns.example"}, "options.resolver", "expected an IP address"),
        ({"control": "tls://-bad-"}, "options.control", "is not a host name"),
        ({"tls_port": "0"}, "options.tls_port", ""),
        ({"check_tls": "maybe"}, "options.check_tls", ""),
    ],
)
def test_bad_resolver_options_name_the_field(limits: Limits, options: dict[str, str], field: str, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec("dns", "ok.test", options, limits)
    assert caught.value.field == field and says in str(caught.value)
