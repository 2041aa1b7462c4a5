from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_DONE: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_FAILED: JobState

class AgentMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "results")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    results: ResultBatch
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("agent_id", "region", "country", "asn", "labels", "version", "kinds", "concurrency", "held_task_ids")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    HELD_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    region: str
    country: str
    asn: int
    labels: _containers.ScalarMap[str, str]
    version: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    concurrency: int
    held_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., concurrency: _Optional[int] = ..., held_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at", "running", "outbox", "outbox_dropped")
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_DROPPED_FIELD_NUMBER: _ClassVar[int]
    sent_at: float
    running: int
    outbox: int
    outbox_dropped: int
    def __init__(self, sent_at: _Optional[float] = ..., running: _Optional[int] = ..., outbox: _Optional[int] = ..., outbox_dropped: _Optional[int] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "job_id", "agent_id", "started_at", "finished_at", "result")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    agent_id: str
    started_at: float
    finished_at: float
    result: ProbeResult
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., result: _Optional[_Union[ProbeResult, _Mapping]] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("kind", "target", "failure", "failure_detail", "duration_s", "data")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    target: str
    failure: str
    failure_detail: str
    duration_s: float
    data: _struct_pb2.Struct
    def __init__(self, kind: _Optional[str] = ..., target: _Optional[str] = ..., failure: _Optional[str] = ..., failure_detail: _Optional[str] = ..., duration_s: _Optional[float] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "ack")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: TaskAssignment
    cancel: CancelTask
    ack: Ack
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[TaskAssignment, _Mapping]] = ..., cancel: _Optional[_Union[CancelTask, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "heartbeat_interval_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    heartbeat_interval_s: float
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ...) -> None: ...

class TaskAssignment(_message.Message):
    __slots__ = ("task_id", "job_id", "kind", "target", "options", "not_before", "deadline")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    kind: str
    target: str
    options: _containers.ScalarMap[str, str]
    not_before: float
    deadline: float
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., not_before: _Optional[float] = ..., deadline: _Optional[float] = ...) -> None: ...

class CancelTask(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Selector(_message.Message):
    __slots__ = ("regions", "countries", "asns", "labels", "agent_ids", "per_region")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    ASNS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AGENT_IDS_FIELD_NUMBER: _ClassVar[int]
    PER_REGION_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    asns: _containers.RepeatedScalarFieldContainer[int]
    labels: _containers.ScalarMap[str, str]
    agent_ids: _containers.RepeatedScalarFieldContainer[str]
    per_region: int
    def __init__(self, regions: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ..., asns: _Optional[_Iterable[int]] = ..., labels: _Optional[_Mapping[str, str]] = ..., agent_ids: _Optional[_Iterable[str]] = ..., per_region: _Optional[int] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("kind", "targets", "options", "selector", "every_s", "count", "until", "spread_s", "timeout_s", "purpose")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    EVERY_S_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    SPREAD_S_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    options: _containers.ScalarMap[str, str]
    selector: Selector
    every_s: float
    count: int
    until: float
    spread_s: float
    timeout_s: float
    purpose: str
    def __init__(self, kind: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., options: _Optional[_Mapping[str, str]] = ..., selector: _Optional[_Union[Selector, _Mapping]] = ..., every_s: _Optional[float] = ..., count: _Optional[int] = ..., until: _Optional[float] = ..., spread_s: _Optional[float] = ..., timeout_s: _Optional[float] = ..., purpose: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "spec", "state", "created_at", "finished_at", "tasks_expected", "tasks_done", "tasks_failed", "rounds_done", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TASKS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TASKS_DONE_FIELD_NUMBER: _ClassVar[int]
    TASKS_FAILED_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_DONE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec: JobSpec
    state: JobState
    created_at: float
    finished_at: float
    tasks_expected: int
    tasks_done: int
    tasks_failed: int
    rounds_done: int
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., created_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., tasks_expected: _Optional[int] = ..., tasks_done: _Optional[int] = ..., tasks_failed: _Optional[int] = ..., rounds_done: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...

class TaskFailure(_message.Message):
    __slots__ = ("task_id", "agent_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WatchJobEvent(_message.Message):
    __slots__ = ("result", "task_failed", "job_end")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TASK_FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_END_FIELD_NUMBER: _ClassVar[int]
    result: TaskResult
    task_failed: TaskFailure
    job_end: Job
    def __init__(self, result: _Optional[_Union[TaskResult, _Mapping]] = ..., task_failed: _Optional[_Union[TaskFailure, _Mapping]] = ..., job_end: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("agent_id", "region", "country", "asn", "labels", "version", "kinds", "connected", "first_seen", "last_seen", "running", "peer", "health", "health_reason", "errors")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_REASON_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    region: str
    country: str
    asn: int
    labels: _containers.ScalarMap[str, str]
    version: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    connected: bool
    first_seen: float
    last_seen: float
    running: int
    peer: str
    health: str
    health_reason: str
    errors: _containers.ScalarMap[str, int]
    def __init__(self, agent_id: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., connected: _Optional[bool] = ..., first_seen: _Optional[float] = ..., last_seen: _Optional[float] = ..., running: _Optional[int] = ..., peer: _Optional[str] = ..., health: _Optional[str] = ..., health_reason: _Optional[str] = ..., errors: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentInfo]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentInfo, _Mapping]]] = ...) -> None: ...

class GetVerdictsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegionVerdict(_message.Message):
    __slots__ = ("region", "target", "verdict", "failure", "throughput_bps", "ratio", "samples", "agents", "since", "reason")
    REGION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_BPS_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    region: str
    target: str
    verdict: str
    failure: str
    throughput_bps: float
    ratio: float
    samples: int
    agents: int
    since: float
    reason: str
    def __init__(self, region: _Optional[str] = ..., target: _Optional[str] = ..., verdict: _Optional[str] = ..., failure: _Optional[str] = ..., throughput_bps: _Optional[float] = ..., ratio: _Optional[float] = ..., samples: _Optional[int] = ..., agents: _Optional[int] = ..., since: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class TargetVerdict(_message.Message):
    __slots__ = ("target", "outage", "since", "reason", "degraded", "degraded_since", "degraded_reason")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OUTAGE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_SINCE_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    target: str
    outage: bool
    since: float
    reason: str
    degraded: bool
    degraded_since: float
    degraded_reason: str
    def __init__(self, target: _Optional[str] = ..., outage: _Optional[bool] = ..., since: _Optional[float] = ..., reason: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_since: _Optional[float] = ..., degraded_reason: _Optional[str] = ...) -> None: ...

class RegionHealth(_message.Message):
    __slots__ = ("region", "reachable", "since", "reason", "agents", "healthy", "unhealthy")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    region: str
    reachable: bool
    since: float
    reason: str
    agents: int
    healthy: int
    unhealthy: int
    def __init__(self, region: _Optional[str] = ..., reachable: _Optional[bool] = ..., since: _Optional[float] = ..., reason: _Optional[str] = ..., agents: _Optional[int] = ..., healthy: _Optional[int] = ..., unhealthy: _Optional[int] = ...) -> None: ...

class GetVerdictsResponse(_message.Message):
    __slots__ = ("regions", "targets", "evaluated_at", "region_health")
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    REGION_HEALTH_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedCompositeFieldContainer[RegionVerdict]
    targets: _containers.RepeatedCompositeFieldContainer[TargetVerdict]
    evaluated_at: float
    region_health: _containers.RepeatedCompositeFieldContainer[RegionHealth]
    def __init__(self, regions: _Optional[_Iterable[_Union[RegionVerdict, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[TargetVerdict, _Mapping]]] = ..., evaluated_at: _Optional[float] = ..., region_health: _Optional[_Iterable[_Union[RegionHealth, _Mapping]]] = ...) -> None: ...

class EnrollAgentRequest(_message.Message):
    __slots__ = ("agent_id", "region", "country", "asn", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    region: str
    country: str
    asn: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, agent_id: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Enrollment(_message.Message):
    __slots__ = ("agent_id", "region", "country", "asn", "labels", "created_at", "revoked_at", "created_by")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    region: str
    country: str
    asn: int
    labels: _containers.ScalarMap[str, str]
    created_at: float
    revoked_at: float
    created_by: str
    def __init__(self, agent_id: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., created_by: _Optional[str] = ...) -> None: ...

class EnrollAgentResponse(_message.Message):
    __slots__ = ("enrollment", "token")
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    enrollment: Enrollment
    token: str
    def __init__(self, enrollment: _Optional[_Union[Enrollment, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class RevokeAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class ListEnrollmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEnrollmentsResponse(_message.Message):
    __slots__ = ("enrollments",)
    ENROLLMENTS_FIELD_NUMBER: _ClassVar[int]
    enrollments: _containers.RepeatedCompositeFieldContainer[Enrollment]
    def __init__(self, enrollments: _Optional[_Iterable[_Union[Enrollment, _Mapping]]] = ...) -> None: ...

class ApiToken(_message.Message):
    __slots__ = ("name", "role", "max_active_jobs", "max_tasks_per_hour", "created_at", "revoked_at", "created_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    max_active_jobs: int
    max_tasks_per_hour: int
    created_at: float
    revoked_at: float
    created_by: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., max_active_jobs: _Optional[int] = ..., max_tasks_per_hour: _Optional[int] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., created_by: _Optional[str] = ...) -> None: ...

class AddTokenRequest(_message.Message):
    __slots__ = ("name", "role", "max_active_jobs", "max_tasks_per_hour")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    max_active_jobs: int
    max_tasks_per_hour: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., max_active_jobs: _Optional[int] = ..., max_tasks_per_hour: _Optional[int] = ...) -> None: ...

class AddTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: ApiToken
    secret: str
    def __init__(self, token: _Optional[_Union[ApiToken, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[ApiToken]
    def __init__(self, tokens: _Optional[_Iterable[_Union[ApiToken, _Mapping]]] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("at", "actor", "action", "subject", "detail")
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    at: float
    actor: str
    action: str
    subject: str
    detail: str
    def __init__(self, at: _Optional[float] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., subject: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("since", "limit")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since: float
    limit: int
    def __init__(self, since: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...
