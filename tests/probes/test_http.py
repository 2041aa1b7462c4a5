from __future__ import annotations

import asyncio
import hashlib

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits
from tests.probes.conftest import TLSMaterial
from tests.probes.servers import (
    BLOCK_PAGE,
    ISP_PAGE,
    closed_port,
    http_server,
    read_request,
    reset_after_request,
    silent_listener,
    tcp_server,
)


async def probe(url: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    return await run_probe(parse_spec("http", url, {"timeout": "1", **options}, limits), limits)


async def test_get_reports_status_timings_and_digest(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/ok", limits)
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["status"] == 200
    assert data["body_length"] == 5
    assert data["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert data["headers"]["server"] == "vantage-test"
    assert "x-other" not in data["headers"]
    assert data["redirects"] == []
    timings = data["timings"]
    assert timings["dns_s"] is None  # an address: nothing to resolve
    assert timings["tls_s"] is None
    assert 0 < timings["connect_s"] < 1
    assert 0 < timings["ttfb_s"] < 1
    assert timings["total_s"] >= timings["connect_s"] + timings["ttfb_s"]


async def test_https_splits_connect_and_tls(limits: Limits, tls_material: TLSMaterial) -> None:
    async with http_server(tls_material.server_context) as port:
        outcome = await probe(f"https://localhost:{port}/ok", limits, ca_file=tls_material.ca_file)
    assert outcome.failure is None, outcome.failure_detail
    timings = outcome.data["timings"]
    assert timings["dns_s"] is not None and timings["dns_s"] >= 0
    assert 0 < timings["connect_s"] < 1
    assert 0 < timings["tls_s"] < 1
    assert outcome.data["status"] == 200


async def test_https_with_untrusted_certificate(limits: Limits, tls_material: TLSMaterial) -> None:
    async with http_server(tls_material.server_context) as port:
        outcome = await probe(f"https://localhost:{port}/ok", limits)
    assert outcome.failure == "tls_cert_invalid", outcome.failure_detail


async def test_block_page_is_http_error_with_its_digest(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/blocked", limits, max_body="16")
    assert outcome.failure == "http_error"
    assert outcome.failure_detail.startswith("status 451")
    assert outcome.data["status"] == 451
    assert outcome.data["body_length"] == len(BLOCK_PAGE)
    assert outcome.data["body_sha256"] == hashlib.sha256(BLOCK_PAGE[:16]).hexdigest()


async def test_a_200_block_page_reports_its_features(limits: Limits) -> None:
    async with http_server() as port:
        isp = await probe(f"http://127.0.0.1:{port}/isp", limits)
        plain = await probe(f"http://127.0.0.1:{port}/ok", limits)
    assert isp.failure is None  # a 200: telling it from the site is the coordinator's work
    data = isp.data
    assert data["body_length"] == len(ISP_PAGE)
    assert data["title"] == "Доступ & ограничен"  # decoded by its charset, spaces collapsed
    assert data["link_hosts"] == ["warning.example-isp.ru", "10.10.34.34"]  # bad_host left out
    assert data["refresh_url"] == "http://Warning.Example-ISP.ru/?u=1"
    assert (plain.data["title"], plain.data["link_hosts"], plain.data["refresh_url"]) == ("", [], "")


async def test_follows_redirects_and_keeps_the_chain(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/redirect/2", limits)
    assert outcome.failure is None
    chain = outcome.data["redirects"]
    assert [hop["status"] for hop in chain] == [302, 302, 302]
    assert chain[0]["url"].endswith("/redirect/2") and chain[-1]["location"] == "/ok"
    assert outcome.data["url"] == f"http://127.0.0.1:{port}/ok"


async def test_redirect_loop_is_http_error(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/loop", limits, max_redirects="3")
    assert outcome.failure == "http_error"
    assert len(outcome.data["redirects"]) == 4


async def test_head_and_max_bytes(limits: Limits) -> None:
    async with http_server() as port:
        head = await probe(f"http://127.0.0.1:{port}/bytes/100000", limits, method="HEAD")
        capped = await probe(f"http://127.0.0.1:{port}/bytes/100000", limits, max_bytes="1000", max_body="1000")
    assert head.failure is None and head.data["body_length"] == 0
    assert head.data["headers"]["content-length"] == "100000"
    assert capped.failure is None
    assert capped.data["body_length"] == 1000 and capped.data["body_truncated"] is True
    assert capped.data["body_sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()


async def test_reset_after_request(limits: Limits) -> None:
    async with tcp_server(reset_after_request) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "connection_reset", outcome.failure_detail


async def close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def garbage_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)


async def test_close_without_response(limits: Limits) -> None:
    async with tcp_server(close_after_request) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "connection_closed", outcome.failure_detail


async def test_malformed_response_is_http_error(limits: Limits) -> None:
    async with tcp_server(garbage_after_request) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "http_error", outcome.failure_detail


async def test_slow_response_times_out(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/slow", limits, timeout="0.5")
    assert outcome.failure == "generic_timeout"
    assert outcome.data["timings"]["connect_s"] is not None


async def test_silent_listener_times_out(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits, timeout="0.5")
    assert outcome.failure == "generic_timeout"


async def test_closed_port_is_refused(limits: Limits) -> None:
    outcome = await probe(f"http://127.0.0.1:{closed_port()}/", limits)
    assert outcome.failure == "connection_refused", outcome.failure_detail


async def test_policy_before_connecting_and_after_resolving(limits: Limits) -> None:
    strict = Limits()
    async with http_server() as port:
        literal = await probe(f"http://127.0.0.1:{port}/ok", strict)
        named = await probe(f"http://localhost:{port}/ok", strict)
        allowed = await probe(f"http://localhost:{port}/ok", limits)
    assert literal.failure == "target_forbidden" and "loopback" in literal.failure_detail
    assert named.failure == "target_forbidden" and "loopback" in named.failure_detail
    assert allowed.failure is None
