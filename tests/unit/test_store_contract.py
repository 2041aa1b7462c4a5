"""The storage contract every engine keeps (coordinator/store/__init__.py), run against
each engine on a real database: all or nothing, in order, one result per task id, reads
that page, lookups, pruning, and migrations that are versioned and safe to race."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from coordinator.model import (
    AgentInfo,
    ApiToken,
    AuditEntry,
    Enrollment,
    Job,
    JobSpec,
    JobState,
    ProbeResultData,
    Selector,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.store import (
    AgentHello,
    AgentSeen,
    JobProgress,
    PutApiToken,
    PutAudit,
    PutEnrollment,
    PutJob,
    PutResult,
    PutTask,
    SQLiteStore,
    Store,
    StoreError,
    TaskProgress,
    open_store,
)
from coordinator.store import sqlite_schema as sqlite_engine

SPEC = JobSpec(kind="tcp", targets=("a.example:1", "b.example:2"), options={"timeout": "3"},
               selector=Selector(regions=("de",), labels={"k": "v"}, per_region=2), every_s=10, count=5)  # fmt: skip


def job(job_id: str = "0123456789abcdef", **kw: object) -> Job:
    fields: dict[str, object] = dict(spec=SPEC, state=JobState.RUNNING, created_at=1.0, next_round_at=11.0)
    fields.update(kw)
    return Job(job_id=job_id, **fields)  # type: ignore[arg-type]


def task(task_id: str, job_id: str = "0123456789abcdef", **kw: object) -> Task:
    fields: dict[str, object] = dict(
        round=0, target="a.example:1", agent_id="de-1", region="de", state=TaskState.PENDING,
        due_at=10.0, deadline=40.0,
    )  # fmt: skip
    fields.update(kw)
    return Task(task_id=task_id, job_id=job_id, **fields)  # type: ignore[arg-type]


def result(task_id: str, job_id: str = "0123456789abcdef", raw: bytes = b"") -> TaskResultData:
    return TaskResultData(
        task_id=task_id, job_id=job_id, agent_id="de-1", started_at=1, finished_at=2,
        raw=raw or task_id.encode(),
        result=ProbeResultData(kind="tcp", target="a.example:1", failure="", failure_detail="",
                               duration_s=0.1, data={}),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    db = request.getfixturevalue("pg_url") if request.param == "postgres" else str(tmp_path / "v.db")
    s = open_store(db)
    assert s.engine == request.param
    await s.open()
    yield s
    await s.close()


async def test_jobs_tasks_and_agents_round_trip(store: Store) -> None:
    j = job()
    await store.write([PutJob.of(j), PutTask.of(task("t1")), PutTask.of(task("t2"))])
    j.state, j.rounds_done, j.tasks_done, j.reason = JobState.DONE, 1, 2, "fine"
    t1 = task("t1", state=TaskState.ASSIGNED, attempts=1, assigned_at=12.0, agent_id="de-2")
    await store.write([JobProgress.of(j), TaskProgress.of(t1)])
    [loaded] = await store.load_jobs()
    assert loaded.spec == SPEC and loaded.state is JobState.DONE and loaded.reason == "fine"
    assert (loaded.rounds_done, loaded.tasks_done, loaded.next_round_at) == (1, 2, 11.0)
    open_tasks = {t.task_id: t for t in await store.load_open_tasks()}
    assert open_tasks["t1"] == t1 and open_tasks["t2"] == task("t2")
    info = AgentInfo(agent_id="de-1", region="de", country="DE", asn=3320, labels={"a": "b"}, kinds=("tcp",))
    await store.write([AgentHello(info, 5.0, "ipv4:1.2.3.4:5")])
    await store.write([AgentHello(info, 7.0, "ipv4:1.2.3.4:6"), AgentSeen("de-1", 9.0)])
    [agent] = await store.load_agents()
    assert agent.info == info and agent.first_seen == 5.0 and agent.last_seen == 9.0


async def test_credentials_owners_and_the_audit_round_trip(store: Store) -> None:
    """Enrolments and tokens come back whole (a revocation is the same record, later), a
    job keeps its owner and hourly cost, and the audit reads back oldest first, newest kept."""
    e = Enrollment(agent_id="ru-1", token_hash="ab" * 32, region="ru-msk", country="RU", asn=12389,
                   labels={"provider": "x"}, created_at=3.0, created_by="bootstrap")  # fmt: skip
    t = ApiToken(name="news", token_hash="cd" * 32, role="submit", max_active_jobs=2, max_tasks_per_hour=100,
                 created_at=4.0, created_by="bootstrap")  # fmt: skip
    await store.write([PutEnrollment(e), PutApiToken(t), PutJob.of(job(owner="news", hourly_cost=12))])
    revoked = Enrollment(**{**e.__dict__, "revoked_at": 9.0})
    await store.write([PutEnrollment(revoked)])
    enrolled, tokens = await store.load_credentials()
    assert enrolled == [revoked] and tokens == [t]
    [loaded] = await store.load_jobs()
    assert (loaded.owner, loaded.hourly_cost) == ("news", 12)
    entries = [AuditEntry(at=float(i), actor="news", action="submit", subject=f"job{i}", detail='{"n": 1}')
               for i in range(5)]  # fmt: skip
    await store.write([PutAudit(a) for a in entries])
    assert await store.read_audit(0.0, limit=10) == entries
    assert await store.read_audit(0.0, limit=2) == entries[-2:]
    assert await store.read_audit(3.0, limit=10) == entries[3:]


async def test_a_change_is_snapshotted_when_made_not_when_committed(store: Store) -> None:
    j = job()
    change = PutJob.of(j)
    j.reason = "changed after the change was made"
    await store.write([change])
    [loaded] = await store.load_jobs()
    assert loaded.reason == ""


async def test_one_result_per_task_id_whoever_sends_it_again(store: Store) -> None:
    await store.write([PutJob.of(job()), PutTask.of(task("t1")), PutResult(result("t1"), "de", 3.0)])
    await store.write([PutResult(result("t1", raw=b"other bytes"), "us", 4.0)])
    assert await store.count_results() == 1
    assert [r async for r in store.iter_results("0123456789abcdef")] == [(b"t1", 3.0)]


async def test_one_write_applies_its_changes_in_order_even_for_the_same_record(store: Store) -> None:
    """Many changes of one kind go out as one statement where an engine can: the outcome
    is still that of applying them one by one."""
    t = task("t1")
    changes: list[object] = [PutJob.of(job()), PutTask.of(t)]
    for n in range(1, 6):
        t.attempts, t.reason = n, f"attempt {n}"
        changes.append(TaskProgress.of(t))
    changes += [PutResult(result("t1", raw=b"first"), "de", 3.0), PutResult(result("t1", raw=b"second"), "us", 4.0),
                PutResult(result("t2"), "de", 5.0)]  # fmt: skip
    await store.write(changes)  # type: ignore[arg-type]
    [loaded] = await store.load_open_tasks()
    assert (loaded.attempts, loaded.reason) == (5, "attempt 5")
    assert [r async for r in store.iter_results("0123456789abcdef")] == [(b"first", 3.0), (b"t2", 5.0)]


async def test_a_failed_write_commits_nothing_of_it(store: Store) -> None:
    bad = PutTask(task("t-bad", job_id=None))  # type: ignore[arg-type]  # job_id is NOT NULL
    with pytest.raises(Exception, match=r"(?i)null"):
        await store.write([PutJob.of(job()), PutResult(result("t1"), "de", 3.0), bad])
    assert await store.load_jobs() == [] and await store.count_results() == 0
    await store.write([PutJob.of(job())])  # the engine lives on
    assert len(await store.load_jobs()) == 1


async def test_queued_writes_keep_their_order_and_flush_waits_for_them(store: Store) -> None:
    j = job()
    errors: list[BaseException] = []
    store.write_nowait([PutJob.of(j)], lambda e, n: errors.append(e))
    for n in range(1, 50):
        j.tasks_done = n
        store.write_nowait([JobProgress.of(j)], lambda e, n: errors.append(e))
    await store.flush()
    [loaded] = await store.load_jobs()
    assert loaded.tasks_done == 49 and errors == []


async def test_results_are_read_page_by_page_in_the_order_stored(store: Store) -> None:
    await store.write([PutJob.of(job()), PutJob.of(job("fedcba9876543210"))])
    await store.write([PutResult(result(f"t{i:03}"), "de", float(i)) for i in range(23)])
    await store.write([PutResult(result("x", job_id="fedcba9876543210"), "de", 1.0)])
    got = [r async for r in store.iter_results("0123456789abcdef", page=5)]
    assert got == [(f"t{i:03}".encode(), float(i)) for i in range(23)]
    assert await store.count_results("0123456789abcdef") == 23 and await store.count_results() == 24


async def test_recent_results_carry_the_jobs_target_oldest_first_newest_kept(store: Store) -> None:
    await store.write([PutJob.of(job()), PutTask.of(task("t1", target="as.the.job.named:1"))])
    await store.write([PutResult(result(f"t{i}"), "de", 100.0 + i) for i in range(1, 6)])
    rows = await store.recent_results(102.0, limit=3)
    assert [r.raw for r in rows] == [b"t3", b"t4", b"t5"]
    rows = await store.recent_results(0.0, limit=10)
    assert rows[0].raw == b"t1" and rows[0].target == "as.the.job.named:1" and rows[0].region == "de"
    assert rows[1].target == "a.example:1"  # no task row: the agent's own target


async def test_each_result_keeps_the_place_it_was_measured_from(store: Store) -> None:
    """TaskResult.place in columns beside the bytes: one result alone and a batch of them
    (PostgreSQL writes the two with different statements)."""
    placed = [replace(result(f"p{i}"), region="ru-msk", country="RU", asn=12389 + i) for i in range(3)]
    await store.write([PutResult(placed[0], "ru-msk", 100.0)])
    await store.write([PutResult(r, "ru-msk", 101.0) for r in placed[1:]])
    await store.write([PutResult(result("unplaced"), "de", 102.0)])
    rows = await store.recent_results(0.0, limit=10)
    assert [(r.raw, r.region, r.country, r.asn) for r in rows] == [
        (b"p0", "ru-msk", "RU", 12389), (b"p1", "ru-msk", "RU", 12390), (b"p2", "ru-msk", "RU", 12391),
        (b"unplaced", "de", "", 0),
    ]  # fmt: skip


async def test_lookups_say_what_is_known_of_each_task(store: Store) -> None:
    done = task("t1", state=TaskState.DONE)
    await store.write([PutJob.of(job()), PutTask.of(done), PutTask.of(task("t2", state=TaskState.FAILED)),
                       PutResult(result("t1"), "de", 3.0)])  # fmt: skip
    ids = ["t1", "t2", "nope", *[f"many{i}" for i in range(700)]]  # more than one query's worth
    found = {lk.task_id: lk for lk in await store.lookup_tasks(ids)}
    assert len(found) == len(ids)
    assert found["t1"].result_stored and found["t1"].agent_id == "de-1" and found["t1"].state is TaskState.DONE
    assert not found["t2"].result_stored and found["t2"].state is TaskState.FAILED
    assert found["nope"].agent_id is None and found["nope"].state is None and not found["nope"].result_stored


async def test_prune_drops_old_results_and_finished_work_never_open_work(store: Store) -> None:
    old = job("000000000000000a", state=JobState.DONE, finished_at=50.0)
    live = job("000000000000000b", state=JobState.RUNNING)
    await store.write([
        PutJob.of(old), PutJob.of(live),
        PutTask.of(task("old-done", job_id=old.job_id, state=TaskState.DONE, due_at=10.0)),
        PutTask.of(task("old-open", job_id=live.job_id, state=TaskState.PENDING, due_at=10.0)),
        PutTask.of(task("new-done", job_id=live.job_id, state=TaskState.DONE, due_at=500.0)),
        PutResult(result("old-done", job_id=old.job_id), "de", 60.0),
        PutResult(result("new-done", job_id=live.job_id), "de", 600.0),
    ])  # fmt: skip
    pruned = await store.prune(100.0)
    assert (pruned.measurements, pruned.tasks, pruned.jobs) == (1, 1, 1)
    assert [j.job_id for j in await store.load_jobs()] == [live.job_id]
    assert [t.task_id for t in await store.load_open_tasks()] == ["old-open"]
    assert await store.count_results() == 1
    assert [lk.agent_id for lk in await store.lookup_tasks(["old-done", "new-done"])] == [None, "de-1"]


# ---------------------------------------------------------------- engine choice and schema


def test_unknown_engines_and_unusable_paths_name_db(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"--db .*unknown engine 'mysql'") as err:
        open_store("mysql://user:secret@host/db")
    assert "secret" not in str(err.value)  # the password never reaches a log or terminal
    with pytest.raises(StoreError, match="--db "):
        open_store(str(tmp_path / "missing-dir" / "v.db"))


async def test_sqlite_migrates_a_file_from_before_versioning_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    conn = sqlite3.connect(path)
    conn.executescript(sqlite_engine.MIGRATIONS[0])  # the schema as it was, user_version 0
    conn.execute("INSERT INTO jobs (job_id, spec, state) VALUES (?, ?, 'pending')",
                 ("00000000000000aa", '{"kind": "tcp"}'))  # fmt: skip
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.migrated_from == 0
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_engine.SCHEMA_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"measurements_received", "tasks_due"} <= indexes
    assert conn.execute("SELECT job_id FROM jobs").fetchall() == [("00000000000000aa",)]  # kept
    conn.execute(f"PRAGMA user_version = {sqlite_engine.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this vantage knows"):
        open_store(str(path))


def test_sqlite_migrations_are_safe_when_coordinators_start_at_once(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    found: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        try:
            start.wait(5)
            s = SQLiteStore(path)
            found.append(s.migrated_from)
            asyncio.run(s.close())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(found) == [0] + [sqlite_engine.SCHEMA_VERSION] * 5, "exactly one migrated"
