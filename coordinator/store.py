"""Durable state behind a small interface; SQLite (WAL, batched writes) by default.

Writes go through one writer thread that drains a queue, runs everything it finds in one
transaction and commits, then wakes the callers: many results per fsync, and an ack to an
agent is sent only after its results are committed (nothing acknowledged is lost on a
crash). Reads use their own connection (WAL lets them run beside the writer).

Another engine implements ``Store``; the coordinator uses nothing else.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from coordinator.model import (
    AgentInfo,
    Job,
    JobSpec,
    JobState,
    Selector,
    Task,
    TaskResultData,
    TaskState,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, region TEXT NOT NULL, country TEXT, asn INTEGER,
    labels TEXT, version TEXT, kinds TEXT, first_seen REAL, last_seen REAL, peer TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, created_at REAL,
    finished_at REAL, next_round_at REAL, rounds_done INTEGER, tasks_created INTEGER,
    tasks_expected INTEGER, tasks_done INTEGER, tasks_failed INTEGER, reason TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, round INTEGER, target TEXT,
    agent_id TEXT, region TEXT, state TEXT NOT NULL, due_at REAL, deadline REAL,
    assigned_at REAL, attempts INTEGER, reason TEXT
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(state) WHERE state IN ('pending', 'assigned');
CREATE TABLE IF NOT EXISTS measurements (
    task_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, agent_id TEXT NOT NULL, region TEXT,
    kind TEXT, target TEXT, failure TEXT, started_at REAL, finished_at REAL,
    received_at REAL, result BLOB NOT NULL  -- the serialized vantage.v1.TaskResult, whole
);
CREATE INDEX IF NOT EXISTS measurements_job ON measurements(job_id);
"""

Op = tuple[str, Sequence[Any]]
# A no-op write: awaiting it returns once everything queued before it is committed.
BARRIER: Op = ("UPDATE jobs SET state = state WHERE 0", ())


class Store(Protocol):
    """What the coordinator needs from a store."""

    async def write(self, ops: list[Op]) -> None: ...
    def write_nowait(self, ops: list[Op], on_error: Callable[[BaseException, int], None]) -> None: ...
    def load_jobs(self) -> list[Job]: ...
    def load_open_tasks(self) -> list[Task]: ...
    def load_agents(self) -> list[tuple[AgentInfo, float, float]]: ...
    def results_for_job(self, job_id: str) -> list[tuple[bytes, str]]: ...
    def measurement_exists(self, task_id: str) -> bool: ...
    def count_measurements(self, job_id: str | None = None) -> int: ...
    def task_owner(self, task_id: str) -> tuple[str, str] | None: ...
    def close(self) -> None: ...


def spec_to_json(spec: JobSpec) -> str:
    d = asdict(spec)
    d["selector"]["labels"] = dict(spec.selector.labels)
    d["options"] = dict(spec.options)
    return json.dumps(d, sort_keys=True)


def spec_from_json(text: str) -> JobSpec:
    d = json.loads(text)
    sel = d.pop("selector")
    return JobSpec(
        kind=d["kind"],
        targets=tuple(d["targets"]),
        options=dict(d["options"]),
        selector=Selector(
            regions=tuple(sel["regions"]),
            countries=tuple(sel["countries"]),
            asns=tuple(sel["asns"]),
            labels=dict(sel["labels"]),
            agent_ids=tuple(sel["agent_ids"]),
            per_region=sel["per_region"],
        ),
        every_s=d["every_s"],
        count=d["count"],
        until=d["until"],
        spread_s=d["spread_s"],
        timeout_s=d["timeout_s"],
        purpose=d.get("purpose", ""),  # absent in jobs stored before issue 15
    )


def job_op(job: Job) -> Op:
    return (
        "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            job.job_id, spec_to_json(job.spec), job.state.value, job.created_at,
            job.finished_at, job.next_round_at, job.rounds_done, job.tasks_created,
            job.tasks_expected, job.tasks_done, job.tasks_failed, job.reason,
        ),
    )


def job_state_op(job: Job) -> Op:
    """A job's progress fields only; the spec never changes after the insert."""
    return (
        "UPDATE jobs SET state=?, finished_at=?, next_round_at=?, rounds_done=?, "
        "tasks_created=?, tasks_expected=?, tasks_done=?, tasks_failed=?, reason=? WHERE job_id=?",
        (
            job.state.value, job.finished_at, job.next_round_at, job.rounds_done,
            job.tasks_created, job.tasks_expected, job.tasks_done, job.tasks_failed, job.reason,
            job.job_id,
        ),
    )


def task_op(task: Task) -> Op:
    return (
        "INSERT OR REPLACE INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            task.task_id, task.job_id, task.round, task.target, task.agent_id, task.region,
            task.state.value, task.due_at, task.deadline, task.assigned_at, task.attempts,
            task.reason,
        ),
    )


def task_state_op(task: Task) -> Op:
    """A task's life-cycle fields only: cheaper than rewriting the row."""
    return (
        "UPDATE tasks SET agent_id=?, region=?, state=?, assigned_at=?, attempts=?, reason=? "
        "WHERE task_id=?",
        (
            task.agent_id, task.region, task.state.value, task.assigned_at, task.attempts,
            task.reason, task.task_id,
        ),
    )


def agent_op(agent: AgentInfo, now: float, peer: str) -> Op:
    return (
        "INSERT INTO agents VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(agent_id) DO UPDATE SET "
        "region=excluded.region, country=excluded.country, asn=excluded.asn, "
        "labels=excluded.labels, version=excluded.version, kinds=excluded.kinds, "
        "last_seen=excluded.last_seen, peer=excluded.peer",
        (
            agent.agent_id, agent.region, agent.country, agent.asn,
            json.dumps(dict(agent.labels), sort_keys=True), agent.version,
            json.dumps(list(agent.kinds)), now, now, peer,
        ),
    )


def agent_seen_op(agent_id: str, now: float) -> Op:
    return ("UPDATE agents SET last_seen=? WHERE agent_id=?", (now, agent_id))


def measurement_op(result: TaskResultData, region: str, received_at: float) -> Op:
    r = result.result
    return (
        "INSERT OR IGNORE INTO measurements VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            result.task_id, result.job_id, result.agent_id, region, r.kind, r.target,
            r.failure, result.started_at, result.finished_at, received_at, result.raw,
        ),
    )


def _runs(ops: Iterable[Op]) -> Iterator[tuple[str, list[Sequence[Any]]]]:
    """Consecutive ops with the same statement, grouped for ``executemany`` (order kept)."""
    sql: str | None = None
    rows: list[Sequence[Any]] = []
    for op_sql, params in ops:
        if op_sql != sql and rows:
            assert sql is not None
            yield sql, rows
            rows = []
        sql = op_sql
        rows.append(params)
    if rows and sql is not None:
        yield sql, rows


class _Pending:
    __slots__ = ("done", "error", "ops")

    def __init__(self, ops: list[Op], done: Any) -> None:
        self.ops = ops
        self.done = done
        self.error: BaseException | None = None


class SQLiteStore:
    """SQLite in WAL mode. One writer thread batches every queued write into one commit."""

    def __init__(self, path: str | Path, *, max_batch_wait_s: float = 0.005) -> None:
        self.path = str(path)
        self._max_batch_wait_s = max_batch_wait_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        init = sqlite3.connect(self.path)
        init.execute("PRAGMA journal_mode=WAL")
        init.executescript(SCHEMA)
        init.commit()
        init.close()
        self._read = sqlite3.connect(self.path, check_same_thread=False)
        self._read_lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()
        self.commits = 0
        self.ops_written = 0

    # -- writes -------------------------------------------------------------------------

    async def write(self, ops: list[Op]) -> None:
        """Queue ``ops`` for the next batch; returns once they are committed."""
        if not ops:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

        pending = _Pending(ops, lambda err: loop.call_soon_threadsafe(done, err))
        self._queue.put(pending)
        await fut

    def write_nowait(self, ops: list[Op], on_error: Callable[[BaseException, int], None]) -> None:
        """Queue ``ops`` in order and return at once; ``on_error`` runs on the caller's
        loop if their transaction fails."""
        loop = asyncio.get_running_loop()

        def done(error: BaseException | None) -> None:
            if error is not None:
                loop.call_soon_threadsafe(on_error, error, len(ops))

        self._queue.put(_Pending(ops, done))

    def _write_loop(self) -> None:
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self._max_batch_wait_s
            while len(batch) < 5000:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if self._commit(conn, batch):
                for pending in batch:
                    pending.done(None)
                continue
            # One caller's bad write must not sink the others': commit each on its own.
            for pending in batch:
                pending.done(None if self._commit(conn, [pending]) else pending.error)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> bool:
        try:
            with conn:
                for sql, rows in _runs(op for pending in batch for op in pending.ops):
                    conn.executemany(sql, rows)
        except Exception as exc:  # the writer thread must outlive any one bad write
            for pending in batch:
                pending.error = exc
            return False
        self.commits += 1
        self.ops_written += sum(len(p.ops) for p in batch)
        return True

    # -- reads --------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return list(self._read.execute(sql, params))

    def load_jobs(self) -> list[Job]:
        jobs = []
        for row in self._query("SELECT * FROM jobs ORDER BY created_at"):
            (job_id, spec, state, created_at, finished_at, next_round_at, rounds_done,
             created, expected, done, failed, reason) = row
            jobs.append(
                Job(
                    job_id=job_id, spec=spec_from_json(spec), state=JobState(state),
                    created_at=created_at, finished_at=finished_at or 0.0,
                    next_round_at=next_round_at, rounds_done=rounds_done, tasks_created=created,
                    tasks_expected=expected, tasks_done=done, tasks_failed=failed,
                    reason=reason or "",
                )
            )
        return jobs

    def load_open_tasks(self) -> list[Task]:
        rows = self._query("SELECT * FROM tasks WHERE state IN ('pending', 'assigned')")
        return [
            Task(
                task_id=r[0], job_id=r[1], round=r[2], target=r[3], agent_id=r[4], region=r[5],
                state=TaskState(r[6]), due_at=r[7], deadline=r[8], assigned_at=r[9] or 0.0,
                attempts=r[10] or 0, reason=r[11] or "",
            )
            for r in rows
        ]

    def load_agents(self) -> list[tuple[AgentInfo, float, float]]:
        """Every agent seen, with when it was first and last seen."""
        out = []
        for r in self._query(
            "SELECT agent_id, region, country, asn, labels, version, kinds, last_seen, first_seen "
            "FROM agents"
        ):
            out.append(
                (
                    AgentInfo(
                        agent_id=r[0], region=r[1], country=r[2] or "", asn=r[3] or 0,
                        labels=json.loads(r[4] or "{}"), version=r[5] or "",
                        kinds=tuple(json.loads(r[6] or "[]")),
                    ),
                    r[7] or 0.0,
                    r[8] or 0.0,
                )
            )
        return out

    def results_for_job(self, job_id: str) -> list[tuple[bytes, str]]:
        """Each stored result as the agent sent it (serialized TaskResult), with its region."""
        rows = self._query(
            "SELECT result, region FROM measurements WHERE job_id=? ORDER BY received_at",
            (job_id,),
        )
        return [(bytes(r[0]), r[1] or "") for r in rows]

    def count_measurements(self, job_id: str | None = None) -> int:
        if job_id is None:
            return int(self._query("SELECT COUNT(*) FROM measurements")[0][0])
        return int(self._query("SELECT COUNT(*) FROM measurements WHERE job_id=?", (job_id,))[0][0])

    def measurement_exists(self, task_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM measurements WHERE task_id=?", (task_id,)))

    def task_owner(self, task_id: str) -> tuple[str, str] | None:
        rows = self._query("SELECT agent_id, state FROM tasks WHERE task_id=?", (task_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=10)
        with self._read_lock:
            self._read.close()
