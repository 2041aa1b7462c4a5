"""The coordinator's plain data: jobs, tasks, agents and stored results.

Protobuf stays at the edge (``coordinator/convert.py``); everything inside works on these.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.CANCELLED, JobState.FAILED)


class TaskState(enum.StrEnum):
    PENDING = "pending"  # waiting for its due time or for an agent
    ASSIGNED = "assigned"  # sent to an agent, no result yet
    DONE = "done"  # a result was stored (ok or a failure class)
    FAILED = "failed"  # could not run: no agent before the deadline
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)


@dataclass(frozen=True, kw_only=True)
class Selector:
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    agent_ids: tuple[str, ...] = ()
    per_region: int = 0


# JobSpec.purpose of the coordinator's own canary job (coordinator/canary.py); callers
# cannot submit one: its results vouch for the agents' reach of the outside world.
CANARY_PURPOSE = "canary"


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    kind: str
    targets: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)
    selector: Selector = field(default_factory=Selector)
    every_s: float = 0.0
    count: int = 0
    until: float = 0.0
    spread_s: float = 0.0
    timeout_s: float = 0.0
    purpose: str = ""  # "" for submitted jobs; CANARY_PURPOSE for the canary job

    @property
    def periodic(self) -> bool:
        return self.every_s > 0

    @property
    def rounds(self) -> int | None:
        """How many rounds the job runs, or None when it runs until a time."""
        if not self.periodic:
            return 1
        return self.count if self.count > 0 else None


@dataclass(kw_only=True)
class Job:
    job_id: str
    spec: JobSpec
    state: JobState
    created_at: float
    next_round_at: float
    finished_at: float = 0.0
    rounds_done: int = 0
    tasks_created: int = 0
    tasks_expected: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    reason: str = ""
    # The API token that submitted it ("" for the canary; "bootstrap", "loopback"), and
    # what it counts against that token's tasks-per-hour quota (coordinator/quotas.py).
    owner: str = ""
    hourly_cost: int = 0


@dataclass(kw_only=True)
class Task:
    task_id: str
    job_id: str
    round: int
    target: str
    agent_id: str
    region: str
    state: TaskState
    due_at: float
    deadline: float
    assigned_at: float = 0.0
    attempts: int = 0
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AgentInfo:
    agent_id: str
    region: str
    country: str = ""
    asn: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    version: str = ""
    kinds: tuple[str, ...] = ()
    concurrency: int = 0


@dataclass(frozen=True, kw_only=True)
class ProbeResultData:
    kind: str
    target: str
    failure: str
    failure_detail: str
    duration_s: float
    data: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class TaskResultData:
    task_id: str
    job_id: str
    agent_id: str
    started_at: float
    finished_at: float
    result: ProbeResultData
    # The result as stored and shown to watchers (a serialized vantage.v1.TaskResult):
    # what the agent sent, with the fields the coordinator vouches for set by it
    # (coordinator/vouch.py).
    raw: bytes = b""
    # The agent's failure string was not one of the closed set (stored as unknown_failure,
    # counted under the outcome "invalid").
    invalid_failure: bool = False
    # Where the agent stood when it measured (TaskResult.place): set by the coordinator
    # from the session's agent (its enrolment, or its hello) when it vouches for the result.
    region: str = ""
    country: str = ""
    asn: int = 0


# Credentials (coordinator/access.py) and the audit record: only hashes of tokens.


@dataclass(frozen=True, kw_only=True)
class Enrollment:
    """An enrolled agent: its token (as a hash) bound to its id and where it stands."""

    agent_id: str
    token_hash: str
    region: str
    country: str = ""
    asn: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    revoked_at: float = 0.0
    created_by: str = ""


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    """An API token (as a hash) with its role and quotas."""

    name: str
    token_hash: str
    role: str
    max_active_jobs: int = 0  # 0: no limit
    max_tasks_per_hour: int = 0  # 0: no limit
    # The most bytes its jobs' probes may move in an hour (coordinator/quotas.py); 0: no limit.
    max_bytes_per_hour: int = 0
    created_at: float = 0.0
    revoked_at: float = 0.0
    created_by: str = ""


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    at: float
    actor: str  # the API token's name (coordinator/access.py Principal.name)
    action: str  # submit, cancel, enroll_agent, revoke_agent, add_token, revoke_token
    subject: str  # the job id, agent id or token name
    detail: str = "{}"  # a JSON object


# What the coordinator sends down an agent's stream, before it becomes protobuf
# (coordinator/convert.py outgoing_to_pb): the session queue holds these.


@dataclass(frozen=True, kw_only=True, slots=True)
class Assignment:
    task_id: str
    job_id: str
    kind: str
    target: str
    options: Mapping[str, str]
    not_before: float
    deadline: float
    canary: bool = False  # runs in the agent's canary lane (agent/runner.py)


@dataclass(frozen=True, kw_only=True, slots=True)
class Cancellation:
    task_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Acknowledgement:
    task_ids: tuple[str, ...]


Outgoing = Assignment | Cancellation | Acknowledgement
