"""Each store change as the row of parameters its statement takes, the same in every
engine: each engine's statement for a change lists its columns in this order."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from coordinator.store.codec import spec_to_json
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


def row(change: Change) -> tuple[Any, ...]:
    match change:
        case PutJob(job=j):
            return (
                j.job_id, spec_to_json(j.spec), j.state.value, j.created_at, j.finished_at,
                j.next_round_at, j.rounds_done, j.tasks_created, j.tasks_expected, j.tasks_done,
                j.tasks_failed, j.reason, j.owner, j.hourly_cost,
            )  # fmt: skip
        case JobProgress(job=j):
            return (
                j.state.value, j.finished_at, j.next_round_at, j.rounds_done, j.tasks_created,
                j.tasks_expected, j.tasks_done, j.tasks_failed, j.reason, j.job_id,
            )  # fmt: skip
        case PutTask(task=t):
            return (
                t.task_id, t.job_id, t.round, t.target, t.agent_id, t.region, t.state.value,
                t.due_at, t.deadline, t.assigned_at, t.attempts, t.reason,
            )  # fmt: skip
        case TaskProgress(task=t):
            return (t.agent_id, t.region, t.state.value, t.assigned_at, t.attempts, t.reason, t.task_id)
        case AgentHello(info=a, at=at, peer=peer):
            return (
                a.agent_id, a.region, a.country, a.asn, json.dumps(dict(a.labels), sort_keys=True),
                a.version, json.dumps(list(a.kinds)), at, at, peer,
            )  # fmt: skip
        case AgentSeen(agent_id=agent_id, at=at):
            return (at, agent_id)
        case PutResult(result=r, region=region, received_at=received_at):
            p = r.result
            return (
                r.task_id, r.job_id, r.agent_id, region, p.kind, p.target, p.failure, r.started_at,
                r.finished_at, received_at, r.raw, r.country, r.asn,
            )  # fmt: skip
        case PutEnrollment(enrollment=e):
            return (
                e.agent_id, e.token_hash, e.region, e.country, e.asn,
                json.dumps(dict(e.labels), sort_keys=True), e.created_at, e.revoked_at, e.created_by,
            )  # fmt: skip
        case PutApiToken(token=t):
            return (
                t.name, t.token_hash, t.role, t.max_active_jobs, t.max_tasks_per_hour, t.created_at,
                t.revoked_at, t.created_by, t.max_bytes_per_hour,
            )  # fmt: skip
        case PutAudit(entry=a):
            return (a.at, a.actor, a.action, a.subject, a.detail)
    raise TypeError(f"not a store change: {change!r}")


def runs(changes: Iterable[Change]) -> Iterator[tuple[type, list[tuple[Any, ...]]]]:
    """Consecutive changes of one kind with their rows, grouped for one statement each
    (order kept)."""
    kind: type | None = None
    rows: list[tuple[Any, ...]] = []
    for change in changes:
        if type(change) is not kind and rows:
            assert kind is not None
            yield kind, rows
            rows = []
        kind = type(change)
        rows.append(row(change))
    if rows and kind is not None:
        yield kind, rows
