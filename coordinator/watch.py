"""Watcher fan-out: the events of a job, to every ``WatchJob`` stream following it.

Each watcher has its own bounded queue; one that falls MAX_WATCH_BACKLOG events behind
is dropped (it gets one ``overflow`` event and its stream ends with RESOURCE_EXHAUSTED)
instead of holding memory for a reader that does not read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from coordinator.model import Job, Task, TaskResultData

MAX_WATCH_BACKLOG = 10_000


@dataclass
class WatchEvent:
    result: TaskResultData | None = None
    region: str = ""
    failed_task: Task | None = None
    job_end: Job | None = None
    overflow: bool = False  # the watcher fell behind and was dropped


class Watchers:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[WatchEvent]]] = defaultdict(set)

    def watch(self, job_id: str) -> asyncio.Queue[WatchEvent]:
        q: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._queues[job_id].add(q)
        return q

    def unwatch(self, job_id: str, q: asyncio.Queue[WatchEvent]) -> None:
        queues = self._queues.get(job_id)
        if queues is None:
            return
        queues.discard(q)
        if not queues:
            del self._queues[job_id]

    def watching(self, job_id: str) -> int:
        return len(self._queues.get(job_id, ()))

    def notify(self, job_id: str, event: WatchEvent) -> None:
        for q in list(self._queues.get(job_id, ())):
            if q.qsize() >= MAX_WATCH_BACKLOG:
                self.unwatch(job_id, q)
                q.put_nowait(WatchEvent(overflow=True))
            else:
                q.put_nowait(event)
