"""The PostgreSQL engine (``--db postgresql://user:pass@host:port/dbname``), psycopg 3.

Writes go through one writer task (``postgres_writer.py``): batched commits, the same
promises as the SQLite engine, and a short server outage waited out. Reads use their own
connection and reconnect once when it broke. Migrations, partitions and pruning are in
``postgres_admin.py``; the schema and statements in ``postgres_schema.py``; the fleet's
lease in ``postgres_lease.py``. Any number of coordinators may open one database: the
lease decides which of them schedules (``coordinator/fleet.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import psycopg
import structlog

from coordinator.model import ApiToken, AuditEntry, Enrollment, Job, Task
from coordinator.store import decode, postgres_tail
from coordinator.store import postgres_admin as admin
from coordinator.store.postgres_admin import Conn, close_quietly, redact
from coordinator.store.postgres_lease import Lease, fence_check
from coordinator.store.postgres_writer import Writer
from coordinator.store.records import Change, Pruned, RecentResult, StoredAgent, TaskLookup

log = structlog.get_logger("vantage.coordinator")

__all__ = ["PostgresStore", "redact"]


class PostgresStore:
    engine = "postgres"

    shared = True  # several coordinators may use one database: a fleet

    def __init__(self, url: str, *, retry_for_s: float = 30.0) -> None:
        self.url = url
        self.safe_url = redact(url)
        self.retry_for_s = retry_for_s
        self.migrated_from = 0
        self._writer: Writer | None = None
        self._read: Conn | None = None
        self._read_lock = asyncio.Lock()
        self._listener = postgres_tail.Listener(self._connect)

    async def _connect(self) -> Conn:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10)

    async def open(self) -> None:
        """Connect, migrate, make the partitions, start the writer."""
        conn = await self._connect()
        try:
            self.migrated_from = await admin.migrate(conn)
            await admin.ensure_partitions(conn, time.time())
        except BaseException:
            await close_quietly(conn)
            raise
        self._writer = Writer(self._connect, conn, retry_for_s=self.retry_for_s, shown=self.safe_url)

    def lease(self) -> Lease:
        """The fleet's lease, on a connection of its own."""
        return Lease(self._connect)

    def fence(self, holder: str, epoch: int) -> None:
        """From now on every commit checks that ``holder`` still holds lease ``epoch``."""
        self.writer.fence = fence_check(holder, epoch)

    @property
    def writer(self) -> Writer:
        assert self._writer is not None, "PostgresStore.open() first"
        return self._writer

    @property
    def commits(self) -> int:
        return self.writer.commits

    # -- writes -------------------------------------------------------------------------

    async def write(self, changes: Sequence[Change]) -> None:
        await self.writer.write(changes)

    def write_nowait(self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]) -> None:
        self.writer.write_nowait(changes, on_error)

    async def flush(self) -> None:
        await self.writer.flush()

    async def maintain(self, now: float) -> None:
        """Make the coming days' partitions (run every few minutes by the server)."""

        async def run(conn: Conn) -> int:
            return await admin.ensure_partitions(conn, now)

        await self.writer.submit((), run)

    async def prune(self, before: float) -> Pruned:
        """``postgres_admin.prune`` in the writer's order: old days dropped whole."""

        async def run(conn: Conn) -> Pruned:
            return await admin.prune(conn, before)

        pruned: Pruned = await self.writer.submit((), run)
        return pruned

    # -- reads --------------------------------------------------------------------------

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._read_lock:
            for attempt in (1, 2):
                if self._read is None or self._read.closed:
                    self._read = await self._connect()
                try:
                    cur = await self._read.execute(sql, params)
                    return await cur.fetchall()
                except psycopg.OperationalError:
                    await close_quietly(self._read)
                    self._read = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def load_jobs(self) -> list[Job]:
        return [decode.job(r) for r in await self._query(f"SELECT {decode.JOB_COLUMNS} FROM jobs ORDER BY created_at")]

    async def load_open_tasks(self) -> list[Task]:
        rows = await self._query(f"SELECT {decode.TASK_COLUMNS} FROM tasks WHERE state IN ('pending', 'assigned')")
        return [decode.task(r) for r in rows]

    async def load_agents(self) -> list[StoredAgent]:
        return [decode.agent(r) for r in await self._query(f"SELECT {decode.AGENT_COLUMNS} FROM agents")]

    async def load_credentials(self) -> tuple[list[Enrollment], list[ApiToken]]:
        """Every enrolment and API token, revoked ones too (their hashes, never a token)."""
        enrolled = await self._query(f"SELECT {decode.ENROLLMENT_COLUMNS} FROM enrollments")
        tokens = await self._query(f"SELECT {decode.TOKEN_COLUMNS} FROM api_tokens")
        return [decode.enrollment(r) for r in enrolled], [decode.api_token(r) for r in tokens]

    async def read_audit(self, since: float, *, limit: int) -> list[AuditEntry]:
        """Audit records at or after ``since``, oldest first: the newest ``limit``."""
        rows = await self._query(
            f"SELECT {decode.AUDIT_COLUMNS} FROM audit WHERE at >= %s ORDER BY seq DESC LIMIT %s", (since, limit)
        )
        return [decode.audit(r) for r in reversed(rows)]

    async def iter_results(self, job_id: str, *, page: int = 500) -> AsyncIterator[tuple[bytes, float]]:
        after = 0
        while True:
            rows = await self._query(
                "SELECT seq, result, received_at FROM measurements WHERE job_id = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                (job_id, after, page),
            )
            for seq, raw, received_at in rows:
                after = seq
                yield bytes(raw), received_at
            if len(rows) < page:
                return

    async def recent_results(self, since: float, *, limit: int) -> list[RecentResult]:
        rows = await self._query(
            f"SELECT {decode.RECENT_COLUMNS} FROM measurements m LEFT JOIN tasks t "
            "ON t.task_id = m.task_id WHERE m.received_at >= %s ORDER BY m.received_at DESC LIMIT %s",
            (since, limit),
        )
        return [decode.recent(r) for r in reversed(rows)]

    async def lookup_tasks(self, task_ids: Sequence[str]) -> list[TaskLookup]:
        ids = list(task_ids)
        stored = {r[0] for r in await self._query("SELECT task_id FROM result_ids WHERE task_id = ANY(%s)", (ids,))}
        owners = {
            r[0]: (r[1], r[2])
            for r in await self._query("SELECT task_id, agent_id, state FROM tasks WHERE task_id = ANY(%s)", (ids,))
        }
        return decode.lookups(ids, stored, owners)

    async def count_results(self, job_id: str | None = None) -> int:
        if job_id is None:
            rows = await self._query("SELECT count(*) FROM measurements")
        else:
            rows = await self._query("SELECT count(*) FROM measurements WHERE job_id = %s", (job_id,))
        return int(rows[0][0])

    # -- the fleet's tail (postgres_tail.py): what any coordinator committed, once --------

    async def tail_horizon(self) -> int:
        return await postgres_tail.horizon(self._query)

    async def tail_xmax(self) -> int:
        return await postgres_tail.xmax(self._query)

    async def tail_job(self, job_id: str) -> Job | None:
        return await postgres_tail.job(self._query, job_id)

    def tail_results(self, job_id: str, lo: int, hi: int) -> AsyncIterator[bytes]:
        return postgres_tail.results(self._query, job_id, lo, hi)

    async def tail_failed(self, job_id: str, lo: int, hi: int) -> list[Task]:
        return await postgres_tail.failed_tasks(self._query, job_id, lo, hi)

    async def wait_results(self, within_s: float) -> None:
        await self._listener.wait(within_s)

    async def close(self) -> None:
        await self._listener.close()
        if self._writer is not None:
            await self._writer.close()
        await close_quietly(self._read)
