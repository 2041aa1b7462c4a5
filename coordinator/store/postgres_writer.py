"""The PostgreSQL engine's single writer: one task drains a queue of writes, commits
everything it finds in one transaction, then wakes the callers; it reconnects by itself.

When the server goes away (a restart, a failover), a batch waits and retries for up to
``retry_for_s`` before it fails, so queued changes are not lost to a short outage. Every
write is idempotent (upserts, absolute updates, one result per task id), so a batch
retried after a commit whose acknowledgement was lost changes nothing. A batch's changes
go out kind by kind (``KIND_ORDER``), the hot kinds as one statement over arrays
(``postgres_schema.BULK``): a thousand agents' results are a handful of round trips.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import psycopg
import structlog

from coordinator.store.postgres_admin import Conn, close_quietly
from coordinator.store.postgres_schema import SQL, bulk
from coordinator.store.postgres_tail import NOTIFY
from coordinator.store.records import (
    AgentHello,
    AgentSeen,
    Change,
    JobProgress,
    PutApiToken,
    PutAudit,
    PutEnrollment,
    PutJob,
    PutResult,
    PutTask,
    TaskProgress,
)
from coordinator.store.rows import runs

log = structlog.get_logger("vantage.coordinator")

MAX_BATCH = 5000


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


# The order in which a batch's changes are applied, kind by kind. Every change is an
# insert made once (before any update of its record: a job, then its rounds' tasks) or an
# absolute update, so applying them by kind in this order, each kind in queue order, ends
# where applying them one by one would, in a few statements per batch instead of a few
# per caller; agents' last_seen only ever moves forward (GREATEST), whatever the order.
KIND_ORDER = (
    PutJob, JobProgress, PutTask, TaskProgress, AgentHello, AgentSeen, PutResult, PutEnrollment, PutApiToken,
    PutAudit,
)  # fmt: skip


def by_kind(batches: Iterable[Sequence[Change]]) -> list[tuple[type, list[tuple[Any, ...]]]]:
    grouped: dict[type, list[tuple[Any, ...]]] = {kind: [] for kind in KIND_ORDER}
    for changes in batches:
        for kind, rows in runs(changes):
            grouped[kind].extend(rows)
    return [(kind, rows) for kind, rows in grouped.items() if rows]


class Writer:
    def __init__(
        self, connect: Callable[[], Awaitable[Conn]], conn: Conn, *, retry_for_s: float, shown: str
    ) -> None:
        self._connect = connect
        self._write: Conn | None = conn
        self.retry_for_s = retry_for_s
        self.safe_url = shown
        self.commits = 0
        # Run first in every transaction (the fleet lease's fence, postgres_lease.py): it
        # raises to refuse the whole commit.
        self.fence: Callable[[Conn], Awaitable[None]] | None = None
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._closing = False
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")

    async def close(self) -> None:
        self._closing = True
        self._queue.put_nowait(None)
        await self._task
        await close_quietly(self._write)

    def submit(self, changes: Sequence[Change], fn: Callable[[Conn], Awaitable[Any]] | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(changes, future=future, fn=fn))
        return future

    async def write(self, changes: Sequence[Change]) -> None:
        if changes:
            await self.submit(changes)

    def write_nowait(self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]) -> None:
        if changes:
            self._queue.put_nowait(_Pending(changes, on_error=on_error))

    async def flush(self) -> None:
        await self.submit((), _nothing)

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
                await close_quietly(self._write)
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
            if self.fence is not None:
                await self.fence(conn)
            for kind, rows in by_kind(p.changes for p in batch):
                one = bulk(kind, rows) if len(rows) > 1 else None
                if one is not None:
                    await cur.execute(one[0], one[1])
                else:
                    await cur.executemany(SQL[kind], rows)
                if kind is PutResult:
                    await cur.execute(NOTIFY)  # delivered at commit: tails wake (postgres_tail.py)
            for pending in batch:
                if pending.fn is not None:
                    pending.value = await pending.fn(conn)
        self.commits += 1



async def _nothing(_conn: Conn) -> None:
    return None
