"""Ingestion rules on a real store, without sockets: exactly once, owner only, and
nothing changed when the write fails."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.auth import peer_is_loopback
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import (
    AgentInfo,
    JobSpec,
    JobState,
    ProbeResultData,
    TaskResultData,
    TaskState,
)
from coordinator.store import SQLiteStore
from coordinator.validation import InvalidJob, JobLimits, validate_job


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Coordinator]:
    store = SQLiteStore(tmp_path / "v.db")
    c = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig())
    yield c
    await store.close()


def result_for(task_id: str, job_id: str, agent_id: str) -> TaskResultData:
    return TaskResultData(
        task_id=task_id, job_id=job_id, agent_id=agent_id, started_at=1, finished_at=2,
        result=ProbeResultData(kind="tcp", target="h:1", failure="", failure_detail="", duration_s=0.1, data={}),
    )


async def started_job(core: Coordinator) -> tuple[list, str]:  # type: ignore[type-arg]
    sessions = [core.agent_connected(AgentInfo(agent_id=a, region="de", kinds=("tcp",)), "ipv4:127.0.0.1:1", [])
                for a in ("a", "b")]
    job = await core.submit_job(JobSpec(kind="tcp", targets=("h.example:1",)))
    return sessions, job.job_id


async def test_exactly_once_and_owner_only(core: Coordinator) -> None:
    (sa, sb), job_id = await started_job(core)
    tasks = {t.agent_id: t.task_id for t in core.book.tasks.values()}
    assert all(t.state is TaskState.ASSIGNED for t in core.book.tasks.values())
    ra = result_for(tasks["a"], job_id, "a")
    # b reports a's task: dropped (and acked so b's outbox drains)
    out = await core.ingest(sb, [ra])
    assert out.dropped == 1 and out.accepted == 0 and out.acked == (ra.task_id,)
    # a reports it twice at once (a re-sent batch racing the first): stored once
    first, second = await asyncio.gather(core.ingest(sa, [ra]), core.ingest(sa, [ra]))
    assert first.accepted + second.accepted == 1 and first.duplicates + second.duplicates == 1
    assert await core.store.count_results(job_id) == 1
    # and again after it left memory: recognised in the store
    again = await core.ingest(sa, [ra])
    assert again.duplicates == 1 and again.acked == (ra.task_id,)
    assert core.book.jobs[job_id].tasks_done == 1


async def test_failed_write_changes_nothing_and_acks_nothing(core: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    (sa, _sb), job_id = await started_job(core)
    task_id = next(t.task_id for t in core.book.tasks.values() if t.agent_id == "a")

    async def broken(ops: object) -> None:
        raise OSError("disk full")

    real = core.store.write
    monkeypatch.setattr(core.store, "write", broken)
    out = await core.ingest(sa, [result_for(task_id, job_id, "a")])
    assert out.acked == () and core.book.tasks[task_id].state is TaskState.ASSIGNED
    assert core.book.jobs[job_id].tasks_done == 0
    monkeypatch.setattr(core.store, "write", real)
    out = await core.ingest(sa, [result_for(task_id, job_id, "a")])  # the agent sends again
    assert out.acked == (task_id,) and task_id not in core.book.tasks and core.book.jobs[job_id].tasks_done == 1


async def test_a_copy_of_a_result_being_committed_is_acked_only_once_that_commit_succeeds(
    core: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of one agent are ingested at once (coordinator/services.py): a second copy
    of a result whose first copy is still committing must not be acked before that commit
    lands, and not at all if it fails (the agent would delete a result never stored)."""
    (sa, _sb), job_id = await started_job(core)
    task_id = next(t.task_id for t in core.book.tasks.values() if t.agent_id == "a")
    writing, release = asyncio.Event(), asyncio.Event()

    async def failing(ops: list) -> None:  # type: ignore[type-arg]
        writing.set()
        await release.wait()
        raise OSError("disk full")

    real = core.store.write
    monkeypatch.setattr(core.store, "write", failing)
    first = asyncio.ensure_future(core.ingest(sa, [result_for(task_id, job_id, "a")]))
    async with asyncio.timeout(5):
        await writing.wait()
    # The positive signal: the copy has started to wait on the first batch's commit (the
    # outcome ``Ingest`` keeps for a result being committed). Until then, not being done
    # would prove nothing.
    committing = core.ingest_results._committing[task_id]
    waits_on_it = asyncio.Event()
    real_shield = asyncio.shield

    def shield(arg):  # type: ignore[no-untyped-def]
        if arg is committing:
            waits_on_it.set()
        return real_shield(arg)

    monkeypatch.setattr(asyncio, "shield", shield)
    second = asyncio.ensure_future(core.ingest(sa, [result_for(task_id, job_id, "a")]))
    async with asyncio.timeout(5):
        await waits_on_it.wait()
    monkeypatch.setattr(asyncio, "shield", real_shield)
    assert not second.done(), "the copy waits for the first commit"
    release.set()
    a, b = await first, await second
    assert a.acked == () and b.acked == () and b.duplicates == 0
    assert core.book.tasks[task_id].state is TaskState.ASSIGNED and core.counters.duplicate == 0
    # the commit that lands: both copies acked, one stored, one counted a duplicate
    monkeypatch.setattr(core.store, "write", real)
    a2, b2 = await asyncio.gather(core.ingest(sa, [result_for(task_id, job_id, "a")]),
                                  core.ingest(sa, [result_for(task_id, job_id, "a")]))  # fmt: skip
    assert a2.acked == (task_id,) and b2.acked == (task_id,) and a2.duplicates + b2.duplicates == 1
    assert await core.store.count_results(job_id) == 1


async def test_cancel_while_a_result_commits(core: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    (sa, _sb), job_id = await started_job(core)
    task_id = next(t.task_id for t in core.book.tasks.values() if t.agent_id == "a")
    # Hold the commit at the store until the cancel has happened.
    writing, release = asyncio.Event(), asyncio.Event()
    real = core.store.write

    async def held(ops: list) -> None:  # type: ignore[type-arg]
        writing.set()
        await release.wait()
        await real(ops)

    monkeypatch.setattr(core.store, "write", held)
    ingest = asyncio.ensure_future(core.ingest(sa, [result_for(task_id, job_id, "a")]))
    async with asyncio.timeout(5):
        await writing.wait()  # the commit is in flight
    job = core.cancel_job(job_id)
    assert core.book.tasks[task_id].state is TaskState.DONE, "a committing task is left to land"
    release.set()
    out = await ingest
    assert job.state is JobState.CANCELLED and out.acked == (task_id,)
    assert await core.store.count_results(job_id) == 1


def test_peer_loopback_parsing() -> None:
    assert peer_is_loopback("ipv4:127.0.0.1:5000")
    assert peer_is_loopback("ipv6:%5B::1%5D:42834")  # how grpc reports it
    assert peer_is_loopback("ipv6:[::1]:42834")
    assert peer_is_loopback("ipv6:%5B::ffff:127.0.0.1%5D:1")
    assert not peer_is_loopback("ipv4:10.1.2.3:5000")
    assert not peer_is_loopback("ipv6:%5B2001:db8::1%5D:5")


@pytest.mark.parametrize("field", ["every_s", "until", "spread_s", "timeout_s"])
def test_nan_and_infinity_are_refused(field: str) -> None:
    agents = [AgentInfo(agent_id="a", region="de", kinds=("tcp",))]
    for bad in (math.nan, math.inf):
        spec = JobSpec(kind="tcp", targets=("h.example:1",), **{field: bad})  # type: ignore[arg-type]
        with pytest.raises(InvalidJob, match=f"spec.{field}: must be a finite number"):
            validate_job(spec, agents, JobLimits())
