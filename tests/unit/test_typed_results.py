"""The typed result contract: failures as an enum, data per kind, the place the coordinator
vouches for, and rows stored in the earlier form read back as this one."""

from __future__ import annotations

import math

import pytest
from google.protobuf import struct_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

from common.failures import FAILURES
from coordinator import convert
from coordinator.model import AgentInfo, Task, TaskState
from coordinator.vouch import NOT_A_NUMBER, WRONG_KIND, Refused, vouched
from protos.results import (
    DATA_FIELDS,
    FAILURE_NUMBERS,
    data_to_dict,
    failure_name,
    probe_result_to_dict,
    probe_result_to_pb,
)
from protos.vantage.v1 import vantage_pb2 as pb


def test_the_failure_enum_is_the_closed_set_and_success_is_zero() -> None:
    names = {v.name.removeprefix("FAILURE_").lower() for v in pb.Failure.DESCRIPTOR.values if v.number}
    assert names == FAILURES
    assert FAILURE_NUMBERS[""] == pb.FAILURE_NONE == 0
    assert failure_name(pb.FAILURE_CONNECTION_RESET) == "connection_reset"
    assert failure_name(9999) is None
    assert {"dns", "tcp", "tls", "http", "throughput", "ping", "traceroute"} == DATA_FIELDS


def test_data_that_leaves_the_contract_is_an_error_naming_the_field() -> None:
    def build(data: dict[str, object], kind: str = "tcp", failure: str = "") -> pb.ProbeResult:
        return probe_result_to_pb(kind=kind, target="h:1", failure=failure, failure_detail="", duration_s=0.1, data=data)

    with pytest.raises(ValueError, match=r"tcp\.rtt: not a field of TcpData"):
        build({"rtt": 0.1})
    with pytest.raises(ValueError, match=r"tcp\.port: expected an integer"):
        build({"port": "80"})
    with pytest.raises(ValueError, match=r"http\.redirects\[0\]\.status: expected an integer"):
        build({"redirects": [{"status": 301.5}]}, kind="http")
    with pytest.raises(ValueError, match=r"throughput\.control\.failure: 'nope' is not a failure class"):
        build({"control": {"failure": "nope"}}, kind="throughput")
    with pytest.raises(ValueError, match="failure: 'nope' is not a failure class"):
        build({}, failure="nope")
    with pytest.raises(ValueError, match=r"tcp: expected a mapping, got list"):
        probe_result_to_pb(kind="tcp", target="h:1", failure="", failure_detail="", duration_s=0.1,
                           data=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dns\.responses\[A\]: expected a mapping, got str"):
        build({"responses": {"A": "NOERROR"}}, kind="dns")
    with pytest.raises(ValueError, match="no typed data for kind 'smoke'"):
        build({"x": 1}, kind="smoke")
    # None leaves an optional field absent, and it reads back as None; ints stay ints.
    m = build({"port": 443, "connect_s": None, "addresses": ["192.0.2.1"]})
    assert not m.tcp.HasField("connect_s")
    d = probe_result_to_dict(m)
    assert d["data"]["connect_s"] is None and type(d["data"]["port"]) is int and d["failure"] == ""
    assert probe_result_to_dict(build({}))["data"] is None  # no data: none on the wire either


def test_nested_failures_and_maps_go_both_ways() -> None:
    data = {
        "query": "example.org", "answers": ["192.0.2.1"],
        "records": [{"type": "A", "value": "192.0.2.1", "ttl": 300}],
        "responses": {
            "A": {"rcode": "NOERROR", "answers": [{"type": "A", "value": "192.0.2.1", "ttl": 300}], "failure": ""},
            "AAAA": {"rcode": "NOERROR", "failure": "dns_no_answer", "duration_s": 0.01},
        },
    }  # fmt: skip
    m = probe_result_to_pb(kind="dns", target="example.org", failure=None, failure_detail="", duration_s=0.1, data=data)
    assert m.dns.responses["AAAA"].failure == pb.FAILURE_DNS_NO_ANSWER
    back = data_to_dict(m.dns)
    assert back["responses"]["AAAA"]["failure"] == "dns_no_answer"
    assert back["responses"]["A"]["answers"] == [{"type": "A", "value": "192.0.2.1", "ttl": 300}]


def _task(kind_target: str = "h:1") -> Task:
    return Task(task_id="0123456789abcdef-0-0-aa", job_id="0123456789abcdef", round=0, target=kind_target,
                agent_id="ru-1", region="ru", state=TaskState.ASSIGNED, due_at=1000.0, deadline=1100.0)  # fmt: skip


def _agent_message(**probe: object) -> pb.TaskResult:
    result = probe_result_to_pb(
        kind=str(probe.pop("kind", "tcp")), target="h:1", failure=str(probe.pop("failure", "")),
        failure_detail="", duration_s=0.1, data=probe.pop("data", {"port": 1}),  # type: ignore[arg-type]
    )  # fmt: skip
    return pb.TaskResult(task_id=_task().task_id, job_id="f" * 16, agent_id="liar", started_at=1000.0,
                         finished_at=1001.0, result=result)  # fmt: skip


def test_the_place_is_the_sessions_never_the_agents_and_unknown_fields_are_not_stored() -> None:
    m = _agent_message()
    m.place.region, m.place.country, m.place.asn = "de-fra", "DE", 3320  # the agent's claim
    m.result.MergeFromString(_field(31, b"from a newer contract"))
    fresh = convert.task_result_from_pb(m)
    agent = AgentInfo(agent_id="ru-1", region="ru", country="RU", asn=12389)
    stored = vouched(fresh, _task(), kind="tcp", agent_id="ru-1", received_at=1002.0, place=agent, seal=convert.sealed)
    back = pb.TaskResult.FromString(stored.raw)
    assert (back.place.region, back.place.country, back.place.asn) == ("ru", "RU", 12389)
    assert back.agent_id == "ru-1" and back.job_id == "0123456789abcdef"
    assert len(UnknownFieldSet(back.result)) == 0, "what is stored is what was checked"
    assert (stored.region, stored.country, stored.asn) == ("ru", "RU", 12389)


def test_an_upgraded_agents_outbox_in_the_earlier_form_is_read_as_typed_and_checked() -> None:
    """An agent upgraded across typed results sends the results its outbox kept: their
    string failure must not read as success, and their data is checked like typed data."""
    m = _agent_message(data={})
    struct = struct_pb2.Struct()
    struct.update({"host": "h", "port": 9})
    m.result.MergeFromString(_field(3, b"connection_reset") + _field(6, struct.SerializeToString()))
    fresh = convert.task_result_from_pb(m)
    assert fresh.result.failure == "connection_reset"
    back = pb.TaskResult.FromString(vouched(fresh, _task(), kind="tcp", agent_id="ru-1", received_at=1002.0,
                                            seal=convert.sealed).raw)  # fmt: skip
    assert back.result.failure == pb.FAILURE_CONNECTION_RESET and back.result.tcp.port == 9
    assert len(UnknownFieldSet(back.result)) == 0
    nan = _agent_message(kind="throughput", data={})
    struct = struct_pb2.Struct()
    struct.update({"bytes_per_second": math.nan})
    nan.result.MergeFromString(_field(6, struct.SerializeToString()))
    # (JSON, and so a Struct read back, has no NaN: data that does not fit is left out)
    assert convert.task_result_from_pb(nan).result.data == {}
    assert nan.result.WhichOneof("data") is None


def test_data_of_another_kind_or_a_number_that_is_not_finite_is_refused() -> None:
    with pytest.raises(Refused) as info:
        convert.task_result_from_pb(_wrong_member())
    assert info.value.reason == WRONG_KIND and "carries dns data" in info.value.detail
    deep = _agent_message(kind="dns", data={"responses": {"A": {"duration_s": math.inf}}})
    with pytest.raises(Refused) as info:
        convert.task_result_from_pb(deep)
    assert info.value.reason == NOT_A_NUMBER and "data.dns.responses.duration_s" in info.value.detail
    series = _agent_message(kind="throughput", data={"series_bps": [1.0, math.nan]})
    with pytest.raises(Refused, match="series_bps"):
        convert.task_result_from_pb(series)


def _wrong_member() -> pb.TaskResult:
    m = _agent_message()
    m.result.dns.answers.append("192.0.2.1")  # the oneof now holds dns data, the kind says tcp
    return m


def test_a_failure_number_outside_the_enum_is_stored_as_unknown_failure_and_marked_invalid() -> None:
    m = _agent_message(data={})
    m.result.failure = 4242  # type: ignore[assignment]
    fresh = convert.task_result_from_pb(m)
    stored = vouched(fresh, _task(), kind="tcp", agent_id="ru-1", received_at=1002.0, seal=convert.sealed)
    assert stored.invalid_failure and stored.result.failure == "unknown_failure"
    assert "failure number 4242" in stored.result.failure_detail
    assert convert.stored_result(stored.raw).result.failure == pb.FAILURE_UNKNOWN_FAILURE


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand (the earlier form's fields are
    not in this contract, so no message can write them)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _legacy_row(kind: str, failure: str, data: dict[str, object]) -> bytes:
    """A TaskResult as a coordinator before typed results stored it."""
    struct = struct_pb2.Struct()
    struct.update(data)
    probe = pb.ProbeResult(kind=kind, target="h:1", failure_detail="d", duration_s=0.5).SerializeToString()
    probe += _field(3, failure.encode()) + _field(6, struct.SerializeToString())
    head = pb.TaskResult(task_id="t-1", job_id="j", agent_id="ru-1", started_at=1.0, finished_at=2.0)
    return head.SerializeToString() + _field(6, probe)


def test_a_row_stored_in_the_earlier_form_reads_back_as_this_contract() -> None:
    raw = _legacy_row("throughput", "", {"bytes_per_second": 16250.0, "bytes": 2_000_000.0, "port": 1})
    m = convert.stored_result(raw)
    # "port" is no field of ThroughputData: the data that does not fit is left out, the rest too
    assert m.result.WhichOneof("data") is None and m.result.failure == pb.FAILURE_NONE
    raw = _legacy_row("throughput", "", {"bytes_per_second": 16250.0, "bytes": 2_000_000.0,
                                         "control": {"failure": "", "bytes_per_second": 1e6}})  # fmt: skip
    m = convert.stored_result(raw)
    assert m.result.throughput.bytes == 2_000_000 and m.result.throughput.bytes_per_second == 16250.0
    r = convert.task_result_from_bytes(raw)
    assert r.result.data["bytes_per_second"] == 16250.0 and r.result.data["control"]["bytes_per_second"] == 1e6
    # A failure is always kept: a known one as itself, any other as unknown_failure.
    reset = convert.stored_result(_legacy_row("tcp", "connection_reset", {"host": "h", "port": 1.0}))
    assert reset.result.failure == pb.FAILURE_CONNECTION_RESET and reset.result.tcp.port == 1
    # Struct data of any odd shape is left out, never the reader's end.
    shaped = convert.stored_result(_legacy_row("dns", "", {"responses": {"A": "x"}, "records": [1, [2]]}))
    assert shaped.result.WhichOneof("data") is None and shaped.result.failure == pb.FAILURE_NONE
    odd = convert.stored_result(_legacy_row("tcp", "made_up", {}))
    assert odd.result.failure == pb.FAILURE_UNKNOWN_FAILURE
    assert convert.watch_result(_legacy_row("tcp", "generic_timeout", {})).result.result.failure == pb.FAILURE_GENERIC_TIMEOUT
