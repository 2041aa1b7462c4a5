"""Protobuf at the edge: messages in, plain dataclasses inside, messages out.

The one module of the server that builds ``vantage.v1`` messages (to agents, to API
callers, to admins), and the one that parses the results and job specs it receives: the
servicers (services.py, admin.py) call these and read only a request's scalar fields
themselves. The typed client (coordinator/client.py) builds its own requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from common.failures import UNKNOWN_FAILURE
from common.ids import is_assigned_task_id
from common.specs.traceroute import MAX_HOPS
from coordinator.analysis import Snapshot
from coordinator.model import (
    Acknowledgement,
    AgentInfo,
    ApiToken,
    Assignment,
    AuditEntry,
    Cancellation,
    Enrollment,
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
from coordinator.vouch import (
    MAX_NUMBER,
    MAX_RESULT_BYTES,
    NOT_A_NUMBER,
    TOO_LARGE,
    WRONG_KIND,
    Refused,
)
from protos.results import DATA_FIELDS, FAILURE_NUMBERS, data_to_pb, failure_name, failure_number
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


_DOUBLE = FieldDescriptor.TYPE_DOUBLE


def _nonfinite(m: Message) -> str | None:
    """The first field of ``m`` (a typed data message) holding a number that is not
    finite, or past the physical ceiling ``MAX_NUMBER`` in magnitude, as a dotted path;
    None when every number is within it. JSON, and so ``vantage results --json`` and the
    analysis, has no NaN or infinity. Only the fields that are set are walked
    (``ListFields``); ``abs(n) <= MAX_NUMBER`` is false for NaN and the infinities."""
    for fd, value in m.ListFields():
        if fd.type == _DOUBLE:
            if fd.is_repeated:
                if not all(abs(v) <= MAX_NUMBER for v in value):
                    return fd.name
            elif not abs(value) <= MAX_NUMBER:
                return fd.name
        elif fd.message_type is not None:
            if fd.message_type.GetOptions().map_entry:
                value_fd = fd.message_type.fields_by_name["value"]
                if value_fd.message_type is None:
                    continue  # the maps of scalars hold strings only
                items = list(value.values())
            else:
                items = list(value) if fd.is_repeated else [value]
            for item in items:
                inner = _nonfinite(item)
                if inner is not None:
                    return f"{fd.name}.{inner}"
    return None


def _located(m: Any) -> dict[str, Any]:
    """What the analysis reads of a ``locate`` (coordinator/analysis/located.py)."""
    if not m.HasField("locate"):
        return {}
    loc = m.locate
    return {"locate": {
        "at": loc.at, "censor_ttl": loc.censor_ttl if loc.HasField("censor_ttl") else None,
        "censor_hop": loc.censor_hop, "censor_asn": loc.censor_asn if loc.HasField("censor_asn") else None,
    }}  # fmt: skip


def _analysed_data(m: pb.ProbeResult) -> dict[str, Any]:
    """What the analysis reads of a result's data (coordinator/observe.py,
    coordinator/analysis/paths.py): a ping's counts and RTTs, a traceroute's hops, a throughput
    result's rate, its control's outcome and its trigger checks (a tls result's too), an
    http fetch's page (what ``blockpage.Body.of`` reads), a dns result's answers
    (``dnslie.Answers.of``); nothing else, so ingestion does not pay for converting fields
    nobody reads on the hot path."""
    if m.kind == "http" and m.WhichOneof("data") == "http":
        h = m.http
        return {
            "method": h.method or "GET",
            "status": h.status if h.HasField("status") else None,
            "body_length": h.body_length,
            "body_sha256": h.body_sha256,
            "title": h.title,
            "link_hosts": list(h.link_hosts),
            "refresh_url": h.refresh_url,
            "redirects": [{"location": hop.location} for hop in h.redirects],
            "headers": {k: h.headers[k] for k in ("server", "via", "x-cache", "content-type", "location")
                        if k in h.headers},
            **_located(h),
        }
    if m.kind == "dns" and m.WhichOneof("data") == "dns":
        d = m.dns
        out: dict[str, Any] = {
            "answers": list(d.answers),
            "bogon_answers": list(d.bogon_answers),
            "tls_checks": [
                {"checked": c.checked, "valid": c.valid, "failure": failure_name(c.failure) or ""}
                for c in d.tls_checks
            ],
        }
        if d.HasField("tls_reference"):
            out["tls_reference"] = {"checked": d.tls_reference.checked, "valid": d.tls_reference.valid}
        if d.HasField("control"):
            out["control"] = {
                "answers": list(d.control.answers),
                "failure": failure_name(d.control.failure) or "",
            }
        return out
    if m.kind == "ping" and m.WhichOneof("data") == "ping":
        p = m.ping
        return {
            "sent": p.sent, "received": p.received,
            **{name: getattr(p, name) if p.HasField(name) else None
               for name in ("rtt_min_s", "rtt_avg_s", "rtt_max_s", "jitter_s")},
        }  # fmt: skip
    if m.kind == "traceroute" and m.WhichOneof("data") == "traceroute":
        tr = m.traceroute
        return {
            "reached": tr.reached, "hop_count": tr.hop_count, "stopped": tr.stopped[:16],
            "hops": [{"ttl": h.ttl, "address": h.address} for h in tr.hops[:MAX_HOPS]],
        }  # fmt: skip
    if m.kind == "tls" and m.WhichOneof("data") == "tls":
        checks = {"trigger_checks": _trigger_checks(m.tls.trigger_checks)} if m.tls.trigger_checks else {}
        return {**checks, **_located(m.tls)}
    if m.kind == "tcp" and m.WhichOneof("data") == "tcp":
        return _located(m.tcp)
    if m.kind != "throughput" or m.WhichOneof("data") != "throughput":
        return {}
    t = m.throughput
    data: dict[str, Any] = {
        "bytes_per_second": t.bytes_per_second if t.HasField("bytes_per_second") else None,
        "sustained_bps": t.sustained_bps if t.HasField("sustained_bps") else None,
        "drop_at_s": t.drop_at_s if t.HasField("drop_at_s") else None,
        "direction": t.direction,
    }
    if t.HasField("control"):
        c = t.control
        data["control"] = {
            "failure": failure_name(c.failure) if failure_name(c.failure) is not None else UNKNOWN_FAILURE,
            "bytes_per_second": c.bytes_per_second if c.HasField("bytes_per_second") else None,
            "sustained_bps": c.sustained_bps if c.HasField("sustained_bps") else None,
        }
    if t.trigger_checks:
        data["trigger_checks"] = _trigger_checks(t.trigger_checks)
    return data


def _trigger_checks(checks: Any) -> list[dict[str, Any]]:
    """What ``trigger.Checks.of`` reads of a result's trigger checks (the first few)."""
    out = []
    for c in checks[:4]:
        name = failure_name(c.failure)
        out.append({
            "swap": c.swap,
            "failure": name if name is not None else UNKNOWN_FAILURE,
            "bytes_per_second": c.bytes_per_second if c.HasField("bytes_per_second") else None,
            "sustained_bps": c.sustained_bps if c.HasField("sustained_bps") else None,
        })  # fmt: skip
    return out


def probe_result_from_pb(m: pb.ProbeResult) -> ProbeResultData:
    """Raises :class:`Refused` when the data holds a number that is not finite, or is data
    of another kind than the result says. A failure number this contract does not know
    comes out as a string outside the closed set, for ``vouch`` to mark invalid."""
    which = m.WhichOneof("data")
    if which is not None:
        if which != m.kind:
            raise Refused(WRONG_KIND, f"the result says {m.kind[:32]!r} but carries {which} data")
        bad = _nonfinite(getattr(m, which))
        if bad is not None:
            raise Refused(NOT_A_NUMBER, f"data.{which}.{bad} is not a finite number of magnitude at most {MAX_NUMBER:g}")
    failure = failure_name(m.failure)
    return ProbeResultData(
        kind=m.kind,
        target=m.target,
        failure=failure if failure is not None else f"failure number {m.failure}",
        failure_detail=m.failure_detail,
        duration_s=m.duration_s,
        data=_analysed_data(m),
    )


def task_id_of(m: pb.TaskResult) -> str | None:
    """The task id of a result from an agent, or None when it cannot be one of ours (it is
    then neither stored nor acked)."""
    return m.task_id if is_assigned_task_id(m.task_id) else None


def task_result_from_pb(m: pb.TaskResult) -> TaskResultData:
    """A result as an agent sent it; raises :class:`Refused` when it cannot be stored
    (too large, data of another kind, or a number in its data that is not finite). The
    fields the coordinator vouches for are set later (``coordinator/vouch.py``, then
    :func:`sealed`)."""
    raw = m.SerializeToString()
    if len(raw) > MAX_RESULT_BYTES:
        raise Refused(TOO_LARGE, f"{len(raw)} bytes, more than {MAX_RESULT_BYTES}")
    if UnknownFieldSet(m.result):
        upgrade_legacy(m)  # an upgraded agent's outbox may still hold the earlier form
        raw = m.SerializeToString()
    return TaskResultData(
        task_id=m.task_id,
        job_id=m.job_id,
        agent_id=m.agent_id,
        started_at=m.started_at,
        finished_at=m.finished_at,
        result=probe_result_from_pb(m.result),
        raw=raw,
        region=m.place.region,
        country=m.place.country,
        asn=m.place.asn,
    )


def sealed(r: TaskResultData) -> bytes:
    """The stored bytes of a vouched result: the agent's message with the fields the
    coordinator vouches for (place included) replaced by ``r``'s, and every field this
    contract does not know dropped (what is stored is what was checked)."""
    m = pb.TaskResult.FromString(r.raw)
    m.DiscardUnknownFields()
    m.job_id = r.job_id
    m.agent_id = r.agent_id
    m.started_at = r.started_at
    m.finished_at = r.finished_at
    m.place.region = r.region
    m.place.country = r.country
    m.place.asn = r.asn
    p = r.result
    m.result.kind = p.kind
    m.result.target = p.target
    m.result.failure = failure_number(p.failure)
    m.result.failure_detail = p.failure_detail
    m.result.duration_s = p.duration_s
    return m.SerializeToString()


# The earlier form of ProbeResult (before typed data): the failure as a string in field 3,
# the data as a google.protobuf.Struct in field 6. Rows stored by an earlier version hold
# it, and so do the outboxes of agents upgraded from one (they send what they kept).
_LEGACY_FAILURE = 3
_LEGACY_DATA = 6
_LENGTH_DELIMITED = 2


def upgrade_legacy(m: pb.TaskResult) -> None:
    """Move a result of the earlier form into this contract, in place: its string failure
    into ``failure`` (one outside the closed set as ``unknown_failure``) and its Struct data
    into the kind's data member (data that does not fit the contract is left out; the
    failure is always kept). A result of this contract is left as it is. It gives an agent
    nothing it could not say with the typed fields: the result is checked the same way."""
    unknown = UnknownFieldSet(m.result)
    legacy = [unknown[i] for i in range(len(unknown)) if unknown[i].wire_type == _LENGTH_DELIMITED]
    if not legacy:
        return
    for f in legacy:
        if f.field_number == _LEGACY_FAILURE:
            name = bytes(f.data).decode("utf-8", "replace")
            m.result.failure = failure_number(name if name in FAILURE_NUMBERS else UNKNOWN_FAILURE)
        elif f.field_number == _LEGACY_DATA and m.result.kind in DATA_FIELDS:
            try:
                values = MessageToDict(struct_pb2.Struct.FromString(bytes(f.data)))
                data_to_pb(m.result.kind, values, m.result)
            except Exception:  # DecodeError, or data that does not fit: never the session's end
                m.result.ClearField(m.result.kind)  # type: ignore[arg-type]
    m.result.DiscardUnknownFields()


def stored_result(raw: bytes) -> pb.TaskResult:
    """A stored result as this contract reads it (:func:`upgrade_legacy` for rows stored
    before typed results). DecodeError when the bytes do not parse."""
    m = pb.TaskResult.FromString(raw)
    upgrade_legacy(m)
    return m


def task_result_from_bytes(raw: bytes) -> TaskResultData:
    """A stored result back as a result; ValueError when the bytes do not parse."""
    try:
        return task_result_from_pb(stored_result(raw))
    except Exception as exc:  # protobuf's DecodeError, or data that cannot be read
        raise ValueError(f"stored result does not parse: {exc}") from exc


def _assignment_pb(a: Assignment) -> pb.TaskAssignment:
    return pb.TaskAssignment(
        task_id=a.task_id, job_id=a.job_id, kind=a.kind, target=a.target, options=dict(a.options),
        not_before=a.not_before, deadline=a.deadline, canary=a.canary,
    )  # fmt: skip


def outgoing_to_pb(message: Outgoing) -> pb.CoordinatorMessage:
    match message:
        case Assignment():
            return pb.CoordinatorMessage(assign=_assignment_pb(message))
        case Cancellation():
            return pb.CoordinatorMessage(cancel=pb.CancelTask(task_id=message.task_id, reason=message.reason))
        case Acknowledgement():
            return pb.CoordinatorMessage(ack=pb.Ack(task_ids=list(message.task_ids)))
    raise TypeError(f"not an outgoing message: {message!r}")


# Assignments in one AssignBatch (the contract's bound), and its size: far under the
# agent's 16 MiB receive limit, whatever the options (an assignment may carry ~68 KB).
MAX_ASSIGN_BATCH = 1000
MAX_ASSIGN_BATCH_BYTES = 4 * 1024 * 1024


def outgoing_batch_to_pb(messages: Sequence[Outgoing], *, assign_batches: bool) -> list[pb.CoordinatorMessage]:
    """What to write for ``messages`` taken from a session's queue at once: every ack
    merged into one (sent last), and, to an agent that reads them (Hello.assign_batches),
    consecutive assignments in AssignBatch messages. A cancel keeps its place after the
    assignments before it."""
    out: list[pb.CoordinatorMessage] = []
    acked: list[str] = []
    assigns: list[pb.TaskAssignment] = []

    def flush() -> None:
        chunks: list[list[pb.TaskAssignment]] = []
        size = 0
        for a in assigns:
            n = a.ByteSize() + 8  # with its framing
            if not chunks or len(chunks[-1]) >= MAX_ASSIGN_BATCH or size + n > MAX_ASSIGN_BATCH_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(a)
            size += n
        for chunk in chunks:
            if len(chunk) == 1:
                out.append(pb.CoordinatorMessage(assign=chunk[0]))
            else:
                out.append(pb.CoordinatorMessage(assign_batch=pb.AssignBatch(tasks=chunk)))
        assigns.clear()

    for message in messages:
        if isinstance(message, Acknowledgement):
            acked.extend(message.task_ids)
        elif isinstance(message, Assignment) and assign_batches:
            assigns.append(_assignment_pb(message))
        else:
            flush()
            out.append(outgoing_to_pb(message))
    flush()
    if acked:
        out.append(pb.CoordinatorMessage(ack=pb.Ack(task_ids=acked)))
    return out


def welcome_to_pb(session_id: str, heartbeat_interval_s: float) -> pb.CoordinatorMessage:
    return pb.CoordinatorMessage(
        welcome=pb.Welcome(session_id=session_id, heartbeat_interval_s=heartbeat_interval_s)
    )


def watch_result(raw: bytes) -> pb.WatchJobEvent:
    """A stored or fresh result as stored: the agent's message with what the coordinator
    vouches for. (Rows stored before results carried their place have an empty one; their
    region is in the store's ``region`` column.)"""
    return pb.WatchJobEvent(result=stored_result(raw))


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
                upload_bps=v.upload_bps or 0.0, upload_ratio=v.upload_ratio or 0.0,
                throughput_low_bps=v.throughput_low_bps or 0.0, throughput_high_bps=v.throughput_high_bps or 0.0,
                upload_low_bps=v.upload_low_bps or 0.0, upload_high_bps=v.upload_high_bps or 0.0,
                direction=v.direction, trigger=v.trigger,
                censor_at=v.located.at if v.located else "", censor_ttl=v.located.ttl if v.located else 0,
                censor_hop=v.located.hop if v.located else "", censor_asn=v.located.asn if v.located else 0,
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


# AdminService: enrolments, API tokens and the audit record.


def enrollment_to_pb(e: Enrollment) -> pb.Enrollment:
    return pb.Enrollment(
        agent_id=e.agent_id, region=e.region, country=e.country, asn=e.asn, labels=dict(e.labels),
        created_at=e.created_at, revoked_at=e.revoked_at, created_by=e.created_by,
    )  # fmt: skip


def enrolled_to_pb(e: Enrollment, token: str) -> pb.EnrollAgentResponse:
    return pb.EnrollAgentResponse(enrollment=enrollment_to_pb(e), token=token)


def enrollments_to_pb(rows: Sequence[Enrollment]) -> pb.ListEnrollmentsResponse:
    return pb.ListEnrollmentsResponse(enrollments=[enrollment_to_pb(e) for e in rows])


def token_to_pb(t: ApiToken) -> pb.ApiToken:
    return pb.ApiToken(
        name=t.name, role=t.role, max_active_jobs=t.max_active_jobs, max_tasks_per_hour=t.max_tasks_per_hour,
        created_at=t.created_at, revoked_at=t.revoked_at, created_by=t.created_by,
        max_bytes_per_hour=t.max_bytes_per_hour,
    )  # fmt: skip


def token_added_to_pb(t: ApiToken, secret: str) -> pb.AddTokenResponse:
    return pb.AddTokenResponse(token=token_to_pb(t), secret=secret)


def tokens_to_pb(rows: Sequence[ApiToken]) -> pb.ListTokensResponse:
    return pb.ListTokensResponse(tokens=[token_to_pb(t) for t in rows])


def audit_to_pb(a: AuditEntry) -> pb.AuditRecord:
    return pb.AuditRecord(
        at=a.at, actor=a.actor, action=a.action, subject=a.subject, detail=a.detail
    )


def audit_records_to_pb(rows: Sequence[AuditEntry]) -> pb.ListAuditResponse:
    return pb.ListAuditResponse(records=[audit_to_pb(a) for a in rows])
