from __future__ import annotations

import asyncio

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits, ProbeOutcome
from tests.probes.conftest import TLSMaterial
from tests.probes.servers import (
    closed_port,
    http_server,
    read_request,
    reset,
    silent_listener,
    tcp_server,
)

REQUIRED = ("bytes", "duration_s", "bytes_per_second", "ttfb_s", "stall_s", "interval_s", "series_bps")


async def probe(url: str, limits: Limits, **options: str):  # type: ignore[no-untyped-def]
    outcome = await run_probe(parse_spec("throughput", url, {"timeout": "2", **options}, limits), limits)
    for name in REQUIRED:
        assert name in outcome.data
    return outcome


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_downloads_the_whole_body(limits: Limits, chunked: str) -> None:
    size = 3_000_000
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/bytes/{size}?chunked={chunked}", limits)
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["bytes"] == size  # body bytes only: chunk framing is not counted
    assert data["complete"] is True and data["stopped_by"] == "complete"
    assert data["status"] == 200
    assert data["bytes_per_second"] > 0
    assert 0 < data["ttfb_s"] <= data["duration_s"]
    assert isinstance(data["series_bps"], list)


@pytest.mark.timing
async def test_paced_download_rate_and_series(limits: Limits) -> None:
    rate = 400_000.0  # bytes/s, paced by the server
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/600000?rate={rate}", limits, interval="0.2"
        )
    assert outcome.failure is None
    data = outcome.data
    assert data["interval_s"] == 0.2
    assert 0.75 * rate < data["bytes_per_second"] < 1.25 * rate
    series = data["series_bps"]
    assert 5 <= len(series) <= 9  # ~1.5 s in 0.2 s windows
    middle = sorted(series)[len(series) // 2]
    assert 0.6 * rate < middle < 1.4 * rate
    assert data["stall_s"] == 0


async def _stalled(limits: Limits) -> dict[str, float]:
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/200000?pause=0.8", limits, stall_threshold="0.3"
        )
    assert outcome.failure is None
    return dict(outcome.data)


async def test_stall_is_measured(limits: Limits) -> None:
    data = await _stalled(limits)
    # The server pauses 0.8 s mid-body: a stall at least that long, whatever the load.
    assert data["stall_s"] >= 0.7
    assert data["duration_s"] >= 0.8


@pytest.mark.timing
async def test_stall_is_measured_not_overcounted(limits: Limits) -> None:
    assert (await _stalled(limits))["stall_s"] < 1.5


async def test_stops_at_max_bytes(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/bytes/5000000", limits, max_bytes="100k")
    assert outcome.failure is None
    assert outcome.data["bytes"] == 100 * 1024
    assert outcome.data["stopped_by"] == "max_bytes" and outcome.data["complete"] is False


async def _capped(limits: Limits) -> ProbeOutcome:
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/5000000?rate=100000", limits, max_seconds="0.6"
        )
    assert outcome.failure is None
    return outcome


async def test_stops_at_max_seconds(limits: Limits) -> None:
    outcome = await _capped(limits)
    assert outcome.data["stopped_by"] == "max_seconds" and outcome.data["complete"] is False
    assert outcome.duration_s >= 0.5  # it ran its time
    assert 0 < outcome.data["bytes"] < 5_000_000


@pytest.mark.timing
async def test_stops_at_max_seconds_promptly(limits: Limits) -> None:
    outcome = await _capped(limits)
    assert outcome.duration_s < 1.5
    assert 20_000 < outcome.data["bytes"] < 150_000  # about 0.6 s at 100 kB/s


async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    for _ in range(10):
        writer.write(b"y" * 10_000)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 50_000)
    await writer.drain()
    await asyncio.sleep(0.2)
    reset(writer)


async def close_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 50_000)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def interim_then_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    body = b"5;ext=1\r\nhello\r\n" + b"6\r\n world\r\n" + b"0\r\nTrailer: x\r\n\r\n"
    response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    for i in range(len(response)):  # one byte at a time: every parser state sees a split
        writer.write(response[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0)
    await asyncio.sleep(0.5)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)


async def test_body_until_close(limits: Limits) -> None:
    async with tcp_server(until_close) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["bytes"] == 100_000 and outcome.data["complete"] is True


async def test_chunked_split_everywhere(limits: Limits) -> None:
    async with tcp_server(interim_then_chunked) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["bytes"] == len(b"hello world")
    assert outcome.data["complete"] is True


async def test_reset_mid_body_keeps_partial_figures(limits: Limits) -> None:
    async with tcp_server(reset_mid_body) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "connection_reset", outcome.failure_detail
    assert outcome.data["bytes"] == 50_000
    assert outcome.data["stopped_by"] == "failure"


async def test_close_mid_body(limits: Limits) -> None:
    async with tcp_server(close_mid_body) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "connection_closed", outcome.failure_detail
    assert outcome.data["bytes"] == 50_000


async def test_not_http_is_http_error(limits: Limits) -> None:
    async with tcp_server(garbage) as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits)
    assert outcome.failure == "http_error", outcome.failure_detail


async def test_error_status_is_http_error(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/blocked", limits)
    assert outcome.failure == "http_error"
    assert outcome.data["status"] == 451
    assert outcome.data["bytes_per_second"] is None


async def test_silent_server_times_out(limits: Limits) -> None:
    with silent_listener() as port:
        outcome = await probe(f"http://127.0.0.1:{port}/", limits, timeout="0.5")
    assert outcome.failure == "generic_timeout"
    assert outcome.data["bytes"] == 0 and outcome.data["bytes_per_second"] is None


async def test_closed_port(limits: Limits) -> None:
    outcome = await probe(f"http://127.0.0.1:{closed_port()}/", limits)
    assert outcome.failure == "connection_refused"


async def _with_control(limits: Limits) -> ProbeOutcome:
    async with http_server() as port:
        base = f"http://127.0.0.1:{port}/bytes"
        outcome = await probe(f"{base}/300000?rate=200000", limits, control=f"{base}/600000?rate=400000")
    assert outcome.failure is None
    return outcome


@pytest.mark.timing
async def test_ratio_measures_the_pacing(limits: Limits) -> None:
    outcome = await _with_control(limits)
    assert 0.3 < outcome.data["ratio"] < 0.7  # target paced at half the control's rate


async def test_control_and_ratio(limits: Limits) -> None:
    outcome = await _with_control(limits)
    control = outcome.data["control"]
    assert set(control) >= {"url", "bytes", "duration_s", "bytes_per_second", "failure"}
    assert control["bytes"] == 600000 and control["failure"] == ""
    assert outcome.data["ratio"] > 0
    assert outcome.data["ratio"] == pytest.approx(
        outcome.data["bytes_per_second"] / control["bytes_per_second"], rel=1e-3
    )


async def test_failed_control_gives_no_ratio(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/1000", limits, control=f"http://127.0.0.1:{closed_port()}/"
        )
    assert outcome.failure is None
    assert outcome.data["control"]["failure"] == "connection_refused"
    assert outcome.data["ratio"] is None


async def test_https_with_sni(limits: Limits, tls_material: TLSMaterial) -> None:
    async with http_server(tls_material.server_context) as port:
        url = f"https://127.0.0.1:{port}/bytes/500000"
        good = await probe(url, limits, sni="vantage.test", ca_file=tls_material.ca_file)
        wrong = await probe(url, limits, sni="other.example", ca_file=tls_material.ca_file)
        unverified = await probe(url, limits, sni="other.example", verify="false")
    assert good.failure is None, good.failure_detail
    assert good.data["bytes"] == 500000 and good.data["sni"] == "vantage.test"
    assert wrong.failure == "tls_cert_invalid"
    assert unverified.failure is None


async def test_policy_refuses_loopback() -> None:
    strict = Limits()
    async with http_server() as port:
        outcome = await probe(f"http://localhost:{port}/bytes/10", strict)
    assert outcome.failure == "target_forbidden"


@pytest.mark.timing  # where the rate drops, and the rates, against the wall clock
async def test_a_burst_then_a_throttle_is_split_where_the_rate_drops(limits: Limits) -> None:
    """A policer's burst: the first 600 kB at full speed, then 100 kB/s. The mean mixes
    the two; the sustained rate is the throttle's, and the drop is seen early on."""
    rate = 100_000.0
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/5000000?rate={rate}&burst=600000",
            limits, max_seconds="2.5", interval="0.1",
        )  # fmt: skip
    assert outcome.failure is None, outcome.failure_detail
    data = outcome.data
    assert data["stopped_by"] == "max_seconds"
    assert data["drop_at_s"] is not None and data["drop_at_s"] < 1.0, data
    assert data["first_part_bps"] > 5 * rate, data
    # 16 kB writes each followed by a sleep: the rate after the burst is at most the pace
    assert 0.5 * rate < data["sustained_bps"] < 1.3 * rate, data
    assert data["bytes_per_second"] > 1.5 * data["sustained_bps"], data


async def test_a_steady_download_has_no_drop(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/5000000?rate=200000", limits,
            max_seconds="1.5", interval="0.1",
        )  # fmt: skip
    data = outcome.data
    assert outcome.failure is None and data["drop_at_s"] is None, data
    assert 0.5 < data["sustained_bps"] / data["first_part_bps"] < 2.0, data


async def test_a_settled_download_ends_early(limits: Limits) -> None:
    """Past `burst` bytes and steady for `settle` seconds, the download ends, long before
    its max_seconds: a fast path costs a short download."""
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/50000000?rate=1000000", limits,
            burst="200k", settle="0.4", max_seconds="8", interval="0.1",
        )  # fmt: skip
    data = outcome.data
    assert outcome.failure is None, outcome.failure_detail
    assert data["stopped_by"] == "settled" and data["complete"] is False, data
    assert data["burst_bytes"] == 200 * 1024 and data["settle_s"] == 0.4
    # it ended by settling (asserted above, the signal), so before its max_seconds
    assert outcome.duration_s < 8.0, outcome.duration_s
    assert data["bytes"] > 200 * 1024


async def test_burst_zero_runs_to_max_seconds(limits: Limits) -> None:
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/50000000?rate=1000000", limits,
            burst="0", settle="0.1", max_seconds="0.8",
        )  # fmt: skip
    assert outcome.data["stopped_by"] == "max_seconds", outcome.data


async def test_sustained_ratio_against_the_control(limits: Limits) -> None:
    async with http_server() as port:
        base = f"http://127.0.0.1:{port}/bytes/5000000"
        outcome = await probe(
            f"{base}?rate=100000&burst=600000", limits, max_seconds="2", interval="0.1",
            control=f"{base}?rate=1000000",
        )  # fmt: skip
    data = outcome.data
    assert outcome.failure is None, outcome.failure_detail
    assert data["control"]["sustained_bps"] is not None
    assert data["sustained_ratio"] < data["ratio"], data
    assert data["sustained_ratio"] < 0.3, data


async def test_a_settled_download_knows_its_rate_to_ten_percent(limits: Limits) -> None:
    """An early end comes with the precision in hand: the sustained rate's 95% interval
    (on the in-process Transfer: the wire has no field for it) is within +-10%."""
    from agent.probes.throughput import _fetch

    async with http_server() as port:
        url = f"http://127.0.0.1:{port}/bytes/50000000?rate=1000000"
        spec = parse_spec("throughput", url, {"timeout": "2", "burst": "200k", "settle": "0.4",
                                              "max_seconds": "8", "interval": "0.1"}, limits)
        transfer = await _fetch(url, spec, limits, sni="")  # type: ignore[arg-type]
    assert transfer.failure is None, transfer.failure_detail
    assert transfer.stopped_by == "settled", transfer
    assert transfer.rate_precise, transfer
    assert transfer.rate_low_bps is not None and transfer.rate_high_bps is not None
    assert transfer.sustained_bps is not None
    assert transfer.rate_low_bps <= transfer.sustained_bps <= transfer.rate_high_bps
    assert transfer.rate_high_bps - transfer.rate_low_bps <= 0.2 * transfer.sustained_bps
    # at least 2 s of steady windows (rates.MIN_PRECISE_S) before it could end
    assert transfer.duration_s is not None and transfer.duration_s >= 2.0


async def test_no_early_end_without_precision(limits: Limits) -> None:
    """Past the burst and the settle time, but with under 2 s of windows the rate is not
    known to +-10% yet: the download runs on to max_seconds."""
    async with http_server() as port:
        outcome = await probe(
            f"http://127.0.0.1:{port}/bytes/50000000?rate=1000000", limits,
            burst="100k", settle="0.1", max_seconds="1.5", interval="0.1",
        )  # fmt: skip
    assert outcome.data["stopped_by"] == "max_seconds", outcome.data
