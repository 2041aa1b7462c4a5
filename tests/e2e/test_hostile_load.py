"""Hostile volume against a real coordinator process: bodies that must never be read
before their caller is known, and per-method request limits (coordinator/guard.py)."""

from __future__ import annotations

import asyncio
import json
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


AGENT_TOKEN = "vantage-agent-" + "c" * 43
SYBILS = 2000


async def _hello(stub: pb_grpc.AgentServiceStub, i: int) -> str:
    """One shared-token hello with a fresh id, region and the most labels allowed; the
    coordinator's answer: "welcome" or the refusal's status code."""
    labels = {f"k{j:02d}": "v" * 128 for j in range(16)}
    hello = pb.Hello(agent_id=f"sybil-{i}", region=f"r-{i % 100}", kinds=["http"], concurrency=1,
                     version="0.1.0", labels=labels, result_format=pb.RESULT_FORMAT_TYPED)  # fmt: skip
    call = stub.Connect(metadata=(("authorization", f"Bearer {AGENT_TOKEN}"),))
    try:
        await call.write(pb.AgentMessage(hello=hello))
        first = await asyncio.wait_for(call.read(), 30)
        return "welcome" if first is not grpc.aio.EOF and first.HasField("welcome") else "eof"
    except grpc.aio.AioRpcError as err:
        return err.code().name
    finally:
        call.cancel()


@pytest.mark.e2e
def test_2000_shared_token_hellos_leave_vantage_agents_working_and_metrics_small(tmp_path: Path) -> None:
    import urllib.request

    env = {"VANTAGE_API_TOKEN": API_TOKEN, "VANTAGE_AGENT_TOKEN": AGENT_TOKEN}
    with network(tmp_path, extra_env=env) as net:
        net.start_coordinator()

        async def flood() -> dict[str, int]:
            async with grpc.aio.insecure_channel(net.address) as channel:
                stub = pb_grpc.AgentServiceStub(channel)
                answers: dict[str, int] = {}
                for start in range(0, SYBILS, 100):
                    for a in await asyncio.gather(*(_hello(stub, i) for i in range(start, start + 100))):
                        answers[a] = answers.get(a, 0) + 1
                return answers

        answers = asyncio.run(asyncio.wait_for(flood(), 240))
        # 1,000 agents (the default limit) in at most 64 regions; the rest refused
        assert answers.get("welcome") == 1000 and answers.get("RESOURCE_EXHAUSTED") == SYBILS - 1000, answers
        listed = net.cli("agents")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count("sybil-") == 1000, listed.stdout[-500:]
        with urllib.request.urlopen(f"http://127.0.0.1:{net.metrics_port}/metrics", timeout=10) as r:
            body = r.read()
        assert len(body) < 2 * 1024 * 1024, len(body)
        assert 0 < body.count(b'vantage_agents_connected{region="r-') <= 64
        # ListAgents comes a page at a time, each well under the client's 4 MiB
        async def pages() -> tuple[list[int], set[str], int, grpc.StatusCode]:
            async with grpc.aio.insecure_channel(net.address) as channel:
                stub = pb_grpc.JobServiceStub(channel)
                md = (("authorization", f"Bearer {API_TOKEN}"),)
                sizes, ids, largest, token = [], set(), 0, ""
                for _ in range(10):
                    resp = await stub.ListAgents(pb.ListAgentsRequest(page_size=300, page_token=token), metadata=md)
                    sizes.append(len(resp.agents))
                    ids.update(a.agent_id for a in resp.agents)
                    largest = max(largest, resp.ByteSize())
                    token = resp.next_page_token
                    if not token:
                        break
                try:
                    await stub.ListAgents(pb.ListAgentsRequest(page_token="../x"), metadata=md)
                    bad = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as err:
                    bad = err.code()
            return sizes, ids, largest, bad

        sizes, ids, largest, bad = asyncio.run(pages())
        assert sizes == [300, 300, 300, 100] and len(ids) == 1000, sizes
        assert largest < 1024 * 1024 and bad == grpc.StatusCode.INVALID_ARGUMENT
        # an enrolled agent is not held to the shared token's limits
        enrolled = net.cli("agents", "add", "kept-1", "--region", "r-9999")
        assert enrolled.returncode == 0, enrolled.stderr


async def test_a_waiter_cancelled_as_it_is_granted_gives_its_share_back() -> None:
    budget = ByteBudget(10)
    assert await budget.take(10, 1.0)
    waiter = asyncio.create_task(budget.take(10, 5.0))
    await asyncio.sleep(0)  # it waits
    waiter.cancel()
    budget.give(10)  # grants the waiter in the same step it is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.held == 0
    assert await budget.take(10, 0.1), "nothing leaked: the whole budget is there"


@pytest.mark.e2e
def test_one_credential_cannot_hold_every_body_read(tmp_path: Path) -> None:
    """Calls that send headers and never a body: one credential holds at most its two
    turns, and another caller is served meanwhile."""
    with network(tmp_path, extra_env={"VANTAGE_API_TOKEN": API_TOKEN}) as net:
        net.start_coordinator()
        added = net.cli("tokens", "add", "other", "--role", "read", "--json")
        assert added.returncode == 0, added.stderr
        other = json.loads(added.stdout)["secret"]

        async def scenario() -> None:
            async with grpc.aio.insecure_channel(net.address) as channel:
                md = (("authorization", f"Bearer {API_TOKEN}"),)
                # raw calls that never send their message (a stream whose writes never come)
                hang = channel.stream_unary("/vantage.v1.JobService/GetVerdicts",
                                            request_serializer=None, response_deserializer=None)  # fmt: skip
                stuck = [hang(metadata=md, timeout=30) for _ in range(12)]  # more than the 8 shares
                await asyncio.sleep(0.5)  # let them take what they can
                stub = pb_grpc.JobServiceStub(channel)
                # served at once, not after the stuck bodies' 5 s read timeout
                got = await stub.GetVerdicts(pb.GetVerdictsRequest(), metadata=(("authorization", f"Bearer {other}"),),
                                             timeout=2.5)  # fmt: skip
                assert got.evaluated_at >= 0
                for call in stuck:
                    call.cancel()

        asyncio.run(asyncio.wait_for(scenario(), 60))
