"""Protobuf at the edge: messages in, plain dataclasses inside, messages out.

The one module that builds or reads protobuf messages; the servicers call these."""

from __future__ import annotations

from google.protobuf import struct_pb2

from common.ids import is_assigned_task_id
from common.wire import dict_from_struct
from coordinator.analysis import Snapshot
from coordinator.model import (
    Acknowledgement,
    AgentInfo,
    Assignment,
    Cancellation,
    Job,
    JobSpec,
    JobState,
    Outgoing,
    ProbeResultData,
    Selector,
    Task,
    TaskResultData,
)
from coordinator.registry import AgentView
from coordinator.vouch import MAX_RESULT_BYTES, NOT_A_NUMBER, TOO_LARGE, UNREADABLE, Refused
from protos.vantage.v1 import vantage_pb2 as pb

JOB_STATE_TO_PB = {
    JobState.PENDING: pb.JOB_STATE_PENDING,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.DONE: pb.JOB_STATE_DONE,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
}
JOB_STATE_FROM_PB = {v: k for k, v in JOB_STATE_TO_PB.items()}


def selector_from_pb(m: pb.Selector) -> Selector:
    return Selector(
        regions=tuple(m.regions),
        countries=tuple(c.upper() for c in m.countries),
        asns=tuple(m.asns),
        labels=dict(m.labels),
        agent_ids=tuple(m.agent_ids),
        per_region=m.per_region,
    )


def selector_to_pb(s: Selector) -> pb.Selector:
    return pb.Selector(
        regions=list(s.regions),
        countries=list(s.countries),
        asns=list(s.asns),
        labels=dict(s.labels),
        agent_ids=list(s.agent_ids),
        per_region=s.per_region,
    )


def spec_from_pb(m: pb.JobSpec) -> JobSpec:
    return JobSpec(
        kind=m.kind,
        targets=tuple(m.targets),
        options=dict(m.options),
        selector=selector_from_pb(m.selector),
        every_s=m.every_s,
        count=m.count,
        until=m.until,
        spread_s=m.spread_s,
        timeout_s=m.timeout_s,
        purpose=m.purpose,
    )


def spec_to_pb(s: JobSpec) -> pb.JobSpec:
    return pb.JobSpec(
        kind=s.kind,
        targets=list(s.targets),
        options=dict(s.options),
        selector=selector_to_pb(s.selector),
        every_s=s.every_s,
        count=s.count,
        until=s.until,
        spread_s=s.spread_s,
        timeout_s=s.timeout_s,
        purpose=s.purpose,
    )


def _u32(n: int) -> int:
    """A count as the wire's uint32 holds it (saturated, never an error: a job stored
    before the task-count bound must not break ListJobs for every caller)."""
    return min(max(n, 0), 2**32 - 1)


def job_to_pb(job: Job) -> pb.Job:
    return pb.Job(
        job_id=job.job_id,
        spec=spec_to_pb(job.spec),
        state=JOB_STATE_TO_PB[job.state],
        created_at=job.created_at,
        finished_at=job.finished_at,
        tasks_expected=_u32(job.tasks_expected),
        tasks_done=_u32(job.tasks_done),
        tasks_failed=_u32(job.tasks_failed),
        rounds_done=_u32(job.rounds_done),
        reason=job.reason,
    )


def agent_from_hello(m: pb.Hello) -> AgentInfo:
    return AgentInfo(
        agent_id=m.agent_id,
        region=m.region,
        country=m.country.upper(),
        asn=m.asn,
        labels=dict(m.labels),
        version=m.version,
        kinds=tuple(m.kinds),
        concurrency=m.concurrency,
    )


# Kinds whose data the analysis reads; other kinds' data stays in the raw bytes only, so
# ingestion does not pay for converting fields nobody reads on the hot path.
ANALYSED_DATA_KINDS = frozenset({"throughput"})


# Nesting of a result's data (the probes' own data is at most three deep).
MAX_DATA_DEPTH = 16


def _check_numbers(value: struct_pb2.Struct | struct_pb2.ListValue, depth: int = 0) -> None:
    """Every number in a result's data is finite (JSON, and so ``vantage results --json``
    and the analysis, has no NaN or infinity). On the ingest path: a non-zero
    ``number_value`` is a number (NaN and infinity included, and ``n - n`` is NaN for both),
    so only zeros and non-numbers pay for ``WhichOneof``."""
    if depth > MAX_DATA_DEPTH:
        raise Refused(UNREADABLE, f"data nested more than {MAX_DATA_DEPTH} deep")
    items = value.fields.values() if isinstance(value, struct_pb2.Struct) else value.values
    for item in items:
        n = item.number_value
        if n:
            if n - n != 0.0:
                raise Refused(NOT_A_NUMBER, "data holds a number that is not finite")
            continue
        which = item.WhichOneof("kind")
        if which == "struct_value":
            _check_numbers(item.struct_value, depth + 1)
        elif which == "list_value":
            _check_numbers(item.list_value, depth + 1)


def probe_result_from_pb(m: pb.ProbeResult) -> ProbeResultData:
    """Raises :class:`Refused` when the data holds a number that is not finite."""
    _check_numbers(m.data)
    return ProbeResultData(
        kind=m.kind,
        target=m.target,
        failure=m.failure,
        failure_detail=m.failure_detail,
        duration_s=m.duration_s,
        data=dict_from_struct(m.data) if m.kind in ANALYSED_DATA_KINDS else {},
    )


def task_id_of(m: pb.TaskResult) -> str | None:
    """The task id of a result from an agent, or None when it cannot be one of ours (it is
    then neither stored nor acked)."""
    return m.task_id if is_assigned_task_id(m.task_id) else None


def task_result_from_pb(m: pb.TaskResult) -> TaskResultData:
    """A result as an agent sent it; raises :class:`Refused` when it cannot be stored
    (too large, or a number in its data that is not finite). The fields the coordinator
    vouches for are set later (``coordinator/vouch.py``, then :func:`sealed`)."""
    raw = m.SerializeToString()
    if len(raw) > MAX_RESULT_BYTES:
        raise Refused(TOO_LARGE, f"{len(raw)} bytes, more than {MAX_RESULT_BYTES}")
    return TaskResultData(
        task_id=m.task_id,
        job_id=m.job_id,
        agent_id=m.agent_id,
        started_at=m.started_at,
        finished_at=m.finished_at,
        result=probe_result_from_pb(m.result),
        raw=raw,
    )


def sealed(r: TaskResultData) -> bytes:
    """The stored bytes of a vouched result: the agent's message with the fields the
    coordinator vouches for replaced by ``r``'s."""
    m = pb.TaskResult.FromString(r.raw)
    m.job_id = r.job_id
    m.agent_id = r.agent_id
    m.started_at = r.started_at
    m.finished_at = r.finished_at
    p = r.result
    m.result.kind = p.kind
    m.result.target = p.target
    m.result.failure = p.failure
    m.result.failure_detail = p.failure_detail
    m.result.duration_s = p.duration_s
    return m.SerializeToString()


def task_result_from_bytes(raw: bytes) -> TaskResultData:
    """A stored result (the agent's serialized TaskResult) back as a result; ValueError
    when the bytes do not parse."""
    try:
        return task_result_from_pb(pb.TaskResult.FromString(raw))
    except Exception as exc:  # protobuf's DecodeError, or a bad Struct inside
        raise ValueError(f"stored result does not parse: {exc}") from exc


def outgoing_to_pb(message: Outgoing) -> pb.CoordinatorMessage:
    match message:
        case Assignment():
            return pb.CoordinatorMessage(
                assign=pb.TaskAssignment(
                    task_id=message.task_id, job_id=message.job_id, kind=message.kind,
                    target=message.target, options=dict(message.options),
                    not_before=message.not_before, deadline=message.deadline,
                )
            )
        case Cancellation():
            return pb.CoordinatorMessage(cancel=pb.CancelTask(task_id=message.task_id, reason=message.reason))
        case Acknowledgement():
            return pb.CoordinatorMessage(ack=pb.Ack(task_ids=list(message.task_ids)))
    raise TypeError(f"not an outgoing message: {message!r}")


def welcome_to_pb(session_id: str, heartbeat_interval_s: float) -> pb.CoordinatorMessage:
    return pb.CoordinatorMessage(
        welcome=pb.Welcome(session_id=session_id, heartbeat_interval_s=heartbeat_interval_s)
    )


def watch_result(raw: bytes) -> pb.WatchJobEvent:
    """A stored or fresh result as the agent sent it."""
    return pb.WatchJobEvent(result=pb.TaskResult.FromString(raw))


def watch_failure(task: Task) -> pb.WatchJobEvent:
    return pb.WatchJobEvent(
        task_failed=pb.TaskFailure(task_id=task.task_id, agent_id=task.agent_id, reason=task.reason)
    )


def watch_end(job: Job) -> pb.WatchJobEvent:
    return pb.WatchJobEvent(job_end=job_to_pb(job))


def jobs_to_pb(jobs: list[Job]) -> pb.ListJobsResponse:
    return pb.ListJobsResponse(jobs=[job_to_pb(j) for j in jobs])


def agents_to_pb(views: list[AgentView], snapshot: Snapshot) -> pb.ListAgentsResponse:
    health = {a.agent_id: a for a in snapshot.agents}
    out = []
    for v in views:
        info = v.info
        seen = health.get(info.agent_id)
        out.append(
            pb.AgentInfo(
                agent_id=info.agent_id, region=info.region, country=info.country, asn=info.asn,
                labels=dict(info.labels), version=info.version, kinds=list(info.kinds),
                connected=v.connected, first_seen=v.first_seen, last_seen=v.last_seen,
                running=v.running, peer=v.peer, health=seen.state if seen else "",
                health_reason=seen.reason if seen else "", errors=v.errors,
            )
        )
    return pb.ListAgentsResponse(agents=out)


def verdicts_to_pb(snap: Snapshot) -> pb.GetVerdictsResponse:
    return pb.GetVerdictsResponse(
        evaluated_at=snap.evaluated_at,
        regions=[
            pb.RegionVerdict(
                region=v.group, target=v.target, verdict=v.verdict, failure=v.failure,
                throughput_bps=v.throughput_bps or 0.0, ratio=v.ratio or 0.0,
                samples=v.samples, agents=v.agents, since=v.since, reason=v.reason,
            )
            for v in snap.regions
        ],
        targets=[
            pb.TargetVerdict(
                target=t.target, outage=t.outage, since=t.since, reason=t.reason,
                degraded=t.degraded, degraded_since=t.degraded_since,
                degraded_reason=t.degraded_reason,
            )
            for t in snap.targets
        ],
        region_health=[
            pb.RegionHealth(
                region=r.group, reachable=r.reachable, since=r.since, reason=r.reason,
                agents=r.agents, healthy=r.healthy, unhealthy=r.unhealthy,
            )
            for r in snap.region_health
        ],
    )
