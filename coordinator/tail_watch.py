"""``WatchJob`` at a fleet member that does not schedule: the job's results and failed
tasks read from the shared database as they commit, whichever coordinator stored them
(``coordinator/store/postgres_tail.py``: each row exactly once, in order of commit
horizons). So a watch goes on through a takeover of the lease, and it never holds more
than a page of results in memory.

It gives what the lease holder's own ``WatchJob`` gives: the results stored so far, then
(with ``follow``) each new result and each failed task, then the job's end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from coordinator import convert
from coordinator.model import Job, Task
from protos.vantage.v1 import vantage_pb2 as pb

POLL_S = 0.5  # when no notification comes
SETTLE_S = 0.05  # waiting for the last transactions before the job's end to be readable


class TailStore(Protocol):
    async def tail_job(self, job_id: str) -> Job | None: ...
    async def tail_horizon(self) -> int: ...
    async def tail_xmax(self) -> int: ...
    def tail_results(self, job_id: str, lo: int, hi: int) -> AsyncIterator[bytes]: ...
    async def tail_failed(self, job_id: str, lo: int, hi: int) -> list[Task]: ...
    async def wait_results(self, within_s: float) -> None: ...


async def watch(store: TailStore, job: Job, *, follow: bool) -> AsyncIterator[pb.WatchJobEvent]:
    lo, hi = 0, await store.tail_horizon()
    end_at: int | None = None  # the horizon to reach before the end: all committed by then
    current = job
    first = True
    while True:
        async for raw in store.tail_results(job.job_id, lo, hi):
            yield convert.watch_result(raw)
        if not first:  # as at the holder: failures are live events, not part of the stored past
            for task in await store.tail_failed(job.job_id, lo, hi):
                yield convert.watch_failure(task)
        first = False
        lo = hi
        if end_at is None:
            found = await store.tail_job(job.job_id)
            current = found or current
            if not follow or current.state.finished:
                end_at = await store.tail_xmax()
        if end_at is not None and lo >= end_at:
            yield convert.watch_end(current)
            return
        await store.wait_results(SETTLE_S if end_at is not None else POLL_S)
        hi = await store.tail_horizon()
