"""Reading what any coordinator committed, each row exactly once (postgres_tail.py), on a
real PostgreSQL server: two stores write a job's results at once, a transaction takes its
sequence numbers early and commits late, and a tail that moves by commit horizons still
sees every result once; the follower's WatchJob (tail_watch.py) ends only once the job's
last results are readable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from coordinator import tail_watch
from coordinator.model import Job, JobSpec, JobState, ProbeResultData, TaskResultData
from coordinator.store import JobProgress, PutJob, PutResult
from coordinator.store.postgres import PostgresStore
from protos.vantage.v1 import vantage_pb2 as pb

JOB = Job(job_id="0123456789abcdef", spec=JobSpec(kind="tcp", targets=("a:1",)), state=JobState.RUNNING,
          created_at=1.0, next_round_at=1.0)  # fmt: skip


def result(task_id: str) -> TaskResultData:
    raw = pb.TaskResult(task_id=task_id, job_id=JOB.job_id, agent_id="de-1").SerializeToString()
    return TaskResultData(
        task_id=task_id, job_id=JOB.job_id, agent_id="de-1", started_at=1, finished_at=2, raw=raw,
        result=ProbeResultData(kind="tcp", target="a:1", failure="", failure_detail="", duration_s=0.1, data={}),
    )  # fmt: skip


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def test_a_tail_by_commit_horizon_sees_every_result_once_whoever_commits_first(
    stores: tuple[PostgresStore, PostgresStore], pg_url: str
) -> None:
    a, b = stores
    await a.write([PutJob.of(JOB)])
    seen: list[str] = []
    lo = 0
    hi = await a.tail_horizon()
    # A late transaction: takes its seq now, commits after b's rows with higher seqs.
    late = await psycopg.AsyncConnection.connect(pg_url)
    await late.execute(
        "INSERT INTO measurements (task_id, job_id, agent_id, received_at, result) VALUES ('late', %s, 'x', %s, %s)",
        (JOB.job_id, time.time(), result("late").raw),
    )

    async def writer(store: PostgresStore, prefix: str) -> None:
        for i in range(40):
            await store.write([PutResult(result(f"{prefix}{i}"), "de", time.time())])

    passes = 0  # the tail's completed reads, each up to the horizon taken after the one before
    passed = asyncio.Event()

    async def tail() -> None:
        nonlocal lo, hi, passes
        while len(seen) < 81:  # bounded below: wait_for
            seen.extend([pb.TaskResult.FromString(raw).task_id async for raw in a.tail_results(JOB.job_id, lo, hi)])
            lo, hi = hi, await a.tail_horizon()
            passes += 1
            passed.set()
            await asyncio.sleep(0.01)

    reading = asyncio.create_task(tail())
    await asyncio.gather(writer(a, "a"), writer(b, "b"))
    max_seq = (await a._query("SELECT max(seq) FROM measurements"))[0][0]
    # Wait for a read over a horizon taken after every row with a seq past the late row's
    # was committed: pass mark+1 took its horizon after this point, pass mark+2 read up to it.
    mark = passes
    async with asyncio.timeout(20):
        while passes < mark + 2 and not reading.done():
            passed.clear()
            await asyncio.wait([asyncio.ensure_future(passed.wait()), reading], return_when=asyncio.FIRST_COMPLETED)
    assert "late" not in seen, "a row read before its transaction committed"
    await late.commit()
    await late.close()
    await asyncio.wait_for(reading, 20)
    assert sorted(seen) == sorted(["late", *(f"a{i}" for i in range(40)), *(f"b{i}" for i in range(40))])
    late_seq = (await a._query("SELECT seq FROM measurements WHERE task_id = 'late'"))[0][0]
    assert late_seq < max_seq, "the late row took a lower seq than rows committed before it"


async def test_the_followers_watch_gives_the_stored_results_then_the_new_ones_then_the_end(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    await a.write([PutJob.of(JOB)])
    await a.write([PutResult(result(f"old{i}"), "de", time.time()) for i in range(3)])
    events: list[pb.WatchJobEvent] = []

    async def watch() -> None:
        async for event in tail_watch.watch(b, JOB, follow=True):  # b: a coordinator that only relays
            events.append(event)

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    await a.write([PutResult(result(f"new{i}"), "de", time.time()) for i in range(2)])
    done = Job(**{**JOB.__dict__, "state": JobState.DONE, "tasks_done": 5, "finished_at": time.time()})
    await a.write([JobProgress.of(done)])
    await asyncio.wait_for(watching, 10)
    ids = [e.result.task_id for e in events if e.HasField("result")]
    assert ids == ["old0", "old1", "old2", "new0", "new1"]
    assert events[-1].HasField("job_end") and events[-1].job_end.state == pb.JOB_STATE_DONE
