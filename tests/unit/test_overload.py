"""An overloaded coordinator, real on 127.0.0.1: it sheds new agent streams with a retry
hint (coordinator/admission.py) that the real agent reads, counts the time its loop was
blocked as no agent's silence, and spaces a costly analysis."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from agent.session import RETRY_HINT_MAX_S, retry_hint
from coordinator import admission
from coordinator import server as server_module
from coordinator.convert import outgoing_batch_to_pb
from coordinator.metrics import build_registry
from coordinator.model import Acknowledgement, Assignment, Cancellation, JobSpec
from coordinator.store import PutResult
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc
from tests.unit.test_coordinator import serving


def hello(agent_id: str, concurrency: int = 1) -> pb.AgentMessage:
    return pb.AgentMessage(hello=pb.Hello(agent_id=agent_id, region="de", kinds=["tcp"], concurrency=concurrency,
                                          result_format=pb.RESULT_FORMAT_TYPED))  # fmt: skip


async def test_an_overloaded_coordinator_refuses_new_streams_with_a_retry_hint_and_keeps_the_open_ones(
    tmp_path: Path,
) -> None:
    async with (
        serving(tmp_path) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = pb_grpc.AgentServiceStub(channel)
        open_call = stub.Connect()
        await open_call.write(hello("de-1"))
        assert (await open_call.read()).HasField("welcome")

        server.core.lag = admission.SHED_LAG_S + 2.0  # the event loop is 7 s behind
        refused = stub.Connect()
        await refused.write(hello("de-2"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await refused.read()
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "coordinator overloaded (its event loop is 7.0s behind); retry in" in (
            err.value.details() or ""
        )
        hint = retry_hint(err.value)
        # spread over [5 + lag, 3 * (5 + lag)]
        assert hint is not None and 12.0 <= hint <= 36.0
        assert not server.core.registry.is_connected("de-2")
        # the session already open is untouched: it still gets what is sent to it
        assert server.core.registry.is_connected("de-1")
        await open_call.write(pb.AgentMessage(heartbeat=pb.Heartbeat(sent_at=1.0)))

        server.core.lag = admission.SHED_LAG_S  # at the threshold: admitted
        again = stub.Connect()
        await again.write(hello("de-2"))
        assert (await again.read()).HasField("welcome")
        metrics = generate_latest(build_registry(server.core)).decode()
        assert f"vantage_event_loop_lag_seconds {admission.SHED_LAG_S}" in metrics
        open_call.cancel()
        again.cancel()


def test_retry_after_is_spread_and_grows_with_the_lag() -> None:
    rng = random.Random(3)
    waits = [admission.retry_after_s(6.0, rng) for _ in range(200)]
    assert min(waits) >= 11.0 and max(waits) <= 33.0
    assert max(waits) - min(waits) > 15.0  # spread: the refused do not come back together
    assert min(admission.retry_after_s(30.0, rng) for _ in range(50)) >= 35.0


def rpc_error(*trailers: tuple[str, str]) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*trailers),
        details="busy",
    )


def test_the_agent_reads_only_a_bounded_well_formed_hint() -> None:
    assert retry_hint(rpc_error(("vantage-retry-after-ms", "12500"))) == 12.5
    assert retry_hint(rpc_error(("vantage-retry-after-ms", "999999999"))) == RETRY_HINT_MAX_S
    assert retry_hint(rpc_error()) is None
    for bad in ("-5", "1e9", "12.5", "", "9999999999"):
        assert retry_hint(rpc_error(("vantage-retry-after-ms", bad))) is None, bad
    assert retry_hint(rpc_error(("other-key", "100"))) is None


@pytest.mark.timing  # the stalled time it measures is wall-clock time
async def test_a_blocked_event_loop_is_counted_as_stalled_time(tmp_path: Path) -> None:
    """The scheduling tick of a real server notices that it ran late and tells the
    coordinator, which then does not count that time as any agent's silence."""
    async with serving(tmp_path) as server:
        await asyncio.sleep(0.5)  # a few ticks on time
        assert server.core.stalled < 0.2
        time.sleep(1.0)  # noqa: ASYNC251  # the loop is blocked, as by a long analysis pass
        await asyncio.sleep(0.5)
        assert 0.6 <= server.core.stalled <= 1.5


async def test_a_costly_evaluation_is_spaced_by_its_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(tmp_path) as server:
        at: list[float] = []

        def slow_evaluate(now: float) -> None:
            at.append(time.monotonic())
            time.sleep(0.25)  # as a window of hundreds of thousands of results takes

        monkeypatch.setattr(server.analyzer, "evaluate", slow_evaluate)
        monkeypatch.setattr(server_module, "EVALUATE_SHARE", 0.1)  # 0.25 s of work: one every 2.5 s
        for _ in range(200):  # bounded: 10 s
            if len(at) >= 3:
                break
            await asyncio.sleep(0.05)
        gaps = [b - a for a, b in itertools.pairwise(at)]
        assert len(gaps) >= 2 and all(g >= 2.5 for g in gaps[1:]), gaps


async def test_a_batch_waiting_for_its_commit_does_not_hold_up_the_agents_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream is read while a batch of results waits for its commit: the next batch
    is ingested and acked meanwhile (each ack still after its own commit)."""
    async with serving(tmp_path) as server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        store = server.core.ingest_results.store
        real_write = store.write
        held = asyncio.Event()
        release = asyncio.Event()

        async def write(changes: Any) -> None:
            if any(isinstance(c, PutResult) for c in changes) and not held.is_set():
                held.set()
                await release.wait()  # the first batch's commit hangs
            await real_write(changes)

        monkeypatch.setattr(store, "write", write)
        call = pb_grpc.AgentServiceStub(channel).Connect()
        await call.write(hello("de-1", concurrency=4))
        assert (await call.read()).HasField("welcome")
        core = server.core
        await core.submit_job(JobSpec(kind="tcp", targets=("a.example:1", "b.example:1")))
        tasks = []
        while len(tasks) < 2:
            msg = await asyncio.wait_for(call.read(), 10)
            if msg.HasField("assign"):
                tasks.append(msg.assign)

        def result(a: pb.TaskAssignment) -> pb.AgentMessage:
            r = pb.TaskResult(task_id=a.task_id, job_id=a.job_id, agent_id="de-1", started_at=time.time() - 1,
                              finished_at=time.time())  # fmt: skip
            r.result.kind, r.result.target, r.result.duration_s = "tcp", a.target, 0.01
            return pb.AgentMessage(results=pb.ResultBatch(results=[r]))

        await call.write(result(tasks[0]))
        await asyncio.wait_for(held.wait(), 10)
        await call.write(result(tasks[1]))
        first = await asyncio.wait_for(call.read(), 10)
        assert list(first.ack.task_ids) == [tasks[1].task_id]  # the second batch, committed
        release.set()
        second = await asyncio.wait_for(call.read(), 10)
        assert list(second.ack.task_ids) == [tasks[0].task_id]
        call.cancel()


def test_queued_messages_go_out_as_few_writes_in_order() -> None:
    """Acks merged (sent last), consecutive assignments batched for an agent that reads
    AssignBatch, a cancel after the assignments before it; one by one otherwise."""
    def assignment(i: int) -> Assignment:
        return Assignment(task_id=f"t{i}", job_id="0123456789abcdef", kind="tcp", target=f"h{i}:1",
                          options={}, not_before=0.0, deadline=1.0)  # fmt: skip

    queued = [assignment(1), Acknowledgement(task_ids=("r1",)), assignment(2), Cancellation(task_id="t1", reason="x"),
              assignment(3), Acknowledgement(task_ids=("r2", "r3"))]  # fmt: skip
    out = outgoing_batch_to_pb(queued, assign_batches=True)
    assert [m.WhichOneof("body") for m in out] == ["assign_batch", "cancel", "assign", "ack"]
    assert [t.task_id for t in out[0].assign_batch.tasks] == ["t1", "t2"] and out[2].assign.task_id == "t3"
    assert list(out[3].ack.task_ids) == ["r1", "r2", "r3"]
    plain = outgoing_batch_to_pb(queued, assign_batches=False)
    assert [m.WhichOneof("body") for m in plain] == ["assign", "assign", "cancel", "assign", "ack"]
    many = outgoing_batch_to_pb([assignment(i) for i in range(2500)], assign_batches=True)
    assert [len(m.assign_batch.tasks) for m in many] == [1000, 1000, 500]


def test_an_assign_batch_stays_far_under_the_agents_receive_limit() -> None:
    """Options may make an assignment ~68 KB: batches are cut at 4 MiB too."""
    big = {f"o{i}": "x" * 2048 for i in range(32)}
    queued = [Assignment(task_id=f"t{i}", job_id="0123456789abcdef", kind="tcp", target=f"h{i}:1", options=big,
                         not_before=0.0, deadline=1.0) for i in range(200)]  # fmt: skip
    out = outgoing_batch_to_pb(queued, assign_batches=True)
    assert sum(len(m.assign_batch.tasks) or 1 for m in out) == 200 and len(out) > 1
    assert all(m.ByteSize() <= 4 * 1024 * 1024 + 1024 for m in out)
