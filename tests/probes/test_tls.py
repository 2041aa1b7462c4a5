from __future__ import annotations

import asyncio
import hashlib
import ssl

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits
from tests.probes.conftest import TLSMaterial
from tests.probes.servers import (
    closed_port,
    reset_after_request,
    silent_listener,
    tcp_server,
)


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)  # keep the connection open until the client leaves


async def plaintext_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)


async def close_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.close()


async def probe(target: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    return await run_probe(parse_spec("tls", target, {"timeout": "1", **options}, limits), limits)


async def test_handshake_reports_session_and_certificate(limits: Limits, tls_material: TLSMaterial) -> None:
    async with tcp_server(hold, tls_material.server_context) as port:
        outcome = await probe(
            f"127.0.0.1:{port}", limits, sni="vantage.test", ca_file=tls_material.ca_file
        )
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert data["cipher"]
    assert data["alpn"] == "http/1.1"
    assert data["hostname_checked"] is True
    assert 0 < data["handshake_s"] < 1 and 0 < data["connect_s"] < 1
    cert = data["certificate"]
    assert "DNS:vantage.test" in cert["sans"] and "IP:127.0.0.1" in cert["sans"]
    assert cert["issuer"].startswith("O=trustme")
    assert cert["not_after"] == "3000-01-01T00:00:00Z"
    assert len(cert["sha256"]) == 64


async def test_certificate_fingerprint_matches_the_served_one(
    limits: Limits, tls_material: TLSMaterial
) -> None:
    async with tcp_server(hold, tls_material.server_context) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, verify="false")
        der = ssl.PEM_cert_to_DER_cert(
            await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port))
        )
    assert outcome.failure is None
    assert outcome.data["certificate"]["sha256"] == hashlib.sha256(der).hexdigest()
    assert outcome.data["sni"] == ""  # an address target sends no SNI by default


async def test_unknown_issuer_is_cert_invalid(limits: Limits, tls_material: TLSMaterial) -> None:
    async with tcp_server(hold, tls_material.server_context) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, sni="vantage.test")
    assert outcome.failure == "tls_cert_invalid"
    assert "certificate" in outcome.failure_detail.lower()


async def test_wrong_name_is_cert_invalid(limits: Limits, tls_material: TLSMaterial) -> None:
    async with tcp_server(hold, tls_material.server_context) as port:
        outcome = await probe(
            f"127.0.0.1:{port}", limits, sni="other.example", ca_file=tls_material.ca_file
        )
    assert outcome.failure == "tls_cert_invalid"
    assert "hostname" in outcome.failure_detail.lower()


async def test_empty_sni_still_verifies_the_chain(limits: Limits, tls_material: TLSMaterial) -> None:
    async with tcp_server(hold, tls_material.server_context) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, sni="", ca_file=tls_material.ca_file)
    assert outcome.failure is None
    assert outcome.data["hostname_checked"] is False


async def test_non_tls_answer_is_handshake_failed(limits: Limits) -> None:
    async with tcp_server(plaintext_answer) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, verify="false")
    assert outcome.failure == "tls_handshake_failed"


async def test_close_during_handshake_is_connection_closed(limits: Limits) -> None:
    async with tcp_server(close_after_hello) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, verify="false")
    assert outcome.failure == "connection_closed", outcome.failure_detail


async def test_reset_during_handshake(limits: Limits) -> None:
    async with tcp_server(reset_after_request) as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, verify="false")
    assert outcome.failure == "connection_reset", outcome.failure_detail


async def test_silent_server_times_out(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await probe(f"127.0.0.1:{port}", limits, verify="false", timeout="0.5")
    assert outcome.failure == "generic_timeout"
    assert outcome.data["connect_s"] > 0  # TCP worked; the handshake did not


async def test_closed_port(limits: Limits) -> None:
    outcome = await probe(f"127.0.0.1:{closed_port()}", limits)
    assert outcome.failure == "connection_refused"
