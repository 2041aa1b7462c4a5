"""Protobuf at the edge: messages in, plain dataclasses inside, messages out."""

from __future__ import annotations

from common.wire import dict_from_struct
from coordinator.model import (
    AgentInfo,
    Job,
    JobSpec,
    JobState,
    ProbeResultData,
    Selector,
    TaskResultData,
)
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


def job_to_pb(job: Job) -> pb.Job:
    return pb.Job(
        job_id=job.job_id,
        spec=spec_to_pb(job.spec),
        state=JOB_STATE_TO_PB[job.state],
        created_at=job.created_at,
        finished_at=job.finished_at,
        tasks_expected=job.tasks_expected,
        tasks_done=job.tasks_done,
        tasks_failed=job.tasks_failed,
        rounds_done=job.rounds_done,
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


def probe_result_from_pb(m: pb.ProbeResult) -> ProbeResultData:
    return ProbeResultData(
        kind=m.kind,
        target=m.target,
        failure=m.failure,
        failure_detail=m.failure_detail,
        duration_s=m.duration_s,
        data=dict_from_struct(m.data) if m.kind in ANALYSED_DATA_KINDS else {},
    )


def task_result_from_pb(m: pb.TaskResult) -> TaskResultData:
    return TaskResultData(
        task_id=m.task_id,
        job_id=m.job_id,
        agent_id=m.agent_id,
        started_at=m.started_at,
        finished_at=m.finished_at,
        result=probe_result_from_pb(m.result),
        raw=m.SerializeToString(),
    )
