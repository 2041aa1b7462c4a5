from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_FORMAT_UNSPECIFIED: _ClassVar[ResultFormat]
    RESULT_FORMAT_TYPED: _ClassVar[ResultFormat]

class Failure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_NONE: _ClassVar[Failure]
    FAILURE_DNS_NXDOMAIN: _ClassVar[Failure]
    FAILURE_DNS_SERVFAIL: _ClassVar[Failure]
    FAILURE_DNS_REFUSED: _ClassVar[Failure]
    FAILURE_DNS_TIMEOUT: _ClassVar[Failure]
    FAILURE_DNS_NO_ANSWER: _ClassVar[Failure]
    FAILURE_DNS_TEMPORARY_FAILURE: _ClassVar[Failure]
    FAILURE_CONNECTION_REFUSED: _ClassVar[Failure]
    FAILURE_CONNECTION_RESET: _ClassVar[Failure]
    FAILURE_CONNECTION_CLOSED: _ClassVar[Failure]
    FAILURE_GENERIC_TIMEOUT: _ClassVar[Failure]
    FAILURE_HOST_UNREACHABLE: _ClassVar[Failure]
    FAILURE_NETWORK_UNREACHABLE: _ClassVar[Failure]
    FAILURE_TLS_HANDSHAKE_FAILED: _ClassVar[Failure]
    FAILURE_TLS_CERT_INVALID: _ClassVar[Failure]
    FAILURE_HTTP_ERROR: _ClassVar[Failure]
    FAILURE_TARGET_FORBIDDEN: _ClassVar[Failure]
    FAILURE_UNKNOWN_FAILURE: _ClassVar[Failure]
    FAILURE_AGENT_DEADLINE_MISSED: _ClassVar[Failure]
    FAILURE_AGENT_SPEC_ERROR: _ClassVar[Failure]
    FAILURE_AGENT_RESOURCE_ERROR: _ClassVar[Failure]
    FAILURE_AGENT_INTERNAL_ERROR: _ClassVar[Failure]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
RESULT_FORMAT_UNSPECIFIED: ResultFormat
RESULT_FORMAT_TYPED: ResultFormat
FAILURE_NONE: Failure
FAILURE_DNS_NXDOMAIN: Failure
FAILURE_DNS_SERVFAIL: Failure
FAILURE_DNS_REFUSED: Failure
FAILURE_DNS_TIMEOUT: Failure
FAILURE_DNS_NO_ANSWER: Failure
FAILURE_DNS_TEMPORARY_FAILURE: Failure
FAILURE_CONNECTION_REFUSED: Failure
FAILURE_CONNECTION_RESET: Failure
FAILURE_CONNECTION_CLOSED: Failure
FAILURE_GENERIC_TIMEOUT: Failure
FAILURE_HOST_UNREACHABLE: Failure
FAILURE_NETWORK_UNREACHABLE: Failure
FAILURE_TLS_HANDSHAKE_FAILED: Failure
FAILURE_TLS_CERT_INVALID: Failure
FAILURE_HTTP_ERROR: Failure
FAILURE_TARGET_FORBIDDEN: Failure
FAILURE_UNKNOWN_FAILURE: Failure
FAILURE_AGENT_DEADLINE_MISSED: Failure
FAILURE_AGENT_SPEC_ERROR: Failure
FAILURE_AGENT_RESOURCE_ERROR: Failure
FAILURE_AGENT_INTERNAL_ERROR: Failure
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
    __slots__ = ("agent_id", "region", "country", "asn", "labels", "version", "kinds", "concurrency", "held_task_ids", "result_format", "assign_batches")
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
    RESULT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_BATCHES_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    region: str
    country: str
    asn: int
    labels: _containers.ScalarMap[str, str]
    version: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    concurrency: int
    held_task_ids: _containers.RepeatedScalarFieldContainer[str]
    result_format: int
    assign_batches: bool
    def __init__(self, agent_id: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., concurrency: _Optional[int] = ..., held_task_ids: _Optional[_Iterable[str]] = ..., result_format: _Optional[int] = ..., assign_batches: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("task_id", "job_id", "agent_id", "started_at", "finished_at", "result", "place")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PLACE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    agent_id: str
    started_at: float
    finished_at: float
    result: ProbeResult
    place: Place
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., result: _Optional[_Union[ProbeResult, _Mapping]] = ..., place: _Optional[_Union[Place, _Mapping]] = ...) -> None: ...

class Place(_message.Message):
    __slots__ = ("region", "country", "asn")
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    region: str
    country: str
    asn: int
    def __init__(self, region: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("kind", "target", "failure", "failure_detail", "duration_s", "dns", "tcp", "tls", "http", "throughput", "ping", "traceroute")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    TCP_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    TRACEROUTE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    target: str
    failure: Failure
    failure_detail: str
    duration_s: float
    dns: DnsData
    tcp: TcpData
    tls: TlsData
    http: HttpData
    throughput: ThroughputData
    ping: PingData
    traceroute: TracerouteData
    def __init__(self, kind: _Optional[str] = ..., target: _Optional[str] = ..., failure: _Optional[_Union[Failure, str]] = ..., failure_detail: _Optional[str] = ..., duration_s: _Optional[float] = ..., dns: _Optional[_Union[DnsData, _Mapping]] = ..., tcp: _Optional[_Union[TcpData, _Mapping]] = ..., tls: _Optional[_Union[TlsData, _Mapping]] = ..., http: _Optional[_Union[HttpData, _Mapping]] = ..., throughput: _Optional[_Union[ThroughputData, _Mapping]] = ..., ping: _Optional[_Union[PingData, _Mapping]] = ..., traceroute: _Optional[_Union[TracerouteData, _Mapping]] = ...) -> None: ...

class DnsData(_message.Message):
    __slots__ = ("query", "types", "transport", "resolver", "resolver_source", "rcode", "answers", "records", "cname_chain", "bogon_answers", "responses", "control", "tls_checks", "tls_reference")
    class ResponsesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DnsResponse
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DnsResponse, _Mapping]] = ...) -> None: ...
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    RESOLVER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    RCODE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CNAME_CHAIN_FIELD_NUMBER: _ClassVar[int]
    BOGON_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    TLS_CHECKS_FIELD_NUMBER: _ClassVar[int]
    TLS_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    query: str
    types: _containers.RepeatedScalarFieldContainer[str]
    transport: str
    resolver: str
    resolver_source: str
    rcode: str
    answers: _containers.RepeatedScalarFieldContainer[str]
    records: _containers.RepeatedCompositeFieldContainer[DnsRecord]
    cname_chain: _containers.RepeatedScalarFieldContainer[str]
    bogon_answers: _containers.RepeatedScalarFieldContainer[str]
    responses: _containers.MessageMap[str, DnsResponse]
    control: DnsControl
    tls_checks: _containers.RepeatedCompositeFieldContainer[DnsTlsCheck]
    tls_reference: DnsTlsCheck
    def __init__(self, query: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., transport: _Optional[str] = ..., resolver: _Optional[str] = ..., resolver_source: _Optional[str] = ..., rcode: _Optional[str] = ..., answers: _Optional[_Iterable[str]] = ..., records: _Optional[_Iterable[_Union[DnsRecord, _Mapping]]] = ..., cname_chain: _Optional[_Iterable[str]] = ..., bogon_answers: _Optional[_Iterable[str]] = ..., responses: _Optional[_Mapping[str, DnsResponse]] = ..., control: _Optional[_Union[DnsControl, _Mapping]] = ..., tls_checks: _Optional[_Iterable[_Union[DnsTlsCheck, _Mapping]]] = ..., tls_reference: _Optional[_Union[DnsTlsCheck, _Mapping]] = ...) -> None: ...

class DnsControl(_message.Message):
    __slots__ = ("resolver", "transport", "rcode", "answers", "failure", "failure_detail")
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    RCODE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    resolver: str
    transport: str
    rcode: str
    answers: _containers.RepeatedScalarFieldContainer[str]
    failure: Failure
    failure_detail: str
    def __init__(self, resolver: _Optional[str] = ..., transport: _Optional[str] = ..., rcode: _Optional[str] = ..., answers: _Optional[_Iterable[str]] = ..., failure: _Optional[_Union[Failure, str]] = ..., failure_detail: _Optional[str] = ...) -> None: ...

class DnsTlsCheck(_message.Message):
    __slots__ = ("address", "checked", "valid", "failure")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    address: str
    checked: bool
    valid: bool
    failure: Failure
    def __init__(self, address: _Optional[str] = ..., checked: _Optional[bool] = ..., valid: _Optional[bool] = ..., failure: _Optional[_Union[Failure, str]] = ...) -> None: ...

class DnsRecord(_message.Message):
    __slots__ = ("type", "value", "ttl")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    ttl: int
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ..., ttl: _Optional[int] = ...) -> None: ...

class DnsResponse(_message.Message):
    __slots__ = ("rcode", "answers", "cname_chain", "failure", "duration_s")
    RCODE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    CNAME_CHAIN_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    rcode: str
    answers: _containers.RepeatedCompositeFieldContainer[DnsRecord]
    cname_chain: _containers.RepeatedScalarFieldContainer[str]
    failure: Failure
    duration_s: float
    def __init__(self, rcode: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[DnsRecord, _Mapping]]] = ..., cname_chain: _Optional[_Iterable[str]] = ..., failure: _Optional[_Union[Failure, str]] = ..., duration_s: _Optional[float] = ...) -> None: ...

class TcpData(_message.Message):
    __slots__ = ("host", "port", "resolve_s", "addresses", "address", "family", "connect_s", "local_address", "locate")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_S_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    CONNECT_S_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOCATE_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    resolve_s: float
    addresses: _containers.RepeatedScalarFieldContainer[str]
    address: str
    family: str
    connect_s: float
    local_address: str
    locate: LocateData
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ..., resolve_s: _Optional[float] = ..., addresses: _Optional[_Iterable[str]] = ..., address: _Optional[str] = ..., family: _Optional[str] = ..., connect_s: _Optional[float] = ..., local_address: _Optional[str] = ..., locate: _Optional[_Union[LocateData, _Mapping]] = ...) -> None: ...

class TlsData(_message.Message):
    __slots__ = ("host", "port", "sni", "verify", "hostname_checked", "address", "connect_s", "handshake_s", "tls_version", "cipher", "alpn", "certificate", "trigger_checks", "locate")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SNI_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_CHECKED_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECT_S_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_S_FIELD_NUMBER: _ClassVar[int]
    TLS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CIPHER_FIELD_NUMBER: _ClassVar[int]
    ALPN_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_CHECKS_FIELD_NUMBER: _ClassVar[int]
    LOCATE_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    sni: str
    verify: bool
    hostname_checked: bool
    address: str
    connect_s: float
    handshake_s: float
    tls_version: str
    cipher: str
    alpn: str
    certificate: Certificate
    trigger_checks: _containers.RepeatedCompositeFieldContainer[TriggerCheck]
    locate: LocateData
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ..., sni: _Optional[str] = ..., verify: _Optional[bool] = ..., hostname_checked: _Optional[bool] = ..., address: _Optional[str] = ..., connect_s: _Optional[float] = ..., handshake_s: _Optional[float] = ..., tls_version: _Optional[str] = ..., cipher: _Optional[str] = ..., alpn: _Optional[str] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ..., trigger_checks: _Optional[_Iterable[_Union[TriggerCheck, _Mapping]]] = ..., locate: _Optional[_Union[LocateData, _Mapping]] = ...) -> None: ...

class TriggerCheck(_message.Message):
    __slots__ = ("swap", "url", "address", "sni", "failure", "failure_detail", "bytes", "bytes_per_second", "sustained_bps", "handshake_s")
    SWAP_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SNI_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    SUSTAINED_BPS_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_S_FIELD_NUMBER: _ClassVar[int]
    swap: str
    url: str
    address: str
    sni: str
    failure: Failure
    failure_detail: str
    bytes: int
    bytes_per_second: float
    sustained_bps: float
    handshake_s: float
    def __init__(self, swap: _Optional[str] = ..., url: _Optional[str] = ..., address: _Optional[str] = ..., sni: _Optional[str] = ..., failure: _Optional[_Union[Failure, str]] = ..., failure_detail: _Optional[str] = ..., bytes: _Optional[int] = ..., bytes_per_second: _Optional[float] = ..., sustained_bps: _Optional[float] = ..., handshake_s: _Optional[float] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("subject", "issuer", "sans", "not_before", "not_after", "sha256")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SANS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    subject: str
    issuer: str
    sans: _containers.RepeatedScalarFieldContainer[str]
    not_before: str
    not_after: str
    sha256: str
    def __init__(self, subject: _Optional[str] = ..., issuer: _Optional[str] = ..., sans: _Optional[_Iterable[str]] = ..., not_before: _Optional[str] = ..., not_after: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class HttpData(_message.Message):
    __slots__ = ("method", "redirects", "url", "status", "reason", "http_version", "headers", "timings", "body_length", "body_sha256", "body_truncated", "title", "link_hosts", "refresh_url", "locate")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REDIRECTS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    BODY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BODY_SHA256_FIELD_NUMBER: _ClassVar[int]
    BODY_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    LINK_HOSTS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_URL_FIELD_NUMBER: _ClassVar[int]
    LOCATE_FIELD_NUMBER: _ClassVar[int]
    method: str
    redirects: _containers.RepeatedCompositeFieldContainer[HttpRedirect]
    url: str
    status: int
    reason: str
    http_version: str
    headers: _containers.ScalarMap[str, str]
    timings: HttpTimings
    body_length: int
    body_sha256: str
    body_truncated: bool
    title: str
    link_hosts: _containers.RepeatedScalarFieldContainer[str]
    refresh_url: str
    locate: LocateData
    def __init__(self, method: _Optional[str] = ..., redirects: _Optional[_Iterable[_Union[HttpRedirect, _Mapping]]] = ..., url: _Optional[str] = ..., status: _Optional[int] = ..., reason: _Optional[str] = ..., http_version: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., timings: _Optional[_Union[HttpTimings, _Mapping]] = ..., body_length: _Optional[int] = ..., body_sha256: _Optional[str] = ..., body_truncated: _Optional[bool] = ..., title: _Optional[str] = ..., link_hosts: _Optional[_Iterable[str]] = ..., refresh_url: _Optional[str] = ..., locate: _Optional[_Union[LocateData, _Mapping]] = ...) -> None: ...

class HttpRedirect(_message.Message):
    __slots__ = ("url", "status", "location")
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    url: str
    status: int
    location: str
    def __init__(self, url: _Optional[str] = ..., status: _Optional[int] = ..., location: _Optional[str] = ...) -> None: ...

class HttpTimings(_message.Message):
    __slots__ = ("dns_s", "connect_s", "tls_s", "ttfb_s", "total_s")
    DNS_S_FIELD_NUMBER: _ClassVar[int]
    CONNECT_S_FIELD_NUMBER: _ClassVar[int]
    TLS_S_FIELD_NUMBER: _ClassVar[int]
    TTFB_S_FIELD_NUMBER: _ClassVar[int]
    TOTAL_S_FIELD_NUMBER: _ClassVar[int]
    dns_s: float
    connect_s: float
    tls_s: float
    ttfb_s: float
    total_s: float
    def __init__(self, dns_s: _Optional[float] = ..., connect_s: _Optional[float] = ..., tls_s: _Optional[float] = ..., ttfb_s: _Optional[float] = ..., total_s: _Optional[float] = ...) -> None: ...

class ThroughputData(_message.Message):
    __slots__ = ("url", "address", "sni", "status", "headers", "bytes", "duration_s", "bytes_per_second", "ttfb_s", "stall_s", "interval_s", "series_bps", "complete", "stopped_by", "max_bytes", "max_seconds", "control", "ratio", "first_part_bps", "sustained_bps", "drop_at_s", "burst_bytes", "settle_s", "sustained_ratio", "direction", "trigger_checks", "rate_low_bps", "rate_high_bps", "rate_precise")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SNI_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TTFB_S_FIELD_NUMBER: _ClassVar[int]
    STALL_S_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    SERIES_BPS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_BY_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    FIRST_PART_BPS_FIELD_NUMBER: _ClassVar[int]
    SUSTAINED_BPS_FIELD_NUMBER: _ClassVar[int]
    DROP_AT_S_FIELD_NUMBER: _ClassVar[int]
    BURST_BYTES_FIELD_NUMBER: _ClassVar[int]
    SETTLE_S_FIELD_NUMBER: _ClassVar[int]
    SUSTAINED_RATIO_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_CHECKS_FIELD_NUMBER: _ClassVar[int]
    RATE_LOW_BPS_FIELD_NUMBER: _ClassVar[int]
    RATE_HIGH_BPS_FIELD_NUMBER: _ClassVar[int]
    RATE_PRECISE_FIELD_NUMBER: _ClassVar[int]
    url: str
    address: str
    sni: str
    status: int
    headers: _containers.ScalarMap[str, str]
    bytes: int
    duration_s: float
    bytes_per_second: float
    ttfb_s: float
    stall_s: float
    interval_s: float
    series_bps: _containers.RepeatedScalarFieldContainer[float]
    complete: bool
    stopped_by: str
    max_bytes: int
    max_seconds: float
    control: ThroughputControl
    ratio: float
    first_part_bps: float
    sustained_bps: float
    drop_at_s: float
    burst_bytes: int
    settle_s: float
    sustained_ratio: float
    direction: str
    trigger_checks: _containers.RepeatedCompositeFieldContainer[TriggerCheck]
    rate_low_bps: float
    rate_high_bps: float
    rate_precise: bool
    def __init__(self, url: _Optional[str] = ..., address: _Optional[str] = ..., sni: _Optional[str] = ..., status: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., bytes: _Optional[int] = ..., duration_s: _Optional[float] = ..., bytes_per_second: _Optional[float] = ..., ttfb_s: _Optional[float] = ..., stall_s: _Optional[float] = ..., interval_s: _Optional[float] = ..., series_bps: _Optional[_Iterable[float]] = ..., complete: _Optional[bool] = ..., stopped_by: _Optional[str] = ..., max_bytes: _Optional[int] = ..., max_seconds: _Optional[float] = ..., control: _Optional[_Union[ThroughputControl, _Mapping]] = ..., ratio: _Optional[float] = ..., first_part_bps: _Optional[float] = ..., sustained_bps: _Optional[float] = ..., drop_at_s: _Optional[float] = ..., burst_bytes: _Optional[int] = ..., settle_s: _Optional[float] = ..., sustained_ratio: _Optional[float] = ..., direction: _Optional[str] = ..., trigger_checks: _Optional[_Iterable[_Union[TriggerCheck, _Mapping]]] = ..., rate_low_bps: _Optional[float] = ..., rate_high_bps: _Optional[float] = ..., rate_precise: _Optional[bool] = ...) -> None: ...

class LocateStep(_message.Message):
    __slots__ = ("ttl", "outcome", "address")
    TTL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ttl: int
    outcome: str
    address: str
    def __init__(self, ttl: _Optional[int] = ..., outcome: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class LocateData(_message.Message):
    __slots__ = ("method", "at", "censor_ttl", "censor_hop", "censor_asn", "response", "destination_ttl", "path", "steps", "stopped")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    CENSOR_TTL_FIELD_NUMBER: _ClassVar[int]
    CENSOR_HOP_FIELD_NUMBER: _ClassVar[int]
    CENSOR_ASN_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_TTL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    method: str
    at: str
    censor_ttl: int
    censor_hop: str
    censor_asn: int
    response: str
    destination_ttl: int
    path: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[LocateStep]
    stopped: str
    def __init__(self, method: _Optional[str] = ..., at: _Optional[str] = ..., censor_ttl: _Optional[int] = ..., censor_hop: _Optional[str] = ..., censor_asn: _Optional[int] = ..., response: _Optional[str] = ..., destination_ttl: _Optional[int] = ..., path: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[LocateStep, _Mapping]]] = ..., stopped: _Optional[str] = ...) -> None: ...

class PingData(_message.Message):
    __slots__ = ("host", "address", "family", "method", "icmp_unavailable", "port", "size", "count", "interval_s", "sent", "received", "loss", "rtts_s", "lost_seqs", "rtt_min_s", "rtt_avg_s", "rtt_max_s", "rtt_mdev_s", "jitter_s", "replies_from")
    class RepliesFromEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HOST_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ICMP_UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    RTTS_S_FIELD_NUMBER: _ClassVar[int]
    LOST_SEQS_FIELD_NUMBER: _ClassVar[int]
    RTT_MIN_S_FIELD_NUMBER: _ClassVar[int]
    RTT_AVG_S_FIELD_NUMBER: _ClassVar[int]
    RTT_MAX_S_FIELD_NUMBER: _ClassVar[int]
    RTT_MDEV_S_FIELD_NUMBER: _ClassVar[int]
    JITTER_S_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FROM_FIELD_NUMBER: _ClassVar[int]
    host: str
    address: str
    family: str
    method: str
    icmp_unavailable: str
    port: int
    size: int
    count: int
    interval_s: float
    sent: int
    received: int
    loss: float
    rtts_s: _containers.RepeatedScalarFieldContainer[float]
    lost_seqs: _containers.RepeatedScalarFieldContainer[int]
    rtt_min_s: float
    rtt_avg_s: float
    rtt_max_s: float
    rtt_mdev_s: float
    jitter_s: float
    replies_from: _containers.ScalarMap[str, int]
    def __init__(self, host: _Optional[str] = ..., address: _Optional[str] = ..., family: _Optional[str] = ..., method: _Optional[str] = ..., icmp_unavailable: _Optional[str] = ..., port: _Optional[int] = ..., size: _Optional[int] = ..., count: _Optional[int] = ..., interval_s: _Optional[float] = ..., sent: _Optional[int] = ..., received: _Optional[int] = ..., loss: _Optional[float] = ..., rtts_s: _Optional[_Iterable[float]] = ..., lost_seqs: _Optional[_Iterable[int]] = ..., rtt_min_s: _Optional[float] = ..., rtt_avg_s: _Optional[float] = ..., rtt_max_s: _Optional[float] = ..., rtt_mdev_s: _Optional[float] = ..., jitter_s: _Optional[float] = ..., replies_from: _Optional[_Mapping[str, int]] = ...) -> None: ...

class TracerouteHop(_message.Message):
    __slots__ = ("ttl", "address", "addresses", "rtts_s", "lost", "icmp", "asn")
    TTL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    RTTS_S_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    ICMP_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    ttl: int
    address: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    rtts_s: _containers.RepeatedScalarFieldContainer[float]
    lost: int
    icmp: str
    asn: int
    def __init__(self, ttl: _Optional[int] = ..., address: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ..., rtts_s: _Optional[_Iterable[float]] = ..., lost: _Optional[int] = ..., icmp: _Optional[str] = ..., asn: _Optional[int] = ...) -> None: ...

class TracerouteData(_message.Message):
    __slots__ = ("host", "address", "family", "method", "port", "hops", "reached", "stopped", "hop_count", "constant_flow")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    HOP_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONSTANT_FLOW_FIELD_NUMBER: _ClassVar[int]
    host: str
    address: str
    family: str
    method: str
    port: int
    hops: _containers.RepeatedCompositeFieldContainer[TracerouteHop]
    reached: bool
    stopped: str
    hop_count: int
    constant_flow: bool
    def __init__(self, host: _Optional[str] = ..., address: _Optional[str] = ..., family: _Optional[str] = ..., method: _Optional[str] = ..., port: _Optional[int] = ..., hops: _Optional[_Iterable[_Union[TracerouteHop, _Mapping]]] = ..., reached: _Optional[bool] = ..., stopped: _Optional[str] = ..., hop_count: _Optional[int] = ..., constant_flow: _Optional[bool] = ...) -> None: ...

class ThroughputControl(_message.Message):
    __slots__ = ("url", "bytes", "duration_s", "bytes_per_second", "failure", "failure_detail", "ttfb_s", "status", "sustained_bps", "drop_at_s")
    URL_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    TTFB_S_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUSTAINED_BPS_FIELD_NUMBER: _ClassVar[int]
    DROP_AT_S_FIELD_NUMBER: _ClassVar[int]
    url: str
    bytes: int
    duration_s: float
    bytes_per_second: float
    failure: Failure
    failure_detail: str
    ttfb_s: float
    status: int
    sustained_bps: float
    drop_at_s: float
    def __init__(self, url: _Optional[str] = ..., bytes: _Optional[int] = ..., duration_s: _Optional[float] = ..., bytes_per_second: _Optional[float] = ..., failure: _Optional[_Union[Failure, str]] = ..., failure_detail: _Optional[str] = ..., ttfb_s: _Optional[float] = ..., status: _Optional[int] = ..., sustained_bps: _Optional[float] = ..., drop_at_s: _Optional[float] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "ack", "assign_batch")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_BATCH_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: TaskAssignment
    cancel: CancelTask
    ack: Ack
    assign_batch: AssignBatch
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[TaskAssignment, _Mapping]] = ..., cancel: _Optional[_Union[CancelTask, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., assign_batch: _Optional[_Union[AssignBatch, _Mapping]] = ...) -> None: ...

class AssignBatch(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskAssignment]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskAssignment, _Mapping]]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "heartbeat_interval_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    heartbeat_interval_s: float
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ...) -> None: ...

class TaskAssignment(_message.Message):
    __slots__ = ("task_id", "job_id", "kind", "target", "options", "not_before", "deadline", "canary")
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
    CANARY_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    kind: str
    target: str
    options: _containers.ScalarMap[str, str]
    not_before: float
    deadline: float
    canary: bool
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., not_before: _Optional[float] = ..., deadline: _Optional[float] = ..., canary: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentInfo]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetVerdictsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegionVerdict(_message.Message):
    __slots__ = ("region", "target", "verdict", "failure", "throughput_bps", "ratio", "samples", "agents", "since", "reason", "upload_bps", "upload_ratio", "direction", "trigger", "censor_at", "censor_ttl", "censor_hop", "censor_asn", "throughput_low_bps", "throughput_high_bps", "upload_low_bps", "upload_high_bps")
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
    UPLOAD_BPS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_RATIO_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CENSOR_AT_FIELD_NUMBER: _ClassVar[int]
    CENSOR_TTL_FIELD_NUMBER: _ClassVar[int]
    CENSOR_HOP_FIELD_NUMBER: _ClassVar[int]
    CENSOR_ASN_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_LOW_BPS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_HIGH_BPS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_LOW_BPS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_HIGH_BPS_FIELD_NUMBER: _ClassVar[int]
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
    upload_bps: float
    upload_ratio: float
    direction: str
    trigger: str
    censor_at: str
    censor_ttl: int
    censor_hop: str
    censor_asn: int
    throughput_low_bps: float
    throughput_high_bps: float
    upload_low_bps: float
    upload_high_bps: float
    def __init__(self, region: _Optional[str] = ..., target: _Optional[str] = ..., verdict: _Optional[str] = ..., failure: _Optional[str] = ..., throughput_bps: _Optional[float] = ..., ratio: _Optional[float] = ..., samples: _Optional[int] = ..., agents: _Optional[int] = ..., since: _Optional[float] = ..., reason: _Optional[str] = ..., upload_bps: _Optional[float] = ..., upload_ratio: _Optional[float] = ..., direction: _Optional[str] = ..., trigger: _Optional[str] = ..., censor_at: _Optional[str] = ..., censor_ttl: _Optional[int] = ..., censor_hop: _Optional[str] = ..., censor_asn: _Optional[int] = ..., throughput_low_bps: _Optional[float] = ..., throughput_high_bps: _Optional[float] = ..., upload_low_bps: _Optional[float] = ..., upload_high_bps: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("name", "role", "max_active_jobs", "max_tasks_per_hour", "created_at", "revoked_at", "created_by", "max_bytes_per_hour")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    max_active_jobs: int
    max_tasks_per_hour: int
    created_at: float
    revoked_at: float
    created_by: str
    max_bytes_per_hour: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., max_active_jobs: _Optional[int] = ..., max_tasks_per_hour: _Optional[int] = ..., created_at: _Optional[float] = ..., revoked_at: _Optional[float] = ..., created_by: _Optional[str] = ..., max_bytes_per_hour: _Optional[int] = ...) -> None: ...

class AddTokenRequest(_message.Message):
    __slots__ = ("name", "role", "max_active_jobs", "max_tasks_per_hour", "max_bytes_per_hour")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    max_active_jobs: int
    max_tasks_per_hour: int
    max_bytes_per_hour: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., max_active_jobs: _Optional[int] = ..., max_tasks_per_hour: _Optional[int] = ..., max_bytes_per_hour: _Optional[int] = ...) -> None: ...

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
