"""Stored rows back into the coordinator's records, the same in every engine: each
engine selects these columns, in this order, with its own placeholders."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from coordinator.model import (
    AgentInfo,
    ApiToken,
    AuditEntry,
    Enrollment,
    Job,
    JobState,
    Task,
    TaskState,
)
from coordinator.store.codec import spec_from_json
from coordinator.store.records import RecentResult, StoredAgent, TaskLookup

JOB_COLUMNS = (
    "job_id, spec, state, created_at, finished_at, next_round_at, rounds_done, tasks_created, "
    "tasks_expected, tasks_done, tasks_failed, reason, owner, hourly_cost"
)
TASK_COLUMNS = (
    "task_id, job_id, round, target, agent_id, region, state, due_at, deadline, assigned_at, "
    "attempts, reason"
)
AGENT_COLUMNS = "agent_id, region, country, asn, labels, version, kinds, first_seen, last_seen"
# measurements m LEFT JOIN tasks t: the target as its job named it when the task is known
RECENT_COLUMNS = (
    "m.result, m.job_id, coalesce(t.target, m.target), m.agent_id, m.region, m.received_at, "
    "m.country, m.asn"
)


def job(r: Sequence[Any]) -> Job:
    return Job(
        job_id=r[0], spec=spec_from_json(r[1]), state=JobState(r[2]), created_at=r[3],
        finished_at=r[4] or 0.0, next_round_at=r[5], rounds_done=r[6], tasks_created=r[7],
        tasks_expected=r[8], tasks_done=r[9], tasks_failed=r[10], reason=r[11] or "",
        owner=r[12] or "", hourly_cost=r[13] or 0,
    )  # fmt: skip


def task(r: Sequence[Any]) -> Task:
    return Task(
        task_id=r[0], job_id=r[1], round=r[2], target=r[3], agent_id=r[4], region=r[5],
        state=TaskState(r[6]), due_at=r[7], deadline=r[8], assigned_at=r[9] or 0.0,
        attempts=r[10] or 0, reason=r[11] or "",
    )  # fmt: skip


def agent(r: Sequence[Any]) -> StoredAgent:
    info = AgentInfo(
        agent_id=r[0], region=r[1], country=r[2] or "", asn=r[3] or 0,
        labels=json.loads(r[4] or "{}"), version=r[5] or "", kinds=tuple(json.loads(r[6] or "[]")),
    )  # fmt: skip
    return StoredAgent(info=info, first_seen=r[7] or 0.0, last_seen=r[8] or 0.0)


def recent(r: Sequence[Any]) -> RecentResult:
    return RecentResult(raw=bytes(r[0]), job_id=r[1], target=r[2] or "", agent_id=r[3],
                        region=r[4] or "", received_at=r[5] or 0.0, country=r[6] or "",
                        asn=r[7] or 0)  # fmt: skip


def lookups(
    task_ids: Iterable[str], stored: set[str], owners: Mapping[str, tuple[str, str]]
) -> list[TaskLookup]:
    """One TaskLookup per id, from the ids with a stored result and each known task's
    (agent, state)."""
    out = []
    for tid in task_ids:
        owner = owners.get(tid)
        out.append(
            TaskLookup(
                task_id=tid, result_stored=tid in stored, agent_id=owner[0] if owner else None,
                state=TaskState(owner[1]) if owner else None,
            )
        )
    return out


ENROLLMENT_COLUMNS = "agent_id, token_hash, region, country, asn, labels, created_at, revoked_at, created_by"
TOKEN_COLUMNS = (
    "name, token_hash, role, max_active_jobs, max_tasks_per_hour, created_at, revoked_at, created_by, "
    "max_bytes_per_hour"
)
AUDIT_COLUMNS = "at, actor, action, subject, detail"


def enrollment(r: Sequence[Any]) -> Enrollment:
    return Enrollment(
        agent_id=r[0], token_hash=r[1], region=r[2], country=r[3] or "", asn=r[4] or 0,
        labels=json.loads(r[5] or "{}"), created_at=r[6] or 0.0, revoked_at=r[7] or 0.0, created_by=r[8] or "",
    )  # fmt: skip


def api_token(r: Sequence[Any]) -> ApiToken:
    return ApiToken(
        name=r[0], token_hash=r[1], role=r[2], max_active_jobs=r[3] or 0, max_tasks_per_hour=r[4] or 0,
        created_at=r[5] or 0.0, revoked_at=r[6] or 0.0, created_by=r[7] or "", max_bytes_per_hour=r[8] or 0,
    )  # fmt: skip


def audit(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(at=r[0], actor=r[1], action=r[2], subject=r[3], detail=r[4] or "{}")
