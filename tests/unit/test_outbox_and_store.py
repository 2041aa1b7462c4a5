"""The agent's outbox and the coordinator's store, on real files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.outbox import Outbox
from coordinator.model import (
    Job,
    JobSpec,
    JobState,
    ProbeResultData,
    Selector,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.store import PutJob, PutResult, PutTask, SQLiteStore


async def test_outbox_survives_a_restart_and_deletes_only_acked(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox", max_items=10)
    box.load()
    for i in range(3):
        await box.put(f"t{i}", f"result {i}".encode())
    await box.ack(["t1"])
    # A write a crash interrupted is discarded at load; it was never sent.
    (tmp_path / "outbox" / "000000000009-tx.result.tmp").write_bytes(b"partial")
    again = Outbox(tmp_path / "outbox", max_items=10)
    assert again.load() == 2
    assert again.pending() == [("t0", b"result 0"), ("t2", b"result 2")]
    assert not list((tmp_path / "outbox").glob("*.tmp"))


async def test_full_outbox_drops_the_oldest_counted_and_logged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o", max_items=3)
    box.load()
    with capture_logs() as logs:
        for i in range(5):
            await box.put(f"t{i}", b"x")
    assert box.task_ids() == ["t2", "t3", "t4"] and box.dropped == 2
    assert [e["task_id"] for e in logs if e["event"] == "outbox_full_dropped_oldest"] == ["t0", "t1"]
    assert len(list((tmp_path / "o").glob("*.result"))) == 3


async def test_store_keeps_one_row_per_task_and_restores_jobs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "v.db")
    spec = JobSpec(kind="tcp", targets=("a:1", "b:2"), options={"timeout": "3"},
                   selector=Selector(regions=("de",), labels={"k": "v"}, per_region=2), every_s=10, count=5)
    job = Job(job_id="0123456789abcdef", spec=spec, state=JobState.RUNNING, created_at=1.0, next_round_at=11.0)
    result = TaskResultData(
        task_id="t1", job_id=job.job_id, agent_id="a", started_at=1, finished_at=2, raw=b"\x0a\x02t1",
        result=ProbeResultData(kind="tcp", target="a:1", failure="", failure_detail="", duration_s=0.1, data={}),
    )
    await store.write([PutJob.of(job), PutResult(result, "de", 3.0)])
    await store.write([PutResult(result, "de", 4.0)])  # the same result again
    assert await store.count_results(job.job_id) == 1
    [lookup] = await store.lookup_tasks(["t1"])
    assert lookup.result_stored
    assert [r async for r in store.iter_results(job.job_id)] == [(b"\x0a\x02t1", 3.0)]
    [loaded] = await store.load_jobs()
    assert loaded.spec == spec and loaded.state is JobState.RUNNING and loaded.next_round_at == 11.0
    await store.close()
    mode = sqlite3.connect(tmp_path / "v.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_one_bad_write_does_not_sink_the_others_in_its_batch(tmp_path: Path) -> None:
    """The writer commits everything queued together in one transaction; when that fails,
    it commits each caller's writes on their own, so only the bad caller hears an error."""
    import asyncio

    store = SQLiteStore(tmp_path / "v.db", max_batch_wait_s=1.0)  # both land in one batch
    spec = JobSpec(kind="tcp", targets=("a:1",))
    good = Job(job_id="00000000000000aa", spec=spec, state=JobState.RUNNING, created_at=1.0, next_round_at=1.0)
    bad_op = PutTask(Task(task_id="t1", job_id=None, round=0, target="a:1", agent_id="a", region="de",  # type: ignore[arg-type]
                          state=TaskState.PENDING, due_at=0, deadline=1))  # job_id NOT NULL
    errors: list[BaseException] = []
    loop = asyncio.get_running_loop()
    failed = loop.create_future()

    def on_error(error: BaseException, ops: int) -> None:
        errors.append(error)
        failed.set_result(ops)

    store.write_nowait([bad_op], on_error)
    await store.write([PutJob.of(good)])  # returns once committed: it was not sunk
    assert await asyncio.wait_for(failed, 5) == 1
    assert "NOT NULL constraint failed: tasks.job_id" in str(errors[0])
    assert [j.job_id for j in await store.load_jobs()] == [good.job_id]
    assert store.commits == 1, "the batch failed as a whole, then the good write committed alone"
    await store.write([PutJob.of(good)])  # and the writer lives on
    await store.close()


async def test_the_outbox_syncs_its_directory_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename is a directory entry: a power loss can lose it unless the directory is
    fsynced too (a SIGKILL cannot)."""
    import os

    from agent import outbox as outbox_module

    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(outbox_module.os, "fsync", spy)
    box = outbox_module.Outbox(tmp_path / "outbox")
    box.load()
    await box.put("t-1", b"result")
    directory = str((tmp_path / "outbox").resolve())
    assert directory in synced, synced
    # the directory after the file: the entry that names the synced bytes
    assert synced.index(directory) > max(i for i, p in enumerate(synced) if p.endswith(".tmp"))
