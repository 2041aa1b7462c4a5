"""The SQLite engine's single writer: one thread drains a queue, runs everything it finds
in one transaction and commits, then wakes the callers. Many results per fsync, and a
caller awaiting ``write`` hears back only once its changes are committed.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.store.records import Change
from coordinator.store.rows import runs
from coordinator.store.sqlite_schema import SQL

MAX_BATCH = 5000


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


class Writer:
    def __init__(self, path: str, max_batch_wait_s: float) -> None:
        self.path = path
        self._max_batch_wait_s = max_batch_wait_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._thread.start()
        self.commits = 0
        self.changes_written = 0

    def close(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(
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
            await self.submit(changes)

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
        await self.submit((), lambda _conn: None)

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
            while len(batch) < MAX_BATCH:
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
                    for kind, rows in runs(pending.changes):
                        conn.executemany(SQL[kind], rows)
                    if pending.fn is not None:
                        pending.value = pending.fn(conn)
        except Exception as exc:  # the writer thread must outlive any one bad write
            for pending in batch:
                pending.error = exc
            return False
        self.commits += 1
        self.changes_written += sum(len(p.changes) for p in batch)
        return True
