"""What the coordinator writes and reads, as its own records: no SQL text anywhere.

A write is a list of changes. Each change holds a snapshot of the record it was made
from (``PutTask.of(task)`` copies the task), so an engine that commits it later, on
another thread or connection, stores the values of the moment the change was made.
Every engine applies a list of changes in order, all of it or none of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from coordinator.model import (
    AgentInfo,
    ApiToken,
    AuditEntry,
    Enrollment,
    Job,
    Task,
    TaskResultData,
    TaskState,
)


@dataclass(frozen=True, slots=True)
class PutJob:
    """A new job, whole (its spec never changes afterwards)."""

    job: Job

    @classmethod
    def of(cls, job: Job) -> PutJob:
        return cls(dataclasses.replace(job))


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A job's state, counters, next round and reason."""

    job: Job

    @classmethod
    def of(cls, job: Job) -> JobProgress:
        return cls(dataclasses.replace(job))


@dataclass(frozen=True, slots=True)
class PutTask:
    """A new task, whole."""

    task: Task

    @classmethod
    def of(cls, task: Task) -> PutTask:
        return cls(dataclasses.replace(task))


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """A task's life-cycle fields: agent, region, state, assignment time, attempts, reason."""

    task: Task

    @classmethod
    def of(cls, task: Task) -> TaskProgress:
        return cls(dataclasses.replace(task))


@dataclass(frozen=True, slots=True)
class AgentHello:
    """An agent connected: its declared facts, when, and from where."""

    info: AgentInfo
    at: float
    peer: str


@dataclass(frozen=True, slots=True)
class AgentSeen:
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class PutResult:
    """A measurement. Engines keep one per task id: a second one for the same task is
    ignored, so a result resent after a reconnect is stored once."""

    result: TaskResultData
    region: str
    received_at: float


@dataclass(frozen=True, slots=True)
class PutEnrollment:
    """An agent enrolled, or its enrolment revoked (``revoked_at``): the whole record."""

    enrollment: Enrollment


@dataclass(frozen=True, slots=True)
class PutApiToken:
    """An API token made, or revoked (``revoked_at``): the whole record."""

    token: ApiToken


@dataclass(frozen=True, slots=True)
class PutAudit:
    entry: AuditEntry


Change = (
    PutJob | JobProgress | PutTask | TaskProgress | AgentHello | AgentSeen | PutResult
    | PutEnrollment | PutApiToken | PutAudit
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredAgent:
    info: AgentInfo
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class TaskLookup:
    """What the store knows of a task id the coordinator no longer holds open."""

    task_id: str
    result_stored: bool
    agent_id: str | None  # None: no such task
    state: TaskState | None


@dataclass(frozen=True, slots=True)
class RecentResult:
    """A stored measurement with what the analysis needs beside the agent's bytes: the
    target as its job named it, the region of the agent, and when it was received."""

    raw: bytes
    job_id: str
    target: str
    agent_id: str
    region: str
    received_at: float
    country: str = ""
    asn: int = 0


@dataclass(frozen=True, slots=True)
class Pruned:
    measurements: int
    tasks: int
    jobs: int
