"""Hostile volume against a real coordinator process: bodies that must never be read
before their caller is known, and per-method request limits (coordinator/guard.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from coordinator.guard import DEFAULT_UNARY_LIMIT, METHOD_LIMITS, ByteBudget
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc
from tests.e2e.harness import network

API_TOKEN = "vantage-api-" + "b" * 43
BIG = 15 * 1024 * 1024  # just under the server's 16 MiB receive limit
CALLS = 64


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def big_job() -> pb.SubmitJobRequest:
    return pb.SubmitJobRequest(spec=pb.JobSpec(kind="http", targets=["x" * BIG]))


async def _submit(address: str, token: str, request: pb.SubmitJobRequest) -> grpc.StatusCode:
    options = [("grpc.max_send_message_length", 32 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        try:
            await stub.SubmitJob(request, metadata=(("authorization", f"Bearer {token}"),), timeout=60)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


@pytest.mark.e2e
def test_64_max_size_unauthenticated_calls_cost_the_coordinator_no_body(tmp_path: Path) -> None:
    with network(tmp_path, extra_env={"VANTAGE_API_TOKEN": API_TOKEN}) as net:
        proc = net.start_coordinator()
        assert proc.popen is not None
        with net.client(API_TOKEN) as c:  # the coordinator serves before the attack
            assert c.agents() == []
        before = rss_bytes(proc.popen.pid)
        peak = before

        async def attack() -> list[grpc.StatusCode]:
            nonlocal peak
            request = big_job()
            calls = [asyncio.ensure_future(_submit(net.address, "vantage-api-wrong", request)) for _ in range(CALLS)]
            while not all(c.done() for c in calls):
                peak = max(peak, rss_bytes(proc.popen.pid))  # type: ignore[union-attr]
                await asyncio.wait(calls, timeout=0.05)
            return [c.result() for c in calls]

        codes = asyncio.run(asyncio.wait_for(attack(), 120))
        assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}, codes
        peak = max(peak, rss_bytes(proc.popen.pid))
        grown = peak - before
        print(f"RSS {before / 2**20:.0f} MiB before, +{grown / 2**20:.0f} MiB at the peak of {CALLS} refused calls")
        assert grown < 256 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB for {CALLS} refused calls"
        # and the coordinator still serves a caller it knows
        with net.client(API_TOKEN) as c:
            assert c.agents() == []
        assert proc.alive


@pytest.mark.e2e
def test_a_known_caller_is_held_to_the_methods_own_limit(tmp_path: Path) -> None:
    with network(tmp_path, extra_env={"VANTAGE_API_TOKEN": API_TOKEN}) as net:
        net.start_coordinator()
        limit = METHOD_LIMITS["/vantage.v1.JobService/SubmitJob"]

        async def calls() -> tuple[grpc.StatusCode, str, grpc.StatusCode]:
            too_big = pb.SubmitJobRequest(spec=pb.JobSpec(kind="http", targets=["x" * (limit + 1)]))
            async with grpc.aio.insecure_channel(net.address) as channel:
                stub = pb_grpc.JobServiceStub(channel)
                md = (("authorization", f"Bearer {API_TOKEN}"),)
                try:
                    await stub.SubmitJob(too_big, metadata=md, timeout=30)
                    first, detail = grpc.StatusCode.OK, ""
                except grpc.aio.AioRpcError as err:
                    first, detail = err.code(), err.details() or ""
                try:
                    await stub.GetJob(pb.GetJobRequest(job_id="j" * (DEFAULT_UNARY_LIMIT + 1)), metadata=md, timeout=30)
                    second = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as err:
                    second = err.code()
            return first, detail, second

        first, detail, second = asyncio.run(calls())
        assert first == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "SubmitJob" in detail and str(limit) in detail, detail
        assert second == grpc.StatusCode.RESOURCE_EXHAUSTED
        with net.client(API_TOKEN) as c:  # a request within the limits is served as before
            assert c.agents() == []


async def test_the_byte_budget_waits_in_order_and_times_out() -> None:
    budget = ByteBudget(100)
    assert await budget.take(60, 1.0)
    order: list[str] = []

    async def take(name: str, n: int) -> None:
        assert await budget.take(n, 5.0)
        order.append(name)

    first = asyncio.create_task(take("first", 60))
    second = asyncio.create_task(take("second", 10))  # fits now, but waits behind "first"
    await asyncio.sleep(0)
    assert order == []
    budget.give(60)
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert order == ["first", "second"]
    assert budget.held == 70 and budget.peak == 70
    assert not await budget.take(50, 0.01)  # 70 + 50 > 100: refused after its wait
    assert budget.held == 70
    budget.give(70)
    assert budget.held == 0
    with pytest.raises(ValueError, match="capacity"):
        ByteBudget(0)


@pytest.mark.e2e
def test_a_direct_callers_relay_metadata_is_ignored(tmp_path: Path) -> None:
    """Only a fleet member's stream may come through a relay: elsewhere the relay's
    metadata is a forgery, and ListAgents shows the stream's own peer."""
    from coordinator.services import PEER_KEY, RELAY_KEY
    from tests.e2e.hostile import RawAgent

    with network(tmp_path, extra_env={"VANTAGE_API_TOKEN": API_TOKEN}) as net:
        net.start_coordinator()

        async def connect() -> None:
            agent = RawAgent(net.address, "forger-1", "ru")
            agent.metadata = ((PEER_KEY, "203.0.113.9"), (RELAY_KEY, "fleet-b"))
            def peers() -> dict[str, str]:
                with net.client(API_TOKEN) as c:
                    return {a.agent_id: a.peer for a in c.agents()}

            async with agent:
                listed = await asyncio.to_thread(peers)
                assert "forger-1" in listed, listed
                peer = listed["forger-1"]
                assert "127.0.0.1" in peer and "203.0.113.9" not in peer and "fleet-b" not in peer, peer

        asyncio.run(asyncio.wait_for(connect(), 60))
