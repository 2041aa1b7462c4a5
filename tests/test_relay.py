"""The userspace relay `vantage demo` throttles with: real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from vantage.relay import ThrottlingRelay, TokenBucket

RATE = 16_250  # 130 kbit/s, the March 2021 Twitter throttle
PAYLOAD = bytes((i * 7 + (i >> 8)) % 251 for i in range(600_000))


@pytest.fixture
async def origin() -> AsyncIterator[int]:
    async def blob(request: web.Request) -> web.Response:
        size = int(request.query.get("size", len(PAYLOAD)))
        return web.Response(body=PAYLOAD[:size], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/blob", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield int(port)
    finally:
        await runner.cleanup()


async def _download(url: str) -> tuple[bytes, float]:
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        async with session.get(url) as resp:
            assert resp.status == 200
            body = await resp.read()
        return body, time.monotonic() - t0


class VirtualClock:
    """Time that passes only in the bucket's own waits: each sleep moves it on at once,
    so the bucket's pacing is exact and independent of the machine."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def timeout(self, seconds: float) -> object:
        raise NotImplementedError


async def test_bucket_paces_to_its_rate_after_the_initial_burst() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=RATE, capacity=4096, clock=clock)  # type: ignore[arg-type]
    for _ in range(40):
        await bucket.consume(1000)
    # 4,096 bytes go at once (the bucket starts full), the other 35,904 at the rate
    assert clock.now == pytest.approx((40_000 - 4096) / RATE)
    assert all(s <= 1000 / RATE + 1e-9 for s in clock.sleeps), "it waits a chunk at a time"


async def test_bucket_refills_while_idle_but_never_beyond_capacity() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=1000.0, capacity=500, clock=clock)  # type: ignore[arg-type]
    await bucket.consume(500)
    clock.now += 100.0  # idle for 100 s: 100,000 tokens' worth, capped at 500
    await bucket.consume(500)
    assert clock.sleeps == []
    await bucket.consume(250)
    assert clock.sleeps == [pytest.approx(0.25)]


async def test_two_consumers_share_one_bucket() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=RATE, capacity=4096, clock=clock)  # type: ignore[arg-type]

    async def download(n: int) -> None:
        for _ in range(n):
            await bucket.consume(1000)

    await asyncio.gather(download(24), download(24))
    # the pair together gets the rate, not each of them
    assert clock.now == pytest.approx((48_000 - 4096) / RATE)


@pytest.mark.timing
async def test_downstream_rate_holds_within_15_percent(origin: int) -> None:
    size = 60_000
    async with ThrottlingRelay(
        upstream_host="127.0.0.1", upstream_port=origin, downstream_rate=RATE
    ) as relay:
        assert relay.port > 0
        body, elapsed = await _download(f"http://127.0.0.1:{relay.port}/blob?size={size}")
    assert body == PAYLOAD[:size]
    rate = size / elapsed
    assert abs(rate - RATE) / RATE <= 0.15, f"{rate:.0f} B/s through a {RATE} B/s relay"


async def test_unthrottled_passthrough_is_byte_identical(origin: int) -> None:
    async with ThrottlingRelay(upstream_host="127.0.0.1", upstream_port=origin) as relay:
        body, _ = await _download(f"http://127.0.0.1:{relay.port}/blob")
        # a second request on a fresh connection also works
        body2, _ = await _download(f"http://127.0.0.1:{relay.port}/blob?size=1000")
    assert hashlib.sha256(body).digest() == hashlib.sha256(PAYLOAD).digest()
    assert body2 == PAYLOAD[:1000]
    assert relay.bytes_down >= len(PAYLOAD)


@pytest.mark.timing
async def test_unthrottled_passthrough_is_fast(origin: int) -> None:
    async with ThrottlingRelay(upstream_host="127.0.0.1", upstream_port=origin) as relay:
        _, elapsed = await _download(f"http://127.0.0.1:{relay.port}/blob")
    assert elapsed < 5, f"600 kB unthrottled took {elapsed:.1f}s"


@pytest.mark.timing
async def test_two_connections_share_the_downstream_bucket(origin: int) -> None:
    size = 24_000
    async with ThrottlingRelay(
        upstream_host="127.0.0.1", upstream_port=origin, downstream_rate=RATE
    ) as relay:
        url = f"http://127.0.0.1:{relay.port}/blob?size={size}"
        t0 = time.monotonic()
        results = await asyncio.gather(_download(url), _download(url))
        elapsed = time.monotonic() - t0
    assert all(body == PAYLOAD[:size] for body, _ in results)
    rate = 2 * size / elapsed
    assert abs(rate - RATE) / RATE <= 0.2, f"{rate:.0f} B/s for two downloads sharing the line"


async def test_upstream_unreachable_closes_the_client() -> None:
    # a port nobody listens on: bind one, note it, close it
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with ThrottlingRelay(upstream_host="127.0.0.1", upstream_port=dead_port) as relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        data = await asyncio.wait_for(reader.read(100), 5)
        assert data == b""
        writer.close()


async def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0)
    with pytest.raises(ValueError, match="upstream_port"):
        ThrottlingRelay(upstream_host="127.0.0.1", upstream_port=0)
    bucket = TokenBucket(rate=1000, capacity=10)
    with pytest.raises(ValueError, match="capacity"):
        await bucket.consume(11)


async def test_a_throttled_upload_is_acknowledged_at_the_relays_rate() -> None:
    """The demo's upload throttle: what the probe counts as acknowledged follows the
    relay's upstream rate, because the relay keeps its receive buffers small."""
    from agent.probes import parse_spec, run_probe
    from agent.probes.base import Limits
    from tests.probes.servers import tcp_server, uploads

    limits = Limits(allow_private_targets=True)
    rate = 50_000
    async with (
        tcp_server(uploads()) as port,
        ThrottlingRelay(upstream_host="127.0.0.1", upstream_port=port, upstream_rate=rate) as relay,
    ):
        spec = parse_spec("throughput", f"http://127.0.0.1:{relay.port}/up",
                          {"direction": "upload", "max_bytes": "2M", "max_seconds": "3"}, limits)  # fmt: skip
        outcome = await run_probe(spec, limits)
    data = outcome.data
    assert outcome.failure is None, outcome.failure_detail
    assert 0.6 * rate < data["sustained_bps"] < 1.5 * rate, data
    # not the megabytes a loopback socket's buffers would take in at once
    assert data["bytes"] < 3 * rate * 2, data
