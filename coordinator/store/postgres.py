"""The PostgreSQL engine (``--db postgresql://user:pass@host:port/dbname``), psycopg 3.

One writer task drains a queue of writes and commits everything it finds in one
transaction, then wakes the callers: the same promises as the SQLite engine. A batch's
changes go out kind by kind (``KIND_ORDER``), the hot kinds as one statement over arrays
(``postgres_schema.BULK``), so a batch of a thousand agents' results is a handful of
round trips. Reads use their own connection. Both reconnect by themselves: when the
server goes away (a restart, a failover), a write waits and retries for up to
``retry_for_s`` before it fails, so queued changes are not lost to a short outage, and
an agent's results are acked only once they are committed. Every write is idempotent
(upserts, absolute updates, one result per task id), so a batch retried after a commit
whose acknowledgement was lost changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import psycopg
import structlog

from coordinator.model import AgentInfo, Job, JobState, Task, TaskState
from coordinator.store.codec import spec_from_json
from coordinator.store.postgres_schema import (
    DAY_S,
    DAYS_AHEAD,
    FINISHED_JOBS,
    FINISHED_TASKS,
    LOCK_KEY,
    MIGRATIONS,
    OWNER_KEY,
    SCHEMA_VERSION,
    SQL,
    bulk,
    day_of,
    day_start,
    partition_day,
    partition_ddl,
)
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
from coordinator.store.rows import runs

log = structlog.get_logger("vantage.coordinator")

MAX_BATCH = 5000
Conn = psycopg.AsyncConnection[Any]


def redact(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class _Pending:
    __slots__ = ("changes", "fn", "future", "on_error", "value")

    def __init__(
        self,
        changes: Sequence[Change],
        future: asyncio.Future[Any] | None = None,
        on_error: Callable[[BaseException, int], None] | None = None,
        fn: Callable[[Conn], Awaitable[Any]] | None = None,
    ) -> None:
        self.changes = changes
        self.future = future
        self.on_error = on_error
        self.fn = fn
        self.value: Any = None

    def settle(self, error: BaseException | None) -> None:
        if self.future is not None and not self.future.done():
            if error is None:
                self.future.set_result(self.value)
            else:
                self.future.set_exception(error)
        elif error is not None and self.on_error is not None:
            self.on_error(error, len(self.changes))


async def migrate(conn: Conn) -> int:
    """Bring the database's schema to SCHEMA_VERSION; returns the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS vantage_schema (version integer PRIMARY KEY, "
            "applied_at double precision NOT NULL)"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM vantage_schema")
        row = await cur.fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise psycopg.errors.FeatureNotSupported(
                f"schema version {found} is newer than this vantage knows ({SCHEMA_VERSION}); "
                "run a newer vantage or another database"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])  # several statements, no parameters
            await conn.execute("INSERT INTO vantage_schema VALUES (%s, %s)", (version, time.time()))
    return found


async def ensure_partitions(conn: Conn, now: float) -> int:
    """Daily partitions from yesterday to DAYS_AHEAD days ahead; returns how many exist
    after. A day whose rows already sit in the DEFAULT partition keeps them there."""
    today = day_of(now)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for offset in range(-1, DAYS_AHEAD + 1):
            day = today + dt.timedelta(days=offset)
            try:
                async with conn.transaction():  # a savepoint: one refusal spoils nothing else
                    await conn.execute(partition_ddl(day))
            except psycopg.errors.CheckViolation:
                log.warning("partition_not_created", day=str(day), reason="rows in the default partition")
    return len(await _partitions(conn))


async def _partitions(conn: Conn) -> list[tuple[str, dt.date]]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'measurements'"
    )
    out = []
    for (name,) in await cur.fetchall():
        day = partition_day(name)
        if day is not None:
            out.append((name, day))
    return sorted(out, key=lambda p: p[1])


class PostgresStore:
    engine = "postgres"

    def __init__(self, url: str, *, retry_for_s: float = 30.0) -> None:
        self.url = url
        self.safe_url = redact(url)
        self.retry_for_s = retry_for_s
        self.migrated_from = 0
        self.commits = 0
        self._write: Conn | None = None
        self._read: Conn | None = None
        self._read_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._owner: Conn | None = None
        self._closing = False

    async def _connect(self) -> Conn:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10)

    async def open(self) -> None:
        """Connect, migrate, make the partitions, start the writer."""
        conn = await self._connect()
        try:
            self.migrated_from = await migrate(conn)
            await ensure_partitions(conn, time.time())
            await self._own()
        except BaseException:
            await _close(conn)
            raise
        self._write = conn
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")

    # -- writes -------------------------------------------------------------------------

    def _submit(self, changes: Sequence[Change], fn: Callable[[Conn], Awaitable[Any]] | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(changes, future=future, fn=fn))
        return future

    async def write(self, changes: Sequence[Change]) -> None:
        if changes:
            await self._submit(changes)

    def write_nowait(self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]) -> None:
        if changes:
            self._queue.put_nowait(_Pending(changes, on_error=on_error))

    async def flush(self) -> None:
        await self._submit((), _nothing)

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            error = await self._commit_retrying(batch)
            if error is None or len(batch) == 1 or isinstance(error, psycopg.OperationalError):
                for pending in batch:
                    pending.settle(error)
            else:
                # One caller's bad write must not sink the others': commit each on its own.
                for pending in batch:
                    pending.settle(await self._commit_retrying([pending]))
            if stop:
                return

    async def _commit_retrying(self, batch: list[_Pending]) -> BaseException | None:
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.1
        while True:
            try:
                await self._commit(batch)
                return None
            except psycopg.OperationalError as exc:  # the connection or the server, not the data
                await _close(self._write)
                self._write = None
                if self._closing or time.monotonic() >= deadline:
                    return exc
                log.warning("store_unavailable", db=self.safe_url, error=str(exc).strip(), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
            except Exception as exc:  # the writer must outlive any one bad write
                return exc

    async def _commit(self, batch: list[_Pending]) -> None:
        if self._write is None or self._write.closed:
            self._write = await self._connect()
        conn = self._write
        async with conn.transaction(), conn.cursor() as cur:
            for kind, rows in by_kind(p.changes for p in batch):
                one = bulk(kind, rows) if len(rows) > 1 else None
                if one is not None:
                    await cur.execute(one[0], one[1])
                else:
                    await cur.executemany(SQL[kind], rows)
            for pending in batch:
                if pending.fn is not None:
                    pending.value = await pending.fn(conn)
        self.commits += 1

    async def _own(self) -> None:
        """Take the owner lock on a connection of its own, held while this store lives;
        raises OwnerTaken when another coordinator holds it."""
        conn = await self._connect()
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_KEY,))
        row = await cur.fetchone()
        if not (row and row[0]):
            await _close(conn)
            raise OwnerTaken(
                "another coordinator already uses this database; one coordinator per "
                "database until the fleet of coordinators is built (README: PostgreSQL)"
            )
        self._owner = conn

    async def maintain(self, now: float) -> None:
        """Make the coming days' partitions (run every few minutes by the server), and
        take the owner lock again if a server restart dropped it."""
        if self._owner is None or self._owner.closed or not await _alive(self._owner):
            await _close(self._owner)
            self._owner = None
            try:
                await self._own()
            except OwnerTaken:
                log.error("store_owner_lost", db=self.safe_url,
                          reason="another coordinator took the database while the server restarted")  # fmt: skip

        async def run(conn: Conn) -> int:
            return await ensure_partitions(conn, now)

        await self._submit((), run)

    async def prune(self, before: float) -> Pruned:
        """Drop the partitions wholly older than ``before``, delete what is older in the
        rest, and the finished tasks and jobs older than it. Open work is never touched."""

        async def run(conn: Conn) -> Pruned:
            dropped = 0
            for name, day in await _partitions(conn):
                if day_start(day) + DAY_S <= before:
                    cur = await conn.execute(f"SELECT count(*) FROM {name}")  # our own name
                    row = await cur.fetchone()
                    dropped += int(row[0]) if row else 0
                    await conn.execute(f"DROP TABLE {name}")
            cur = await conn.execute("DELETE FROM measurements WHERE received_at < %s", (before,))
            m = dropped + cur.rowcount
            await conn.execute("DELETE FROM result_ids WHERE received_at < %s", (before,))
            cur = await conn.execute(
                "DELETE FROM tasks WHERE due_at < %s AND state = ANY(%s)", (before, FINISHED_TASKS)
            )
            t = cur.rowcount
            cur = await conn.execute(
                "DELETE FROM jobs WHERE finished_at > 0 AND finished_at < %s AND state = ANY(%s)",
                (before, FINISHED_JOBS),
            )
            return Pruned(measurements=m, tasks=t, jobs=cur.rowcount)

        pruned: Pruned = await self._submit((), run)
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
                    await _close(self._read)
                    self._read = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def load_jobs(self) -> list[Job]:
        rows = await self._query(
            "SELECT job_id, spec, state, created_at, finished_at, next_round_at, rounds_done, "
            "tasks_created, tasks_expected, tasks_done, tasks_failed, reason FROM jobs ORDER BY created_at"
        )
        return [
            Job(
                job_id=r[0], spec=spec_from_json(r[1]), state=JobState(r[2]), created_at=r[3],
                finished_at=r[4] or 0.0, next_round_at=r[5], rounds_done=r[6], tasks_created=r[7],
                tasks_expected=r[8], tasks_done=r[9], tasks_failed=r[10], reason=r[11] or "",
            )
            for r in rows
        ]

    async def load_open_tasks(self) -> list[Task]:
        rows = await self._query(
            "SELECT task_id, job_id, round, target, agent_id, region, state, due_at, deadline, "
            "assigned_at, attempts, reason FROM tasks WHERE state IN ('pending', 'assigned')"
        )
        return [
            Task(
                task_id=r[0], job_id=r[1], round=r[2], target=r[3], agent_id=r[4], region=r[5],
                state=TaskState(r[6]), due_at=r[7], deadline=r[8], assigned_at=r[9] or 0.0,
                attempts=r[10] or 0, reason=r[11] or "",
            )
            for r in rows
        ]

    async def load_agents(self) -> list[StoredAgent]:
        rows = await self._query(
            "SELECT agent_id, region, country, asn, labels, version, kinds, first_seen, last_seen FROM agents"
        )
        return [
            StoredAgent(
                info=AgentInfo(
                    agent_id=r[0], region=r[1], country=r[2] or "", asn=r[3] or 0,
                    labels=json.loads(r[4] or "{}"), version=r[5] or "",
                    kinds=tuple(json.loads(r[6] or "[]")),
                ),
                first_seen=r[7] or 0.0, last_seen=r[8] or 0.0,
            )
            for r in rows
        ]

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
            "SELECT m.result, m.job_id, coalesce(t.target, m.target), m.agent_id, m.region, "
            "m.received_at FROM measurements m LEFT JOIN tasks t ON t.task_id = m.task_id "
            "WHERE m.received_at >= %s ORDER BY m.received_at DESC LIMIT %s",
            (since, limit),
        )
        return [
            RecentResult(raw=bytes(r[0]), job_id=r[1], target=r[2] or "", agent_id=r[3],
                         region=r[4] or "", received_at=r[5])
            for r in reversed(rows)
        ]

    async def lookup_tasks(self, task_ids: Sequence[str]) -> list[TaskLookup]:
        ids = list(task_ids)
        stored = {r[0] for r in await self._query("SELECT task_id FROM result_ids WHERE task_id = ANY(%s)", (ids,))}
        owners = {
            r[0]: (r[1], r[2])
            for r in await self._query("SELECT task_id, agent_id, state FROM tasks WHERE task_id = ANY(%s)", (ids,))
        }
        out = []
        for tid in ids:
            owner = owners.get(tid)
            out.append(TaskLookup(task_id=tid, result_stored=tid in stored, agent_id=owner[0] if owner else None,
                                  state=TaskState(owner[1]) if owner else None))  # fmt: skip
        return out

    async def count_results(self, job_id: str | None = None) -> int:
        if job_id is None:
            rows = await self._query("SELECT count(*) FROM measurements")
        else:
            rows = await self._query("SELECT count(*) FROM measurements WHERE job_id = %s", (job_id,))
        return int(rows[0][0])

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
        await _close(self._write)
        await _close(self._read)
        await _close(self._owner)


# The order in which a batch's changes are applied, kind by kind. Every change is an
# insert made once (before any update of its record: a job, then its rounds' tasks) or an
# absolute update, so applying them by kind in this order, each kind in queue order, ends
# where applying them one by one would, in a few statements per batch instead of a few
# per caller; agents' last_seen only ever moves forward (GREATEST), whatever the order.
KIND_ORDER = (PutJob, JobProgress, PutTask, TaskProgress, AgentHello, AgentSeen, PutResult)


def by_kind(batches: Iterable[Sequence[Change]]) -> list[tuple[type, list[tuple[Any, ...]]]]:
    grouped: dict[type, list[tuple[Any, ...]]] = {kind: [] for kind in KIND_ORDER}
    for changes in batches:
        for kind, rows in runs(changes):
            grouped[kind].extend(rows)
    return [(kind, rows) for kind, rows in grouped.items() if rows]


class OwnerTaken(Exception):
    """Another coordinator holds this database."""


async def _alive(conn: Conn) -> bool:
    try:
        await conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


async def _nothing(_conn: Conn) -> None:
    return None


async def _close(conn: Conn | None) -> None:
    if conn is not None and not conn.closed:
        with contextlib.suppress(psycopg.Error):
            await conn.close()
