"""The agent's session on a fake clock against a fake coordinator stream: hello, the
backoff between failed attempts (and its reset after a healthy session), resending
unacked results after RESEND_AFTER_S, acks, heartbeats, assignments and the drain."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from agent.outbox import Outbox
from agent.probes.base import Limits, ProbeOutcome
from agent.session import (
    HEALTHY_SESSION_S,
    RESEND_AFTER_S,
    Agent,
    AgentConfig,
    backoff_delay,
    heartbeat_interval,
)
from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from tests.fakes import REAL_WAIT_S, FakeClock, FakeCoordinator, FakeStream, expect

BASE, CAP = 0.5, 4.0


def result_blob(task_id: str) -> bytes:
    return pb.TaskResult(
        task_id=task_id, job_id="0123456789abcdef", agent_id="de-1", started_at=1.0,
        finished_at=2.0, result=pb.ProbeResult(kind="tcp", target="h:1", duration_s=0.1),
    ).SerializeToString()


@dataclass
class Rig:
    agent: Agent
    clock: FakeClock
    coord: FakeCoordinator
    run: asyncio.Task[None]


async def start(tmp_path: Path, *, held: tuple[str, ...] = (), probe: Any = None,
                failures: int = 0, seed: int = 7, coordinator: str = "fake:1") -> Rig:
    if held:  # results a previous run left in the outbox
        box = Outbox(tmp_path / "state" / "outbox")
        box.load()
        for task_id in held:
            await box.put(task_id, result_blob(task_id))
    clock = FakeClock()
    coord = FakeCoordinator(clock)
    coord.failures = [ConnectionRefusedError("connection refused")] * failures
    config = AgentConfig(
        coordinator=coordinator, region="de", agent_id="de-1", state_dir=tmp_path / "state",
        country="DE", asn=3320, labels={"tier": "vps"}, concurrency=3,
        backoff_base_s=BASE, backoff_cap_s=CAP, drain_s=10.0,
        limits=Limits(allow_private_targets=True),
    )
    agent = Agent(config, clock=clock, connect=coord.connect, probe=probe, rng=random.Random(seed))
    return Rig(agent, clock, coord, asyncio.create_task(agent.run()))


async def through_failures(rig: Rig, n: int) -> list[float]:
    """Let the agent's first ``n`` connection attempts fail, moving the clock through each
    backoff wait as soon as the agent arms it; the waits."""
    waits = []
    for attempt in range(1, n + 1):
        await rig.coord.attempt(attempt)
        (wait,) = await rig.clock.armed(count=1)
        waits.append(wait)
        rig.clock.advance(wait)
    return waits


@pytest.fixture
async def stopper() -> AsyncIterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for rig in rigs:
        if not rig.run.done():
            rig.run.cancel()
        await asyncio.gather(rig.run, return_exceptions=True)


async def test_hello_says_who_the_agent_is_and_what_it_holds(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, held=("t-held",))
    stopper.append(rig)
    stream, hello = await rig.coord.accept()
    assert (hello.agent_id, hello.region, hello.country, hello.asn) == ("de-1", "de", "DE", 3320)
    assert dict(hello.labels) == {"tier": "vps"} and hello.concurrency == 3
    assert list(hello.kinds) == ["dns", "tcp", "tls", "http", "throughput", "ping", "traceroute"]
    assert list(hello.held_task_ids) == ["t-held"]
    async with asyncio.timeout(REAL_WAIT_S):
        await rig.agent.connected.wait()
    # what the outbox held goes out at once
    batch = await expect(stream, "results")
    assert [r.task_id for r in batch.results.results] == ["t-held"]


async def test_failed_attempts_back_off_exponentially_with_jitter_up_to_the_cap(
    tmp_path: Path, stopper: list[Rig]
) -> None:
    with capture_logs() as logs:
        rig = await start(tmp_path, failures=7)
        stopper.append(rig)
        waits = await through_failures(rig, 7)
        await rig.coord.attempt(8)  # the eighth attempt opens a stream
        await rig.coord.accept()
    gaps = [b - a for a, b in zip(rig.coord.attempts, rig.coord.attempts[1:], strict=False)]
    assert gaps == pytest.approx(waits)
    for attempt, gap in enumerate(gaps):
        ceiling = min(CAP, BASE * 2**attempt)
        assert ceiling / 2 <= gap <= ceiling, (attempt, gap)
    assert gaps[-1] <= CAP and gaps[-2] >= CAP / 2, "capped, still jittered"
    assert len(set(gaps[-3:])) == 3, "jitter: no two agents retry in lockstep"
    retries = [e for e in logs if e["event"] == "coordinator_unreachable"]
    assert len(retries) == 7
    assert retries[0]["reason"] == "ConnectionRefusedError: connection refused"
    assert [r["retry_in_s"] for r in retries] == [round(w, 2) for w in waits]


async def test_a_fleet_of_coordinators_is_tried_in_turn_and_the_backoff_grows_per_round(
    tmp_path: Path, stopper: list[Rig]
) -> None:
    fleet = ["c1:50051", "c2:50051", "c3:50051"]
    with capture_logs() as logs:
        rig = await start(tmp_path, failures=6, coordinator=",".join(fleet))
        stopper.append(rig)
        dialled = [rig.agent.current]
        waits = []
        for attempt in range(1, 7):
            await rig.coord.attempt(attempt)
            (wait,) = await rig.clock.armed(count=1)
            waits.append(wait)
            dialled.append(rig.agent.current)  # the next attempt's coordinator
            rig.clock.advance(wait)
        await rig.coord.attempt(7)
        _stream, _ = await rig.coord.accept()
        async with asyncio.timeout(REAL_WAIT_S):
            await rig.agent.connected.wait()
    start_at = fleet.index(dialled[0])
    assert dialled == [fleet[(start_at + i) % 3] for i in range(7)], "each in turn, from where it began"
    # one backoff step per round of the whole fleet: three waits near the base, three near twice it
    for i, wait in enumerate(waits):
        ceiling = min(CAP, BASE * 2 ** (i // 3))
        assert ceiling / 2 <= wait <= ceiling, (i, wait)
    retries = [e for e in logs if e["event"] == "coordinator_unreachable"]
    assert [(r["coordinator"], r["next"]) for r in retries] == list(itertools.pairwise(dialled))
    connected = [e for e in logs if e["event"] == "connected"]
    assert connected[-1]["coordinator"] == dialled[-1]


async def test_agents_spread_over_a_fleet_from_a_random_start(tmp_path: Path) -> None:
    from agent.session import Agent as _Agent

    starts = set()
    for seed in range(20):
        config = AgentConfig(coordinator="c1:1,c2:1,c3:1", region="de", agent_id="de-1",
                             state_dir=tmp_path / f"s{seed}")  # fmt: skip
        starts.add(_Agent(config, rng=random.Random(seed)).current)
    assert starts == {"c1:1", "c2:1", "c3:1"}


async def test_a_healthy_session_resets_the_backoff(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, failures=4)
    stopper.append(rig)
    await through_failures(rig, 4)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    async with asyncio.timeout(REAL_WAIT_S):
        await rig.agent.connected.wait()
    rig.clock.advance(HEALTHY_SESSION_S + 1)  # a long, healthy session, then it breaks
    stream.inbound.put_nowait(None)
    (wait,) = await rig.clock.armed(where=lambda d: d <= CAP)
    # attempt 0 again: [BASE/2, BASE], not the capped [2, 4] range it had reached
    assert BASE / 2 <= wait <= BASE, wait
    rig.clock.advance(wait)
    await rig.coord.attempt(6)


async def test_a_short_session_does_not_reset_the_backoff(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, failures=3)
    stopper.append(rig)
    await through_failures(rig, 3)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    async with asyncio.timeout(REAL_WAIT_S):
        await rig.agent.connected.wait()
    stream.inbound.put_nowait(None)  # it breaks at once
    (wait,) = await rig.clock.armed(where=lambda d: d <= CAP)
    # the fourth failure in a row: d = min(CAP, BASE * 2**3) = 4 -> [2, 4]
    assert 2.0 <= wait <= 4.0, wait
    rig.clock.advance(wait)
    await rig.coord.attempt(5)


async def test_unacked_results_go_again_after_resend_after_s(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, held=("t1", "t2"))
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    first = await expect(stream, "results")
    assert [r.task_id for r in first.results.results] == ["t1", "t2"]
    # The sender checks for stale results every RESEND_AFTER_S / 2.
    await rig.clock.armed(RESEND_AFTER_S / 2)
    rig.clock.advance(RESEND_AFTER_S / 2)
    await rig.clock.armed(RESEND_AFTER_S / 2)  # it checked, found nothing stale, waits again
    assert stream.sent.empty(), "sent only 30 s ago: not yet resent"
    stream.inbound.put_nowait(pb.CoordinatorMessage(ack=pb.Ack(task_ids=["t1"])))
    async with asyncio.timeout(REAL_WAIT_S):
        while "t1" in rig.agent.outbox:
            await rig.agent._progress.wait()
    rig.clock.advance(RESEND_AFTER_S / 2)
    again = await expect(stream, "results")
    assert [r.task_id for r in again.results.results] == ["t2"], "t1 was acked"
    assert rig.agent.outbox.task_ids() == ["t2"]


async def test_heartbeats_carry_the_runner_and_outbox_state(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, held=("t1",))
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=5.0)
    await expect(stream, "results")
    await rig.clock.armed(5.0)
    rig.clock.advance(5.0)
    beat = (await expect(stream, "heartbeat")).heartbeat
    assert (beat.running, beat.outbox, beat.outbox_dropped) == (0, 1, 0)
    assert beat.sent_at == pytest.approx(rig.clock.time())


async def test_an_assignment_runs_and_its_result_is_sent_then_acked(tmp_path: Path, stopper: list[Rig]) -> None:
    seen: list[str] = []

    async def probe(spec: Any, limits: Limits) -> ProbeOutcome:
        seen.append(spec.target)
        return ProbeOutcome(kind="tcp", target=spec.target, failure="connection_refused",
                            failure_detail="refused", duration_s=0.01)

    rig = await start(tmp_path, probe=probe)
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    now = rig.clock.time()
    stream.inbound.put_nowait(pb.CoordinatorMessage(assign=pb.TaskAssignment(
        task_id="job1-0-0-aa", job_id="0123456789abcdef", kind="tcp", target="192.0.2.1:80",
        not_before=now, deadline=now + 30)))
    msg = await expect(stream, "results")
    (result,) = msg.results.results
    assert (result.task_id, result.agent_id, failure_name(result.result.failure)) == ("job1-0-0-aa", "de-1", "connection_refused")
    assert seen == ["192.0.2.1:80"]
    assert rig.agent.outbox.task_ids() == ["job1-0-0-aa"]
    stream.inbound.put_nowait(pb.CoordinatorMessage(ack=pb.Ack(task_ids=["job1-0-0-aa"])))
    async with asyncio.timeout(REAL_WAIT_S):
        while len(rig.agent.outbox):
            await rig.agent._progress.wait()
    assert list((tmp_path / "state" / "outbox").glob("*.result")) == []


async def test_a_cancel_message_stops_the_task(tmp_path: Path, stopper: list[Rig]) -> None:
    started = asyncio.Event()

    async def probe(spec: Any, limits: Limits) -> ProbeOutcome:
        started.set()
        await asyncio.Event().wait()  # never ends by itself
        raise AssertionError("unreachable")

    rig = await start(tmp_path, probe=probe)
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    now = rig.clock.time()
    stream.inbound.put_nowait(pb.CoordinatorMessage(assign=pb.TaskAssignment(
        task_id="c-1", job_id="0123456789abcdef", kind="tcp", target="192.0.2.1:80",
        not_before=now, deadline=now + 30)))
    async with asyncio.timeout(REAL_WAIT_S):
        await started.wait()
    stream.inbound.put_nowait(pb.CoordinatorMessage(cancel=pb.CancelTask(task_id="c-1")))
    assert await rig.agent.runner.wait_idle(REAL_WAIT_S)
    assert len(rig.agent.outbox) == 0


async def test_shutdown_drains_waits_for_acks_and_ends(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, held=("t1",))
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    await expect(stream, "results")
    rig.agent.shutdown()
    stream.inbound.put_nowait(pb.CoordinatorMessage(ack=pb.Ack(task_ids=["t1"])))
    async with asyncio.timeout(REAL_WAIT_S):
        await rig.run
    assert len(rig.agent.outbox) == 0 and stream.closed.is_set()
    assert len(rig.coord.attempts) == 1, "no reconnect after a shutdown"


async def test_shutdown_gives_up_on_acks_after_drain_s(tmp_path: Path, stopper: list[Rig]) -> None:
    rig = await start(tmp_path, held=("t1",))
    stopper.append(rig)
    stream, _ = await rig.coord.accept(heartbeat_interval_s=300.0)
    await expect(stream, "results")
    rig.agent.shutdown()
    await rig.clock.armed(10.0)  # the drain's bound on waiting for the ack
    rig.clock.advance(10.0)
    async with asyncio.timeout(REAL_WAIT_S):
        await rig.run
    assert rig.agent.outbox.task_ids() == ["t1"], "kept for the next start"


async def test_a_stream_that_ends_before_welcome_is_retried(tmp_path: Path, stopper: list[Rig]) -> None:
    with capture_logs() as logs:
        rig = await start(tmp_path)
        stopper.append(rig)
        async with asyncio.timeout(REAL_WAIT_S):
            stream: FakeStream = await rig.coord.streams.get()
        await expect(stream, "hello")
        stream.inbound.put_nowait(None)
        await rig.coord.attempt(1)
        (wait,) = await rig.clock.armed(count=1)
        rig.clock.advance(wait)
        await rig.coord.attempt(2)
    assert any(
        e["event"] == "coordinator_unreachable"
        and e["reason"] == "ConnectionError: coordinator closed the stream before welcome"
        for e in logs
    )


def test_backoff_delay_bounds() -> None:
    rng = random.Random(1)
    for attempt in range(40):
        d = backoff_delay(attempt, 0.5, 30.0, rng)
        ceiling = min(30.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= d <= ceiling


def test_the_welcome_heartbeat_interval_is_taken_only_within_bounds() -> None:
    assert heartbeat_interval(10.0, 5.0) == 10.0
    assert heartbeat_interval(0.5, 5.0) == 0.5 and heartbeat_interval(300.0, 5.0) == 300.0
    for offered in (0.0, -1.0, 0.1, 301.0, math.nan, math.inf):
        assert heartbeat_interval(offered, 5.0) == 5.0, offered


async def test_a_refusal_with_a_retry_hint_waits_at_least_that_long(tmp_path: Path, stopper: list[Rig]) -> None:
    """A coordinator shedding new streams (coordinator/admission.py) says when to come back:
    the agent waits that long rather than its first backoff step (at most BASE)."""
    rig = await start(tmp_path)
    busy = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(),
        grpc.aio.Metadata(("vantage-retry-after-ms", "17250")), details="coordinator overloaded",
    )  # fmt: skip
    rig.coord.failures = [busy, ConnectionRefusedError("refused")]
    stopper.append(rig)
    with capture_logs() as logs:
        waits = await through_failures(rig, 2)
        await rig.coord.attempt(3)
        await rig.coord.accept()
    assert waits[0] == 17.25
    assert BASE <= waits[1] <= 2 * BASE  # no hint: the backoff alone (second step)
    [first, _] = [e for e in logs if e["event"] == "coordinator_unreachable"]
    assert first["reason"] == "RESOURCE_EXHAUSTED: coordinator overloaded" and first["retry_in_s"] == 17.25


async def test_an_assign_batch_runs_each_of_its_tasks(tmp_path: Path, stopper: list[Rig]) -> None:
    """The agent says in its hello that it reads AssignBatch, and runs every task of one."""
    seen: list[str] = []

    async def probe(spec: Any, limits: Limits) -> ProbeOutcome:
        seen.append(spec.target)
        return ProbeOutcome(kind="tcp", target=spec.target, duration_s=0.01)

    rig = await start(tmp_path, probe=probe)
    stopper.append(rig)
    stream, hello = await rig.coord.accept(heartbeat_interval_s=300.0)
    assert hello.assign_batches
    now = rig.clock.time()
    tasks = [pb.TaskAssignment(task_id=f"job1-0-{i}-aa", job_id="0123456789abcdef", kind="tcp",
                               target=f"192.0.2.{i + 1}:80", not_before=now, deadline=now + 30) for i in range(3)]  # fmt: skip
    stream.inbound.put_nowait(pb.CoordinatorMessage(assign_batch=pb.AssignBatch(tasks=tasks)))
    got: list[str] = []
    while len(got) < 3:
        msg = await expect(stream, "results")
        got.extend(r.task_id for r in msg.results.results)
    assert sorted(got) == [t.task_id for t in tasks]
    assert sorted(seen) == ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"]
