"""Agent-local name overrides (``vantage agent --resolve NAME=ADDR``): probes connect to the
given address but keep the name, and the target policy still judges the address."""

from __future__ import annotations

import pytest
from aiohttp import web

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits


@pytest.fixture
async def http_port() -> int:  # type: ignore[misc]
    async def index(request: web.Request) -> web.Response:
        return web.Response(text=f"host={request.host}")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.mark.parametrize("kind", ["tcp", "http", "throughput"])
async def test_override_sends_the_name_to_the_given_address(http_port: int, kind: str) -> None:
    limits = Limits(allow_private_targets=True, host_overrides={"twitter.demo": "127.0.0.1"})
    target = f"twitter.demo:{http_port}" if kind == "tcp" else f"http://twitter.demo:{http_port}/"
    outcome = await run_probe(parse_spec(kind, target, {"timeout": "5"}, limits), limits)
    assert outcome.failure is None, (outcome.failure, outcome.failure_detail)
    if kind == "tcp":
        assert outcome.data["address"] == "127.0.0.1"


async def test_override_to_a_private_address_is_still_refused(http_port: int) -> None:
    limits = Limits(allow_private_targets=False, host_overrides={"twitter.demo": "127.0.0.1"})
    spec = parse_spec("tcp", f"twitter.demo:{http_port}", {"timeout": "2"}, limits)
    outcome = await run_probe(spec, limits)
    assert outcome.failure == "target_forbidden"
