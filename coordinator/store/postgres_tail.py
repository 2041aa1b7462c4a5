"""Reading what any coordinator of a fleet committed, each row exactly once, in order of
commit horizons (``WatchJob`` at a coordinator that does not schedule).

A sequence number alone cannot do it: ``seq`` is taken when a row is inserted, not when
it commits, so a reader that remembers the highest ``seq`` it saw skips a row whose
transaction took a lower one and committed later. Every measurement and task row carries
the id of the transaction that last wrote it (``tx``, migration v2). The *horizon*
``pg_snapshot_xmin(pg_current_snapshot())`` is the oldest transaction still running:
every transaction below it has ended, so the rows with ``lo <= tx < horizon`` are final.
A reader that reads ``[0, h0)`` and then each ``[h_prev, h_now)`` sees every row once.
A transaction left open elsewhere on the server holds the horizon back (and so delays,
never loses, what the reader sees).

The writer sends ``NOTIFY vantage_results`` with each commit that stores results, so a
tail wakes at once rather than at its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from coordinator.model import Job, Task
from coordinator.store import decode

Query = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]

CHANNEL = "vantage_results"
NOTIFY = f"NOTIFY {CHANNEL}"
HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# Every transaction below this has ended or is running: once the horizon passes it, all
# that had committed when it was taken is readable below the horizon.
XMAX = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"


async def horizon(query: Query) -> int:
    return int((await query(HORIZON, ()))[0][0])


async def xmax(query: Query) -> int:
    return int((await query(XMAX, ()))[0][0])


async def job(query: Query, job_id: str) -> Job | None:
    rows = await query(f"SELECT {decode.JOB_COLUMNS} FROM jobs WHERE job_id = %s", (job_id,))
    return decode.job(rows[0]) if rows else None


async def results(query: Query, job_id: str, lo: int, hi: int, *, page: int = 500) -> AsyncIterator[bytes]:
    """The job's results written by transactions in ``[lo, hi)``, page by page in seq order."""
    after = -1
    while True:
        rows = await query(
            "SELECT seq, result FROM measurements WHERE job_id = %s AND tx >= %s::text::xid8 "
            "AND tx < %s::text::xid8 AND seq > %s ORDER BY seq LIMIT %s",
            (job_id, str(lo), str(hi), after, page),
        )
        for seq, raw in rows:
            after = seq
            yield bytes(raw)
        if len(rows) < page:
            return


async def failed_tasks(query: Query, job_id: str, lo: int, hi: int) -> list[Task]:
    """The job's tasks that failed in a transaction in ``[lo, hi)`` (a failed task is final:
    its row is written no more)."""
    rows = await query(
        f"SELECT {decode.TASK_COLUMNS} FROM tasks WHERE job_id = %s AND state = 'failed' "
        "AND tx >= %s::text::xid8 AND tx < %s::text::xid8 ORDER BY due_at",
        (job_id, str(lo), str(hi)),
    )
    return [decode.task(r) for r in rows]


class Listener:
    """``LISTEN vantage_results`` on a connection of its own, started on first use: wakes
    every waiting tail when any coordinator committed results. Reconnects after a break;
    a tail also polls, so a lost notification only delays it."""

    def __init__(self, connect: Callable[[], Awaitable[Any]]) -> None:
        self._connect = connect
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def wait(self, within_s: float) -> None:
        if self._task is None:
            self._event = asyncio.Event()
            self._task = asyncio.create_task(self._listen(), name="store-listener")
        assert self._event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), within_s)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    async def _listen(self) -> None:
        while True:
            conn = None
            try:
                conn = await self._connect()
                await conn.execute(f"LISTEN {CHANNEL}")
                async for _ in conn.notifies():
                    self._wake()
            except asyncio.CancelledError:
                raise
            except Exception:  # the server went away: poll until it is back
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
