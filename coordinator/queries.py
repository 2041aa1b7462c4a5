"""The coordinator's read-only queries: what the servicers and the metrics collector
may ask. They return copies or immutable records, never the live state."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter

from coordinator.analysis import Analyzer, Snapshot
from coordinator.lifecycle import Book
from coordinator.model import AgentInfo, Job
from coordinator.observe import Counters
from coordinator.registry import AgentView, Registry


class Queries:
    book: Book
    registry: Registry
    analyzer: Analyzer
    counters: Counters

    def job(self, job_id: str) -> Job | None:
        job = self.book.jobs.get(job_id)
        return dataclasses.replace(job) if job is not None else None  # its spec is frozen

    def recent_jobs(self, limit: int) -> list[Job]:
        jobs = sorted(self.book.jobs.values(), key=lambda j: j.created_at, reverse=True)[:limit]
        return [dataclasses.replace(j) for j in jobs]

    def agents(self) -> list[AgentView]:
        return self.registry.views()

    def connected_agents(self) -> list[AgentInfo]:
        return self.registry.connected()

    def job_states(self) -> Counter[str]:
        return Counter(j.state.value for j in self.book.jobs.values())

    def stats(self) -> Counters:
        """A copy of the ingest counters, for the metrics collector (a few hundred keys:
        regions x kinds x outcomes)."""
        return copy.deepcopy(self.counters)

    def open_task_count(self) -> int:
        return len(self.book.tasks)

    @property
    def snapshot(self) -> Snapshot:
        return self.analyzer.snapshot
