"""throughput with direction=upload (agent/probes/upload.py) against real servers on
127.0.0.1: the acknowledged rate, early stops, error answers."""

from __future__ import annotations

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits, ProbeOutcome
from agent.probes.upload import _unsent
from tests.probes.conftest import TLSMaterial
from tests.probes.servers import closed_port, slow_reader, tcp_server, uploads


async def upload(url: str, limits: Limits, **options: str) -> ProbeOutcome:
    spec = parse_spec("throughput", url, {"timeout": "2", "direction": "upload", **options}, limits)
    return await run_probe(spec, limits)


async def test_uploads_the_whole_body(limits: Limits) -> None:
    async with tcp_server(uploads()) as port:
        outcome = await upload(f"http://127.0.0.1:{port}/upload", limits, max_bytes="3M")
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["direction"] == "upload"
    assert data["bytes"] == 3 * 1024 * 1024 and data["complete"] is True, data
    assert data["stopped_by"] == "complete" and data["status"] == 200
    assert data["bytes_per_second"] > 0 and data["duration_s"] > 0


@pytest.mark.timing  # a rate measured against the wall clock
async def test_the_acknowledged_rate_is_the_readers_pace(limits: Limits) -> None:
    """The server reads 200 kB/s: written bytes fill the send buffer at once, but the
    acknowledged ones follow the reader."""
    rate = 200_000.0
    with slow_reader(rate) as port:
        outcome = await upload(
            f"http://127.0.0.1:{port}/upload", limits, max_bytes="5M", max_seconds="2",
            burst="0", interval="0.2",
        )  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["stopped_by"] == "max_seconds" and data["complete"] is False, data
    # what was acknowledged, not the megabytes the kernel took into its buffers (the
    # server's own read buffers, 128 kB or so, are acknowledged at once: the sustained
    # rate, after the first part, leaves them out)
    assert 0.6 * rate < data["sustained_bps"] < 1.4 * rate, data
    assert data["bytes_per_second"] < 2 * rate, data
    assert data["bytes"] < 2 * rate * 2, data
    assert len(data["series_bps"]) >= 8


async def test_an_upload_throttled_after_a_burst_is_split(limits: Limits) -> None:
    # half-second windows: on loopback the acknowledgements of a slow reader come in
    # bursts a few tenths of a second apart (the netns test measures it over tc)
    with slow_reader(100_000.0, burst=800_000) as port:
        outcome = await upload(
            f"http://127.0.0.1:{port}/upload", limits, max_bytes="10M", max_seconds="4",
            burst="0", interval="0.5",
        )  # fmt: skip
    data = outcome.data
    assert outcome.failure is None, outcome.failure_detail
    assert data["drop_at_s"] is not None and data["drop_at_s"] < 1.6, data
    assert 0.5 * 100_000 < data["sustained_bps"] < 1.5 * 100_000, data
    assert data["first_part_bps"] > 4 * data["sustained_bps"], data


async def test_a_settled_upload_ends_early(limits: Limits) -> None:
    with slow_reader(1_000_000.0) as port:
        outcome = await upload(
            f"http://127.0.0.1:{port}/upload", limits, max_bytes="50M", max_seconds="8",
            burst="200k", settle="0.4", interval="0.1",
        )  # fmt: skip
    data = outcome.data
    assert outcome.failure is None, outcome.failure_detail
    # it ended by settling (the signal), so before its max_seconds
    assert data["stopped_by"] == "settled", data
    assert outcome.duration_s < 8.0
    assert data["bytes"] > 200 * 1024


async def test_an_early_error_answer_is_http_error(limits: Limits) -> None:
    async with tcp_server(uploads(status=413, early=True)) as port:
        outcome = await upload(f"http://127.0.0.1:{port}/upload", limits, max_bytes="20M")
    assert outcome.failure == "http_error", outcome
    assert "413" in outcome.failure_detail
    assert outcome.data["bytes_per_second"] is None and outcome.data["sustained_bps"] is None


async def test_a_server_that_closes_is_connection_closed(limits: Limits) -> None:
    import asyncio

    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(1000)
        writer.close()

    async with tcp_server(closes) as port:
        outcome = await upload(f"http://127.0.0.1:{port}/upload", limits, max_bytes="20M")
    assert outcome.failure in ("connection_closed", "connection_reset"), outcome


async def test_closed_port(limits: Limits) -> None:
    outcome = await upload(f"http://127.0.0.1:{closed_port()}/upload", limits)
    assert outcome.failure == "connection_refused"


async def test_upload_over_tls_with_a_control(limits: Limits, tls_material: TLSMaterial) -> None:
    async with (
        tcp_server(uploads(), ssl_context=tls_material.server_context) as port,
        tcp_server(uploads()) as control_port,
    ):
        outcome = await upload(
            f"https://localhost:{port}/upload", limits, max_bytes="2M",
            ca_file=tls_material.ca_file, control=f"http://127.0.0.1:{control_port}/up",
        )  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["bytes"] == 2 * 1024 * 1024
    assert data["control"]["bytes"] == 2 * 1024 * 1024 and data["ratio"] is not None


def test_unsent_of_a_closed_descriptor_is_zero() -> None:
    assert _unsent(-1) == 0


def test_direction_must_be_known(limits: Limits) -> None:
    from agent.probes.base import SpecError

    with pytest.raises(SpecError, match=r"options\.direction"):
        parse_spec("throughput", "http://127.0.0.1:1/", {"direction": "sideways"}, limits)
