"""The SQLite engine: WAL mode, one writer thread, batched commits.

Writes go through one writer thread (``sqlite_writer.py``): many results per fsync, and
an ack to an agent is sent only after its results are committed. Reads use their own
connection (WAL lets them run beside the writer), on a worker thread so the event loop
never waits on the disk. The schema is versioned and migrated at open
(``sqlite_schema.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from coordinator.model import ApiToken, AuditEntry, Enrollment, Job, Task
from coordinator.store import decode
from coordinator.store.records import (
    Change,
    Pruned,
    RecentResult,
    StoredAgent,
    TaskLookup,
)
from coordinator.store.sqlite_schema import FINISHED_JOBS, FINISHED_TASKS, migrate
from coordinator.store.sqlite_writer import Writer


class SQLiteStore:
    """SQLite in WAL mode. One writer thread batches every queued write into one commit."""

    engine = "sqlite"
    shared = False  # one coordinator per file

    def __init__(self, path: str | Path, *, max_batch_wait_s: float = 0.005) -> None:
        self.path = str(path)
        self.safe_url = self.path
        self.migrated_from = _prepare(self.path)
        self._read = sqlite3.connect(self.path, check_same_thread=False)
        self._read_lock = threading.Lock()
        self._writer = Writer(self.path, max_batch_wait_s)

    async def open(self) -> None:
        """Nothing to do: the file is opened and migrated in the constructor."""

    async def maintain(self, now: float) -> None:
        """Nothing to do: SQLite keeps one table of measurements."""

    # -- writes: the single writer thread (coordinator/store/sqlite_writer.py) ----------

    async def write(self, changes: Sequence[Change]) -> None:
        """Queue ``changes`` for the next batch; returns once they are committed."""
        await self._writer.write(changes)

    def write_nowait(
        self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]
    ) -> None:
        """Queue ``changes`` in order and return at once; ``on_error`` runs on the caller's
        loop if their transaction fails."""
        self._writer.write_nowait(changes, on_error)

    async def flush(self) -> None:
        """Returns once every write queued before it is committed."""
        await self._writer.flush()

    @property
    def commits(self) -> int:
        return self._writer.commits

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

        pruned: Pruned = await self._writer.submit((), run)
        return pruned

    # -- reads --------------------------------------------------------------------------

    def _query_sync(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return list(self._read.execute(sql, params))

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query_sync, sql, params)

    async def load_jobs(self) -> list[Job]:
        return [decode.job(r) for r in await self._query(f"SELECT {decode.JOB_COLUMNS} FROM jobs ORDER BY created_at")]

    async def load_open_tasks(self) -> list[Task]:
        rows = await self._query(f"SELECT {decode.TASK_COLUMNS} FROM tasks WHERE state IN ('pending', 'assigned')")
        return [decode.task(r) for r in rows]

    async def load_agents(self) -> list[StoredAgent]:
        """Every agent seen, with when it was first and last seen."""
        return [decode.agent(r) for r in await self._query(f"SELECT {decode.AGENT_COLUMNS} FROM agents")]

    async def load_credentials(self) -> tuple[list[Enrollment], list[ApiToken]]:
        """Every enrolment and API token, revoked ones too (their hashes, never a token)."""
        enrolled = await self._query(f"SELECT {decode.ENROLLMENT_COLUMNS} FROM enrollments")
        tokens = await self._query(f"SELECT {decode.TOKEN_COLUMNS} FROM api_tokens")
        return [decode.enrollment(r) for r in enrolled], [decode.api_token(r) for r in tokens]

    async def read_audit(self, since: float, *, limit: int) -> list[AuditEntry]:
        """Audit records at or after ``since``, oldest first: the newest ``limit``."""
        rows = await self._query(
            f"SELECT {decode.AUDIT_COLUMNS} FROM audit WHERE at >= ? ORDER BY seq DESC LIMIT ?", (since, limit)
        )
        return [decode.audit(r) for r in reversed(rows)]

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
            f"SELECT {decode.RECENT_COLUMNS} FROM measurements m LEFT JOIN tasks t "
            "ON t.task_id = m.task_id WHERE m.received_at >= ? ORDER BY m.received_at DESC LIMIT ?",
            (since, limit),
        )
        return [decode.recent(r) for r in reversed(rows)]

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
        return decode.lookups(task_ids, stored, owners)

    async def count_results(self, job_id: str | None = None) -> int:
        if job_id is None:
            rows = await self._query("SELECT COUNT(*) FROM measurements")
        else:
            rows = await self._query("SELECT COUNT(*) FROM measurements WHERE job_id=?", (job_id,))
        return int(rows[0][0])

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close, 10)
        with self._read_lock:
            self._read.close()


def _prepare(path: str, *, patience_s: float = 30.0) -> int:
    """WAL mode and the schema migrated; returns the version found. Switching to WAL
    takes an exclusive lock without waiting on SQLite's busy handler, so coordinators
    opening one file at once are retried here, with a short backoff, for ``patience_s``."""
    deadline = time.monotonic() + patience_s
    delay = 0.01
    while True:
        init = sqlite3.connect(path, isolation_level=None, timeout=patience_s)
        try:
            init.execute("PRAGMA journal_mode=WAL")
            return migrate(init)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        finally:
            init.close()
        time.sleep(delay)
        delay = min(0.5, delay * 2)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
