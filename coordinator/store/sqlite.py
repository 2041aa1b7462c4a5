"""The SQLite engine: WAL mode, one writer thread, batched commits.

Writes go through one writer thread that drains a queue, runs everything it finds in one
transaction and commits, then wakes the callers: many results per fsync, and an ack to an
agent is sent only after its results are committed. Reads use their own connection (WAL
lets them run beside the writer), on a worker thread so the event loop never waits on
the disk.

The schema is versioned in ``PRAGMA user_version`` and migrated at open, inside one
``BEGIN IMMEDIATE`` transaction: a second coordinator opening the same file at the same
moment waits for the first, then finds the schema current and does nothing.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from coordinator.model import AgentInfo, Job, JobState, Task, TaskState
from coordinator.store.codec import spec_from_json, spec_to_json
from coordinator.store.records import (
    AgentHello,
    AgentSeen,
    Change,
    JobProgress,
    Pruned,
    PutJob,
    PutResult,
    PutTask,
    RecentResult,
    StoredAgent,
    TaskLookup,
    TaskProgress,
)

# Version n of the schema is MIGRATIONS[n - 1] applied over version n - 1. Append only.
MIGRATIONS: tuple[str, ...] = (
    # 1: the schema as it was before versioning (so a file from then adopts it as is).
    """
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
    """,
    # 2: reading the recent window back at start-up, and --retain, go by time.
    """
    CREATE INDEX IF NOT EXISTS measurements_received ON measurements(received_at);
    CREATE INDEX IF NOT EXISTS tasks_due ON tasks(due_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
FINISHED_TASKS = tuple(s.value for s in TaskState if s.finished)
FINISHED_JOBS = tuple(s.value for s in JobState if s.finished)

_SQL: dict[type, str] = {
    PutJob: "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    JobProgress: (
        "UPDATE jobs SET state=?, finished_at=?, next_round_at=?, rounds_done=?, "
        "tasks_created=?, tasks_expected=?, tasks_done=?, tasks_failed=?, reason=? WHERE job_id=?"
    ),
    PutTask: "INSERT OR REPLACE INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    TaskProgress: (
        "UPDATE tasks SET agent_id=?, region=?, state=?, assigned_at=?, attempts=?, reason=? "
        "WHERE task_id=?"
    ),
    AgentHello: (
        "INSERT INTO agents VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(agent_id) DO UPDATE SET "
        "region=excluded.region, country=excluded.country, asn=excluded.asn, "
        "labels=excluded.labels, version=excluded.version, kinds=excluded.kinds, "
        "last_seen=excluded.last_seen, peer=excluded.peer"
    ),
    AgentSeen: "UPDATE agents SET last_seen=? WHERE agent_id=?",
    PutResult: "INSERT OR IGNORE INTO measurements VALUES (?,?,?,?,?,?,?,?,?,?,?)",
}


def _row(change: Change) -> tuple[Any, ...]:
    match change:
        case PutJob(job=j):
            return (
                j.job_id, spec_to_json(j.spec), j.state.value, j.created_at, j.finished_at,
                j.next_round_at, j.rounds_done, j.tasks_created, j.tasks_expected, j.tasks_done,
                j.tasks_failed, j.reason,
            )  # fmt: skip
        case JobProgress(job=j):
            return (
                j.state.value, j.finished_at, j.next_round_at, j.rounds_done, j.tasks_created,
                j.tasks_expected, j.tasks_done, j.tasks_failed, j.reason, j.job_id,
            )  # fmt: skip
        case PutTask(task=t):
            return (
                t.task_id, t.job_id, t.round, t.target, t.agent_id, t.region, t.state.value,
                t.due_at, t.deadline, t.assigned_at, t.attempts, t.reason,
            )  # fmt: skip
        case TaskProgress(task=t):
            return (t.agent_id, t.region, t.state.value, t.assigned_at, t.attempts, t.reason, t.task_id)
        case AgentHello(info=a, at=at, peer=peer):
            return (
                a.agent_id, a.region, a.country, a.asn, json.dumps(dict(a.labels), sort_keys=True),
                a.version, json.dumps(list(a.kinds)), at, at, peer,
            )  # fmt: skip
        case AgentSeen(agent_id=agent_id, at=at):
            return (at, agent_id)
        case PutResult(result=r, region=region, received_at=received_at):
            p = r.result
            return (
                r.task_id, r.job_id, r.agent_id, region, p.kind, p.target, p.failure, r.started_at,
                r.finished_at, received_at, r.raw,
            )  # fmt: skip
    raise TypeError(f"not a store change: {change!r}")


def _runs(changes: Iterable[Change]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive changes of one kind, grouped for ``executemany`` (order kept)."""
    kind: type | None = None
    rows: list[tuple[Any, ...]] = []
    for change in changes:
        if type(change) is not kind and rows:
            yield _SQL[kind], rows  # type: ignore[index]
            rows = []
        kind = type(change)
        rows.append(_row(change))
    if rows and kind is not None:
        yield _SQL[kind], rows


class _Pending:
    __slots__ = ("changes", "done", "error", "fn", "value")

    def __init__(
        self,
        changes: Sequence[Change],
        done: Callable[[BaseException | None, Any], None],
        fn: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> None:
        self.changes = changes
        self.done = done
        self.fn = fn
        self.error: BaseException | None = None
        self.value: Any = None


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file's schema to SCHEMA_VERSION; returns the version found."""
    conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait here
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {found} is newer than this vantage knows ({SCHEMA_VERSION}); "
                "run a newer vantage or another file"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


class SQLiteStore:
    """SQLite in WAL mode. One writer thread batches every queued write into one commit."""

    engine = "sqlite"

    def __init__(self, path: str | Path, *, max_batch_wait_s: float = 0.005) -> None:
        self.path = str(path)
        self._max_batch_wait_s = max_batch_wait_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        init = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            init.execute("PRAGMA journal_mode=WAL")
            self.migrated_from = migrate(init)
        finally:
            init.close()
        self._read = sqlite3.connect(self.path, check_same_thread=False)
        self._read_lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()
        self.commits = 0
        self.changes_written = 0

    # -- writes -------------------------------------------------------------------------

    def _submit(
        self, changes: Sequence[Change], fn: Callable[[sqlite3.Connection], Any] | None = None
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def done(error: BaseException | None, value: Any) -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(value)
            else:
                fut.set_exception(error)

        def wake(error: BaseException | None, value: Any) -> None:
            loop.call_soon_threadsafe(done, error, value)

        self._queue.put(_Pending(changes, wake, fn))
        return fut

    async def write(self, changes: Sequence[Change]) -> None:
        """Queue ``changes`` for the next batch; returns once they are committed."""
        if changes:
            await self._submit(changes)

    def write_nowait(
        self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]
    ) -> None:
        """Queue ``changes`` in order and return at once; ``on_error`` runs on the caller's
        loop if their transaction fails."""
        if not changes:
            return
        loop = asyncio.get_running_loop()

        def done(error: BaseException | None, _value: Any) -> None:
            if error is not None:
                loop.call_soon_threadsafe(on_error, error, len(changes))

        self._queue.put(_Pending(changes, done))

    async def flush(self) -> None:
        """Returns once every write queued before it is committed."""
        await self._submit((), lambda _conn: None)

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
                    pending.done(None, pending.value)
                continue
            # One caller's bad write must not sink the others': commit each on its own.
            for pending in batch:
                ok = self._commit(conn, [pending])
                pending.done(None if ok else pending.error, pending.value)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> bool:
        try:
            with conn:
                for pending in batch:
                    for sql, rows in _runs(pending.changes):
                        conn.executemany(sql, rows)
                    if pending.fn is not None:
                        pending.value = pending.fn(conn)
        except Exception as exc:  # the writer thread must outlive any one bad write
            for pending in batch:
                pending.error = exc
            return False
        self.commits += 1
        self.changes_written += sum(len(p.changes) for p in batch)
        return True

    async def prune(self, before: float) -> Pruned:
        """Drop measurements received before ``before``, finished tasks due before it, and
        finished jobs that ended before it (``--retain``). Open work is never touched."""

        def run(conn: sqlite3.Connection) -> Pruned:
            m = conn.execute("DELETE FROM measurements WHERE received_at < ?", (before,)).rowcount
            t = conn.execute(
                f"DELETE FROM tasks WHERE due_at < ? AND state IN ({_marks(FINISHED_TASKS)})",
                (before, *FINISHED_TASKS),
            ).rowcount
            j = conn.execute(
                f"DELETE FROM jobs WHERE finished_at > 0 AND finished_at < ? "
                f"AND state IN ({_marks(FINISHED_JOBS)})",
                (before, *FINISHED_JOBS),
            ).rowcount
            return Pruned(measurements=m, tasks=t, jobs=j)

        pruned: Pruned = await self._submit((), run)
        return pruned

    # -- reads --------------------------------------------------------------------------

    def _query_sync(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return list(self._read.execute(sql, params))

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query_sync, sql, params)

    async def load_jobs(self) -> list[Job]:
        jobs = []
        for row in await self._query("SELECT * FROM jobs ORDER BY created_at"):
            (job_id, spec, state, created_at, finished_at, next_round_at, rounds_done,
             created, expected, done, failed, reason) = row  # fmt: skip
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

    async def load_open_tasks(self) -> list[Task]:
        rows = await self._query("SELECT * FROM tasks WHERE state IN ('pending', 'assigned')")
        return [
            Task(
                task_id=r[0], job_id=r[1], round=r[2], target=r[3], agent_id=r[4], region=r[5],
                state=TaskState(r[6]), due_at=r[7], deadline=r[8], assigned_at=r[9] or 0.0,
                attempts=r[10] or 0, reason=r[11] or "",
            )
            for r in rows
        ]

    async def load_agents(self) -> list[StoredAgent]:
        """Every agent seen, with when it was first and last seen."""
        rows = await self._query(
            "SELECT agent_id, region, country, asn, labels, version, kinds, first_seen, last_seen "
            "FROM agents"
        )
        return [
            StoredAgent(
                info=AgentInfo(
                    agent_id=r[0], region=r[1], country=r[2] or "", asn=r[3] or 0,
                    labels=json.loads(r[4] or "{}"), version=r[5] or "",
                    kinds=tuple(json.loads(r[6] or "[]")),
                ),
                first_seen=r[7] or 0.0,
                last_seen=r[8] or 0.0,
            )
            for r in rows
        ]

    async def iter_results(
        self, job_id: str, *, page: int = 500
    ) -> AsyncIterator[tuple[bytes, float]]:
        """A job's stored results as the agents sent them (serialized TaskResult), with
        when each was received, in the order they were stored, ``page`` rows per query:
        never the whole job in memory."""
        after = 0
        while True:
            rows = await self._query(
                "SELECT rowid, result, received_at FROM measurements WHERE job_id=? AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (job_id, after, page),
            )
            for rowid, raw, received_at in rows:
                after = rowid
                yield bytes(raw), received_at or 0.0
            if len(rows) < page:
                return

    async def recent_results(self, since: float, *, limit: int) -> list[RecentResult]:
        """Measurements received at or after ``since``, oldest first; the newest ``limit``."""
        rows = await self._query(
            "SELECT m.result, m.job_id, COALESCE(t.target, m.target), m.agent_id, m.region, "
            "m.received_at FROM measurements m LEFT JOIN tasks t ON t.task_id = m.task_id "
            "WHERE m.received_at >= ? ORDER BY m.received_at DESC LIMIT ?",
            (since, limit),
        )
        return [
            RecentResult(
                raw=bytes(r[0]), job_id=r[1], target=r[2] or "", agent_id=r[3], region=r[4] or "",
                received_at=r[5] or 0.0,
            )
            for r in reversed(rows)
        ]

    async def lookup_tasks(self, task_ids: Sequence[str]) -> list[TaskLookup]:
        return await asyncio.to_thread(self._lookup_sync, list(task_ids))

    def _lookup_sync(self, task_ids: list[str]) -> list[TaskLookup]:
        stored: set[str] = set()
        owners: dict[str, tuple[str, str]] = {}
        for i in range(0, len(task_ids), 500):
            chunk = task_ids[i : i + 500]
            marks = _marks(chunk)
            stored.update(
                r[0] for r in self._query_sync(f"SELECT task_id FROM measurements WHERE task_id IN ({marks})", chunk)
            )
            for tid, agent_id, state in self._query_sync(
                f"SELECT task_id, agent_id, state FROM tasks WHERE task_id IN ({marks})", chunk
            ):
                owners[tid] = (agent_id, state)
        out = []
        for tid in task_ids:
            owner = owners.get(tid)
            out.append(
                TaskLookup(
                    task_id=tid, result_stored=tid in stored,
                    agent_id=owner[0] if owner else None,
                    state=TaskState(owner[1]) if owner else None,
                )
            )
        return out

    async def count_results(self, job_id: str | None = None) -> int:
        if job_id is None:
            rows = await self._query("SELECT COUNT(*) FROM measurements")
        else:
            rows = await self._query("SELECT COUNT(*) FROM measurements WHERE job_id=?", (job_id,))
        return int(rows[0][0])

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._writer.join, 10)
        with self._read_lock:
            self._read.close()


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
