"""The coordinator core on a real store, without sockets (one test adds a real gRPC server):
lost agents, the per-agent outgoing queue, watcher overflow, failed writes, the start-up
grace after a restart and grouping by ASN. Time is a hand-driven clock and ``run_due`` is
called explicitly: nothing here waits on the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from coordinator import core as core_module
from coordinator import registry as registry_module
from coordinator import watch as watch_module
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.metrics import build_registry
from coordinator.model import (
    AgentInfo,
    Assignment,
    JobSpec,
    ProbeResultData,
    Selector,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.registry import Session
from coordinator.server import CoordinatorServer, ServerConfig
from coordinator.store import PutJob, PutTask, SQLiteStore
from coordinator.watch import WatchEvent
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

T0 = 1_000_000.0
PEER = "ipv4:127.0.0.1:1"


class ManualClock:
    """The coordinator's clock, moved only by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_core(store: SQLiteStore, clock: ManualClock, **config: Any) -> Coordinator:
    return Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(**config), clock=clock)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "v.db")
    yield s
    await s.close()


def agent(agent_id: str, region: str, asn: int = 0) -> AgentInfo:
    return AgentInfo(agent_id=agent_id, region=region, asn=asn, kinds=("tcp",))


def result_for(task: Task, agent_id: str, *, at: float, failure: str = "") -> TaskResultData:
    return TaskResultData(
        task_id=task.task_id, job_id=task.job_id, agent_id=agent_id, started_at=at - 0.1, finished_at=at,
        raw=pb.TaskResult(task_id=task.task_id, job_id=task.job_id).SerializeToString(),
        result=ProbeResultData(kind="tcp", target=task.target, failure=failure, failure_detail="",
                               duration_s=0.1, data={}),
    )


def queued(session: Session) -> list[Any]:
    """Everything waiting in a session's outgoing queue, in order (the queue is emptied)."""
    return [session.outgoing.get_nowait() for _ in range(session.outgoing.qsize())]


def assigned_ids(session: Session) -> list[str]:
    return [m.task_id for m in queued(session) if isinstance(m, Assignment)]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# ---------------------------------------------------------------------- lost agents


async def test_silent_agent_is_lost_and_its_task_goes_to_an_agent_of_the_same_region(
    store: SQLiteStore, clock: ManualClock
) -> None:
    core = make_core(store, clock, heartbeat_interval_s=5.0, heartbeat_misses=3, reassign_after_s=10.0)
    lost = core.agent_connected(agent("de-1", "de"), PEER, [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",), timeout_s=300))
    [task] = core.book.tasks.values()
    assert task.agent_id == "de-1" and task.state is TaskState.ASSIGNED
    assert assigned_ids(lost) == [task.task_id]

    with capture_logs() as logs:
        clock.now = T0 + 15.5  # silent for longer than 5 s x 3
        core.run_due(clock.now)
    assert not core.registry.is_connected("de-1")
    assert lost.closed.is_set() and queued(lost) == [None]  # the writer loop's stop sentinel
    [ev] = events(logs, "agent_lost")
    assert ev["agent_id"] == "de-1" and ev["reason"] == "no heartbeat for 15s"
    # Its task waits reassign_after_s for the agent to come back ...
    clock.now = T0 + 15.5 + 9.5
    core.run_due(clock.now)
    assert task.state is TaskState.ASSIGNED and task.agent_id == "de-1"
    # ... then goes back to pending; no other agent is connected yet.
    clock.now = T0 + 15.5 + 10.0
    core.run_due(clock.now)
    assert task.state is TaskState.PENDING and task.reason == "no matching agent connected"

    # An agent of another region that sorts first by id, and one of the same region.
    other_region = core.agent_connected(agent("at-1", "at"), PEER, [])
    same_region = core.agent_connected(agent("de-2", "de"), PEER, [])
    with capture_logs() as logs:
        core.run_due(clock.now)
    assert task.state is TaskState.ASSIGNED and task.agent_id == "de-2" and task.region == "de"
    assert task.attempts == 2
    assert assigned_ids(same_region) == [task.task_id] and assigned_ids(other_region) == []
    [ev] = events(logs, "task_reassigned")
    assert ev["from_agent"] == "de-1" and ev["agent_id"] == "de-2" and ev["job_id"] == job.job_id
    await core.flush()
    [stored] = await store.load_open_tasks()
    assert (stored.task_id, stored.agent_id, stored.state, stored.attempts) == (
        task.task_id, "de-2", TaskState.ASSIGNED, 2)


async def test_heartbeat_just_inside_the_limit_keeps_the_session(
    store: SQLiteStore, clock: ManualClock
) -> None:
    core = make_core(store, clock, heartbeat_interval_s=5.0, heartbeat_misses=3)
    session = core.agent_connected(agent("de-1", "de"), PEER, [])
    clock.now = T0 + 10.0
    core.heartbeat(session, running=1, outbox=0)
    # Exactly the limit (15 s) after the last heartbeat is not lost: the rule is "> limit".
    # Without that heartbeat the agent would be 25 s silent here.
    clock.now = T0 + 25.0
    with capture_logs() as logs:
        core.run_due(clock.now)
    assert core.registry.session("de-1") is session and not session.closed.is_set()
    assert events(logs, "agent_lost") == []
    clock.now = T0 + 25.5
    with capture_logs() as logs:
        core.run_due(clock.now)
    assert not core.registry.is_connected("de-1") and session.closed.is_set()
    assert [e["reason"] for e in events(logs, "agent_lost")] == ["no heartbeat for 15s"]


async def test_time_the_coordinator_stalled_is_not_counted_as_an_agents_silence(
    store: SQLiteStore, clock: ManualClock
) -> None:
    """While the event loop could not run (a late tick: coordinator/server.py ``_every``),
    no stream was read: that time does not count towards the heartbeat limit."""
    core = make_core(store, clock, heartbeat_interval_s=5.0, heartbeat_misses=3)
    session = core.agent_connected(agent("de-1", "de"), PEER, [])
    core.note_stall(100.0)  # before it was last seen: irrelevant
    clock.now = T0 + 2.0
    core.heartbeat(session, running=0, outbox=0)
    core.note_stall(6.0)  # the loop was blocked 6 s after that heartbeat
    clock.now = T0 + 2.0 + 21.0  # 21 s without a message, 6 of them stalled: 15 s silent
    with capture_logs() as logs:
        core.run_due(clock.now)
    assert core.registry.session("de-1") is session and events(logs, "agent_lost") == []
    clock.now = T0 + 2.0 + 21.5
    with capture_logs() as logs:
        core.run_due(clock.now)
    assert not core.registry.is_connected("de-1")
    assert [e["reason"] for e in events(logs, "agent_lost")] == ["no heartbeat for 15s"]


async def test_an_expensive_full_pass_is_spaced_out_but_a_new_round_still_goes_out_at_once(
    store: SQLiteStore, clock: ManualClock
) -> None:
    """With many tasks open the pass over all of them (deadlines, lost agents, due tasks)
    is spaced by its cost (Coordinator._full_pass); a round created between two passes is
    dispatched at once all the same, counted against the agents' assigned tasks."""
    core = make_core(store, clock, reassign_after_s=10.0, heartbeat_interval_s=60.0)
    busy = dataclasses.replace(agent("de-1", "de"), concurrency=1)
    s1 = core.agent_connected(busy, PEER, [])
    s2 = core.agent_connected(agent("de-2", "de"), PEER, [])
    one_off = await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",), timeout_s=5,
                                            selector=Selector(agent_ids=("de-1",))))  # fmt: skip
    [held] = [t for t in core.book.tasks.values() if t.job_id == one_off.job_id]
    assert held.state is TaskState.ASSIGNED and assigned_ids(s1) == [held.task_id]
    # The last pass cost 1 s and just ended: the next waits 1 / FULL_PASS_SHARE = 5 s.
    core._full_pass_cost, core._full_pass_end = 1.0, time.perf_counter()
    periodic = await core.submit_job(JobSpec(kind="tcp", targets=("p.example:1",), every_s=60, count=2))
    clock.now = T0 + 5 + 10 + 1  # past the held task's deadline and grace
    core.run_due(clock.now)
    new = {t.agent_id: t for t in core.book.tasks.values() if t.job_id == periodic.job_id}
    # de-2's task of the new round went out; de-1's waits: its one slot is taken
    assert new["de-2"].state is TaskState.ASSIGNED and assigned_ids(s2) == [new["de-2"].task_id]
    assert new["de-1"].state is TaskState.PENDING and assigned_ids(s1) == []
    assert held.state is TaskState.ASSIGNED  # not yet failed: that is the full pass's
    core._full_pass_end = time.perf_counter() - 1.0 / core_module.FULL_PASS_SHARE
    core.run_due(clock.now)
    assert held.state is TaskState.FAILED and held.reason == "no result by the deadline"
    core.run_due(clock.now)  # cheap now (a pass of 2 tasks): it runs, and uses the freed slot
    assert new["de-1"].state is TaskState.ASSIGNED and assigned_ids(s1) == [new["de-1"].task_id]


async def test_a_task_a_reconnected_agent_no_longer_holds_goes_out_again_between_full_passes(
    store: SQLiteStore, clock: ManualClock
) -> None:
    core = make_core(store, clock, heartbeat_interval_s=60.0)
    first = core.agent_connected(agent("de-1", "de"), PEER, [])
    await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",)))
    [task] = core.book.tasks.values()
    assert assigned_ids(first) == [task.task_id]
    core._full_pass_cost, core._full_pass_end = 1.0, time.perf_counter()  # the next full pass: 5 s away
    again = core.agent_connected(agent("de-1", "de"), PEER, [])  # back, holding nothing
    assert task.state is TaskState.PENDING
    core.run_due(clock.now)
    assert task.state is TaskState.ASSIGNED and assigned_ids(again) == [task.task_id]


# ---------------------------------------------------------------------- outgoing queue


async def test_agent_that_stops_reading_is_cut_off_and_its_tasks_reassigned(
    store: SQLiteStore, clock: ManualClock
) -> None:
    core = make_core(store, clock, reassign_after_s=10.0)
    slow = core.agent_connected(agent("de-1", "de"), PEER, [])
    await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",), timeout_s=300))
    [task] = core.book.tasks.values()
    assert slow.outgoing.qsize() == 1  # the assignment, never read
    filler = pb.CoordinatorMessage(ack=pb.Ack(task_ids=["x"]))
    with capture_logs() as logs:
        for _ in range(registry_module.MAX_OUTGOING - 1):
            slow.send(filler)
        assert slow.outgoing.qsize() == registry_module.MAX_OUTGOING
        assert not slow.closed.is_set() and events(logs, "agent_not_reading") == []
        last = pb.CoordinatorMessage(ack=pb.Ack(task_ids=["the one over the limit"]))
        slow.send(last)
        slow.send(last)  # sending to a closed session changes nothing more
    assert slow.closed.is_set()
    [ev] = events(logs, "agent_not_reading")
    assert ev["agent_id"] == "de-1" and ev["queued"] == registry_module.MAX_OUTGOING
    waiting = queued(slow)
    assert len(waiting) == registry_module.MAX_OUTGOING + 1 and waiting[-1] is None
    assert all(m is not last for m in waiting)
    assert waiting[0].task_id == task.task_id

    # The server's writer loop ends on the sentinel and reports the disconnect.
    core.agent_disconnected(slow, "session closed by coordinator")
    other = core.agent_connected(agent("de-2", "de"), PEER, [])
    clock.now = T0 + 9.0
    core.run_due(clock.now)
    assert task.agent_id == "de-1" and assigned_ids(other) == []  # still in the grace
    clock.now = T0 + 10.0
    core.heartbeat(other, running=0, outbox=0)
    core.run_due(clock.now)
    assert task.agent_id == "de-2" and task.state is TaskState.ASSIGNED
    assert assigned_ids(other) == [task.task_id]


# ---------------------------------------------------------------------- watchers


async def test_watcher_that_falls_behind_is_dropped_with_an_overflow_event(
    store: SQLiteStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_module, "MAX_WATCH_BACKLOG", 3)  # instead of 10,000 results
    core = make_core(store, clock)
    session = core.agent_connected(agent("de-1", "de"), PEER, [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=tuple(f"h{i}.example:1" for i in range(5))))
    tasks = sorted(core.book.tasks.values(), key=lambda t: t.task_id)
    stalled = core.watchers.watch(job.job_id)
    reading = core.watchers.watch(job.job_id)
    read: list[WatchEvent] = []
    for task in tasks:
        out = await core.ingest(session, [result_for(task, "de-1", at=T0)])
        assert out.accepted == 1
        while not reading.empty():
            read.append(reading.get_nowait())
    backlog = [stalled.get_nowait() for _ in range(stalled.qsize())]
    # three results, then the overflow marker instead of the fourth; nothing after it
    assert [e.result.task_id for e in backlog[:3] if e.result] == [t.task_id for t in tasks[:3]]
    assert len(backlog) == 4 and backlog[3].overflow and backlog[3].result is None
    assert core.watchers._queues[job.job_id] == {reading}
    assert [e.result.task_id for e in read if e.result] == [t.task_id for t in tasks]
    assert not any(e.overflow for e in read)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[CoordinatorServer]:
    """A real coordinator on 127.0.0.1 port 0, stopped the way ``run()`` stops it."""
    server = CoordinatorServer(
        ServerConfig(listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", db=str(tmp_path / "v.db"))
    )
    await server.start()
    loops = server.start_loops()
    try:
        yield server
    finally:
        server.shutdown()
        await server._drain(loops)


async def test_watch_stream_that_falls_behind_ends_with_resource_exhausted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(tmp_path) as server:
        core = server.core
        core.agent_connected(agent("de-1", "de"), PEER, [])
        registered = asyncio.Event()
        real_watch = core.watchers.watch

        def watch(job_id: str) -> asyncio.Queue[WatchEvent]:
            q = real_watch(job_id)
            registered.set()
            return q

        monkeypatch.setattr(core.watchers, "watch", watch)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.JobServiceStub(channel)
            spec = pb.JobSpec(kind="tcp", targets=["h.example:1"], every_s=60, count=100)
            job = await stub.SubmitJob(pb.SubmitJobRequest(spec=spec), timeout=10)
            received: list[Any] = []

            async def follow() -> None:
                call = stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id, follow=True), timeout=30)
                async for event in call:
                    received.append(event)

            reader = asyncio.create_task(follow())
            await asyncio.wait_for(registered.wait(), timeout=10)
            [queue] = core.watchers._queues[job.job_id]
            queue.put_nowait(WatchEvent(overflow=True))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(reader, timeout=10)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "read the stored results with follow=false" in (err.value.details() or "")
        assert received == []  # no stored result, and the job is still running
        assert core.watchers.watching(job.job_id) == 0  # the stream's queue is gone


# ---------------------------------------------------------------------- store failures


async def test_failed_queued_write_is_logged_with_error_and_op_count(
    store: SQLiteStore, clock: ManualClock
) -> None:
    core = make_core(store, clock)
    core.agent_connected(agent("de-1", "de"), PEER, [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",)))
    await core.flush()
    good = PutJob.of(dataclasses.replace(job, job_id="f" * 16))  # valid, in the same transaction
    bad = PutTask(Task(task_id="t-without-a-job", job_id=None, round=0, target="h:1", agent_id="a",  # type: ignore[arg-type]
                       region="de", state=TaskState.PENDING, due_at=0, deadline=1))  # job_id is NOT NULL
    with capture_logs() as logs:
        core._persist([good, bad])
        await core.flush()  # the failure callback runs before the barrier's
    [ev] = events(logs, "store_write_failed")
    assert ev["changes"] == 2 and ev["log_level"] == "error"
    assert "NOT NULL constraint failed: tasks.job_id" in ev["error"]
    stored = {j.job_id for j in await store.load_jobs()}
    assert "f" * 16 not in stored and len(stored) == 1  # the transaction was rolled back
    # The writer survived: the next queued write commits.
    with capture_logs() as logs:
        core._persist([good])
        await core.flush()
    assert events(logs, "store_write_failed") == []
    assert "f" * 16 in {j.job_id for j in await store.load_jobs()}


# ---------------------------------------------------------------------- start-up grace


async def prior_run(path: Path, clock: ManualClock) -> str:
    """A coordinator that knew agents de-1 and us-1 (seen at T0) and old-1 (seen 200 s
    before), with an open periodic job (a round every 10 s), stopped without goodbyes."""
    store = SQLiteStore(path)
    core = make_core(store, clock)
    clock.now = T0 - 200
    old = core.agent_connected(agent("old-1", "de"), PEER, [])
    core.agent_disconnected(old, "gone long ago")
    clock.now = T0
    for a in (agent("de-1", "de"), agent("us-1", "us")):
        core.agent_connected(a, PEER, [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",), every_s=10, count=100))
    assert job.rounds_done == 1 and len(core.book.tasks) == 2
    await core.flush()
    await store.close()
    return job.job_id


def round_agents(core: Coordinator, job_id: str, round_no: int) -> set[str]:
    return {t.agent_id for t in core.book.tasks.values() if t.job_id == job_id and t.round == round_no}


async def test_restart_waits_for_recently_seen_agents_before_new_rounds(
    tmp_path: Path, clock: ManualClock
) -> None:
    job_id = await prior_run(tmp_path / "v.db", clock)
    clock.now = T0 + 30  # restarted 30 s later; round 1 was due at T0 + 10
    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = make_core(store, clock, startup_grace_s=20.0)
        await core.load()
        job = core.book.jobs[job_id]
        assert job.rounds_done == 1 and job.next_round_at == T0 + 10
        core.run_due(clock.now)
        assert job.rounds_done == 1 and round_agents(core, job_id, 1) == set()
        clock.now += 1
        core.agent_connected(agent("de-1", "de"), PEER, [])
        core.run_due(clock.now)
        assert job.rounds_done == 1  # us-1 is still awaited
        clock.now += 1
        core.agent_connected(agent("us-1", "us"), PEER, [])
        # old-1 (seen 232 s ago) never comes back, and is not waited for.
        core.run_due(clock.now)
        assert job.rounds_done == 2 and round_agents(core, job_id, 1) == {"de-1", "us-1"}
    finally:
        await store.close()


async def test_startup_grace_ends_after_startup_grace_s(tmp_path: Path, clock: ManualClock) -> None:
    job_id = await prior_run(tmp_path / "v.db", clock)
    clock.now = T0 + 30
    restarted = clock.now
    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = make_core(store, clock, startup_grace_s=20.0)
        await core.load()
        job = core.book.jobs[job_id]
        core.agent_connected(agent("de-1", "de"), PEER, [])  # us-1 does not come back
        clock.now = restarted + 19.5
        core.heartbeat(core.registry.session("de-1"), running=0, outbox=0)
        core.run_due(clock.now)
        assert job.rounds_done == 1
        clock.now = restarted + 20.0
        core.run_due(clock.now)
        assert job.rounds_done == 2 and round_agents(core, job_id, 1) == {"de-1"}
    finally:
        await store.close()


async def test_the_grace_counts_from_when_the_state_is_loaded_not_from_process_start(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A fleet member is created long before it takes the lease and loads the state: its
    start-up grace begins at the takeover."""
    job_id = await prior_run(tmp_path / "v.db", clock)
    clock.now = T0 - 3600  # it started an hour before the lease holder went
    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = make_core(store, clock, startup_grace_s=20.0)
        clock.now = T0 + 30  # it takes over now
        await core.load()
        core.run_due(clock.now)
        assert core.book.jobs[job_id].rounds_done == 1, "no round while the agents reconnect"
        clock.now += 19
        core.run_due(clock.now)
        assert core.book.jobs[job_id].rounds_done == 1
    finally:
        await store.close()


async def test_restart_with_only_long_gone_agents_does_not_wait(tmp_path: Path, clock: ManualClock) -> None:
    job_id = await prior_run(tmp_path / "v.db", clock)
    clock.now = T0 + 130  # de-1 and us-1 were last seen 130 s ago: not awaited either
    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = make_core(store, clock, startup_grace_s=20.0)
        await core.load()
        core.agent_connected(agent("de-1", "de"), PEER, [])
        core.run_due(clock.now)
        assert core.book.jobs[job_id].rounds_done == 2 and round_agents(core, job_id, 1) == {"de-1"}
    finally:
        await store.close()


# ---------------------------------------------------------------------- group_by


def scrape(core: Coordinator) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(generate_latest(build_registry(core)).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append({**s.labels, "value": str(s.value)})
    return out


@pytest.mark.parametrize(("group_by", "blocked_group", "clean_group"),
                         [("asn", "25159", "3320"), ("region", "ru", "de")])
async def test_results_are_grouped_by_the_configured_key(
    store: SQLiteStore, clock: ManualClock, group_by: str, blocked_group: str, clean_group: str
) -> None:
    core = make_core(store, clock, group_by=group_by)
    agents = [agent("ru-1", "ru", 25159), agent("ru-2", "ru", 25159),
              agent("de-1", "de", 3320), agent("de-2", "de", 3320)]
    sessions = {a.agent_id: core.agent_connected(a, PEER, []) for a in agents}
    target = "h.example:443"
    job = await core.submit_job(JobSpec(kind="tcp", targets=(target,), every_s=10, count=2))
    for rnd in range(2):
        if rnd:
            clock.now = T0 + 10
            for s in sessions.values():
                core.heartbeat(s, running=0, outbox=0)
            core.run_due(clock.now)
        for task in [t for t in core.book.tasks.values() if t.round == rnd]:
            failure = "connection_refused" if task.region == "ru" else ""
            out = await core.ingest(sessions[task.agent_id], [result_for(task, task.agent_id, at=clock.now,
                                                                         failure=failure)])
            assert out.accepted == 1
    assert job.tasks_done == 8
    core.analyzer.evaluate(clock.now)
    m = scrape(core)
    verdicts = {(s["region"], s["target"]): s["verdict"] for s in m["vantage_verdict_info"]}
    assert verdicts == {(blocked_group, target): "blocked", (clean_group, target): "ok"}
    blocked = {s["region"]: s["value"] for s in m["vantage_blocked"]}
    assert blocked == {blocked_group: "1.0", clean_group: "0.0"}
    assert [(s["region"], s["failure"]) for s in m["vantage_blocked_info"]] == [
        (blocked_group, "connection_refused")]
    success = {(s["region"], s["kind"]): s["value"] for s in m["vantage_success_ratio"]}
    assert success == {(blocked_group, "tcp"): "0.0", (clean_group, "tcp"): "1.0"}
