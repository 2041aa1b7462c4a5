"""The trigger checks of the throughput and tls kinds (``-o trigger_check=...``) against
real local servers that throttle or refuse by the SNI they receive, or by their address,
and what the analysis' vote (``coordinator/analysis/trigger.py``) makes of each result.

Two servers on 127.0.0.1 stand for the target and the neutral server the operator
controls; ``neutral.test`` resolves to the second through the agent's host overrides.
A server "keyed on the SNI" slows (or refuses) every connection that named
``video.test``, whichever server it reached, as an on-path DPI box would; one "keyed on
the address" is slow for every name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from agent.probes import parse_spec, run_probe
from agent.probes.base import TASK_BUDGET_S, Limits, ProbeOutcome, SpecError
from coordinator.analysis import trigger
from tests.probes.servers import serve_app

SLOW_NAME = "video.test"
SLOW_RATE = 100_000  # bytes/s
BODY = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.LeafCert, str]:
    ca = trustme.CA()
    cert = ca.issue_cert(SLOW_NAME, "neutral.test", "127.0.0.1")
    ca_file = Path(tmp_path_factory.mktemp("trigger")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return cert, str(ca_file)


def _context(cert: trustme.LeafCert, *, refuse_name: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])

    def remember(ssl_object: object, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        ssl_object.test_sni = name or ""  # type: ignore[attr-defined]
        if refuse_name is not None and name == refuse_name:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE  # a censor's refusal of the name
        return None

    context.sni_callback = remember
    return context


def _app(*, slow_names: frozenset[str] = frozenset(), slow_all: bool = False) -> web.Application:
    async def big(request: web.Request) -> web.StreamResponse:
        sslobj = request.transport.get_extra_info("ssl_object") if request.transport else None
        slow = slow_all or getattr(sslobj, "test_sni", "") in slow_names
        response = web.StreamResponse()
        response.content_length = BODY
        await response.prepare(request)
        block = b"x" * 16384
        try:
            for _ in range(BODY // len(block)):
                await response.write(block)
                if slow:
                    await asyncio.sleep(len(block) / SLOW_RATE)
        except ConnectionError:
            return response  # the probe stopped at its max_seconds
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/big", big)
    return app


def server(app: web.Application | None, context: ssl.SSLContext) -> contextlib.AbstractAsyncContextManager[int]:
    """``app`` (a fast /big by default) over TLS on 127.0.0.1; yields the port."""
    return serve_app(app or _app(), context)


def _limits(limits: Limits) -> Limits:
    return replace(limits, host_overrides={"neutral.test": "127.0.0.1", SLOW_NAME: "127.0.0.1"})


async def _throughput(limits: Limits, ca_file: str, port: int, neutral_port: int) -> ProbeOutcome:
    options = {
        "sni": SLOW_NAME, "ca_file": ca_file, "max_seconds": "1", "timeout": "3",
        "trigger_check": f"https://neutral.test:{neutral_port}/big",
    }  # fmt: skip
    spec = parse_spec("throughput", f"https://127.0.0.1:{port}/big", options, limits)
    return await run_probe(spec, limits)


def _vote(outcome: ProbeOutcome) -> trigger.Trigger | None:
    bps = outcome.data.get("sustained_bps") or outcome.data.get("bytes_per_second")
    return trigger.vote(
        trigger.Checks.of(outcome.data), failure=outcome.failure, failed=outcome.failure is not None, bps=bps
    )


def _checks(outcome: ProbeOutcome) -> dict[str, dict[str, Any]]:
    return {c["swap"]: c for c in outcome.data["trigger_checks"]}


async def test_a_throttle_keyed_on_the_name_follows_the_name(
    limits: Limits, material: tuple[trustme.LeafCert, str]
) -> None:
    cert, ca_file = material
    limits = _limits(limits)
    keyed = frozenset({SLOW_NAME})
    async with server(_app(slow_names=keyed), _context(cert)) as port, \
            server(_app(slow_names=keyed), _context(cert)) as neutral:  # fmt: skip
        outcome = await _throughput(limits, ca_file, port, neutral)
    assert outcome.failure is None, outcome.failure_detail
    checks = _checks(outcome)
    # the target's own address under the neutral name; the neutral server under the target's
    assert checks["sni"]["address"] == outcome.data["address"] == "127.0.0.1"
    assert checks["sni"]["sni"] == "neutral.test" and checks["sni"]["url"] == outcome.data["url"]
    assert checks["address"]["sni"] == SLOW_NAME
    assert checks["address"]["url"] == f"https://neutral.test:{neutral}/big"
    assert checks["sni"]["failure"] == checks["address"]["failure"] == ""
    target = outcome.data["bytes_per_second"]
    assert target < 2 * SLOW_RATE
    assert checks["sni"]["bytes_per_second"] > 10 * target  # the name's swap escapes
    assert checks["address"]["bytes_per_second"] < 2 * SLOW_RATE  # the name is slow there too
    assert _vote(outcome) == "sni"


async def test_a_throttle_keyed_on_the_address_stays_with_the_address(
    limits: Limits, material: tuple[trustme.LeafCert, str]
) -> None:
    cert, ca_file = material
    limits = _limits(limits)
    async with server(_app(slow_all=True), _context(cert)) as port, \
            server(_app(), _context(cert)) as neutral:  # fmt: skip
        outcome = await _throughput(limits, ca_file, port, neutral)
    assert outcome.failure is None, outcome.failure_detail
    checks = _checks(outcome)
    assert checks["sni"]["bytes_per_second"] < 2 * SLOW_RATE  # another name, the same address
    assert checks["address"]["bytes_per_second"] > 10 * outcome.data["bytes_per_second"]
    assert _vote(outcome) == "address"


async def test_nothing_throttled_votes_nothing(limits: Limits, material: tuple[trustme.LeafCert, str]) -> None:
    cert, ca_file = material
    limits = _limits(limits)
    async with server(_app(), _context(cert)) as port, server(_app(), _context(cert)) as neutral:
        outcome = await _throughput(limits, ca_file, port, neutral)
    assert outcome.failure is None, outcome.failure_detail
    assert len(outcome.data["trigger_checks"]) == 2
    assert _vote(outcome) is None  # neither swap escaped anything: no information


async def _tls(limits: Limits, ca_file: str, port: int, neutral_port: int) -> ProbeOutcome:
    options = {"sni": SLOW_NAME, "ca_file": ca_file, "timeout": "3",
               "trigger_check": f"neutral.test:{neutral_port}"}  # fmt: skip
    return await run_probe(parse_spec("tls", f"127.0.0.1:{port}", options, limits), limits)


async def test_tls_a_handshake_refused_by_name(limits: Limits, material: tuple[trustme.LeafCert, str]) -> None:
    cert, ca_file = material
    limits = _limits(limits)
    refusing = _context(cert, refuse_name=SLOW_NAME)
    async with server(None, refusing) as port, server(None, _context(cert, refuse_name=SLOW_NAME)) as neutral:
        outcome = await _tls(limits, ca_file, port, neutral)
    assert outcome.failure is not None  # the target's own handshake was refused
    checks = _checks(outcome)
    assert checks["sni"]["failure"] == "" and checks["sni"]["address"] == "127.0.0.1"
    assert checks["sni"]["handshake_s"] is not None
    assert checks["address"]["failure"] == outcome.failure  # the name refused there too
    assert _vote(outcome) == "sni"


async def test_tls_a_handshake_refused_by_address(limits: Limits, material: tuple[trustme.LeafCert, str]) -> None:
    cert, ca_file = material
    limits = _limits(limits)
    async with server(None, _context(cert)) as neutral:
        outcome = await _tls(limits, ca_file, 1, neutral)  # port 1: refused whatever the name
    assert outcome.failure == "connection_refused"
    checks = _checks(outcome)
    assert checks["sni"]["failure"] == "connection_refused"
    assert checks["address"]["failure"] == "" and checks["address"]["sni"] == SLOW_NAME
    assert _vote(outcome) == "address"


@pytest.mark.parametrize(
    ("kind", "target", "options", "reason"),
    [
        ("throughput", "http://a.test/x", {"trigger_check": "https://b.test/x"}, "must be https URLs"),
        ("throughput", "https://a.test/x", {"trigger_check": "http://b.test/x"}, "must be https URLs"),
        ("throughput", "https://a.test/x", {"trigger_check": "https://a.test/y"}, "the target itself"),
        ("throughput", "https://a.test/x", {"trigger_check": "https://A.test./y"}, "the target itself"),
        # the check on the target's own host, under another name than the target's SNI
        ("throughput", "https://a.test/x", {"sni": "b.test", "trigger_check": "https://a.test/y"},
         "the target itself"),
        ("tls", "10.0.0.1:443", {"sni": "b.test", "trigger_check": "10.0.0.1:8443"}, "the target itself"),
        ("throughput", "https://10.0.0.1/x", {"trigger_check": "https://b.test/x"}, "no server name"),
        ("throughput", "https://a.test/x", {"trigger_check": "ftp://b"}, "http:// or https://"),
        ("tls", "10.0.0.1:443", {"trigger_check": "b.test"}, "no server name"),
        ("tls", "a.test", {"trigger_check": "b.test:99999"}, "port"),
    ],
)
def test_bad_trigger_checks_are_refused(kind: str, target: str, options: dict[str, str], reason: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(kind, target, options, Limits())
    assert err.value.field == "options.trigger_check"
    assert reason in err.value.reason


def test_the_neutral_name_is_the_checks_host_or_none() -> None:
    spec = parse_spec("throughput", "https://a.test/x", {"trigger_check": "https://B.test/y"}, Limits())
    assert (spec.trigger_check, spec.trigger_sni) == ("https://b.test/y", "b.test")
    spec = parse_spec("tls", "a.test", {"trigger_check": "192.0.2.7:8443"}, Limits())
    assert (spec.trigger_host, spec.trigger_port, spec.trigger_sni) == ("192.0.2.7", 8443, "")


async def test_the_checks_fit_into_what_is_left_of_the_tasks_time(
    limits: Limits, material: tuple[trustme.LeafCert, str]
) -> None:
    """A task with 5 s left when its probe starts: the throttled target takes its
    max_seconds (1.5), the first check half of what is left after a 1-s margin (1.25 s),
    the second what remains (1.25 s); with 2.8 s there is no time for either, and they are
    reported as not made (an agent error: no evidence), never at the main result's cost."""
    cert, ca_file = material
    limits = _limits(limits)
    options = {"sni": SLOW_NAME, "ca_file": ca_file, "max_seconds": "1.5", "timeout": "3"}
    async with server(_app(slow_all=True), _context(cert)) as port, \
            server(_app(slow_all=True), _context(cert)) as neutral:  # fmt: skip
        options["trigger_check"] = f"https://neutral.test:{neutral}/big"
        spec = parse_spec("throughput", f"https://127.0.0.1:{port}/big", options, limits)
        for budget, made in ((5.0, True), (2.8, False)):
            token = TASK_BUDGET_S.set(budget)
            try:
                outcome = await run_probe(spec, limits)
            finally:
                TASK_BUDGET_S.reset(token)
            assert outcome.failure is None, outcome.failure_detail
            assert outcome.duration_s < budget - 0.5, (budget, outcome.duration_s)
            failures = [c["failure"] for c in outcome.data["trigger_checks"]]
            if made:
                assert failures == ["", ""], outcome.data["trigger_checks"]
            else:
                assert failures == ["agent_deadline_missed"] * 2, outcome.data["trigger_checks"]
                assert trigger.Checks.of(outcome.data) is None
