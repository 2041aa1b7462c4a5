"""The typed probe data of the wire, in plain Python values, both ways.

A probe reports its data as a dict of JSON-able values (``agent/probes``); on the wire
each kind has its own message (``DnsData``, ``TcpData`` ... under ``ProbeResult.data``,
documented field by field in ``protos/vantage/v1/vantage.proto``). The same field names
are used in both, so these two walks over the messages' descriptors are the whole
mapping:

- :func:`data_to_pb` fills the kind's message from the dict. A key that is not a field
  of the message, or a value of the wrong type, is a :class:`ValueError` naming the field:
  a probe that grows a field must grow the contract with it (the probe tests run every
  kind through here). ``None`` leaves an ``optional`` field absent.
- :func:`data_to_dict` is the reverse, for ``vantage results --json``, ``vantage probe``
  and the analysis: every field appears, an absent optional one as ``None``, a failure
  class by its name, 64-bit integers as numbers (not the strings of protobuf's JSON).

Failure classes travel as the ``Failure`` enum; ``common.failures`` names them, and the
enum's value names are those names in upper case behind ``FAILURE_``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from common import failures
from protos.vantage.v1 import vantage_pb2 as pb

_PREFIX = "FAILURE_"
#: failure class name -> enum number ("" is FAILURE_NONE, success).
FAILURE_NUMBERS: dict[str, int] = {
    v.name.removeprefix(_PREFIX).lower(): v.number for v in pb.Failure.DESCRIPTOR.values if v.number
}
FAILURE_NUMBERS[""] = pb.FAILURE_NONE
#: enum number -> failure class name ("" for success).
FAILURE_NAMES: dict[int, str] = {n: name for name, n in FAILURE_NUMBERS.items()}
assert set(FAILURE_NUMBERS) - {""} == failures.FAILURES, "the Failure enum and common.failures differ"

_FAILURE_ENUM = pb.Failure.DESCRIPTOR.full_name
_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64,
    }
)  # fmt: skip

#: The ``ProbeResult.data`` member of each kind (its name is the kind's).
DATA_FIELDS: frozenset[str] = frozenset(f.name for f in pb.ProbeResult.DESCRIPTOR.oneofs_by_name["data"].fields)


def failure_number(name: str | None) -> pb.Failure:
    """The enum number of a failure class (``None`` or ``""``: success). KeyError for a
    name outside the closed set."""
    return cast("pb.Failure", FAILURE_NUMBERS[name or ""])


def failure_name(number: int) -> str | None:
    """The failure class of an enum number, ``""`` for success, None for a number this
    contract does not know (a newer or a hostile agent)."""
    return FAILURE_NAMES.get(number)


def data_to_pb(kind: str, data: Mapping[str, Any], into: pb.ProbeResult) -> None:
    """Set ``into``'s data member for ``kind`` from a probe's data dict. ValueError when
    the dict does not fit the contract, naming the field."""
    if kind not in DATA_FIELDS:
        raise ValueError(f"data: no typed data for kind {kind!r}")
    member = getattr(into, kind)
    member.SetInParent()
    _fill(member, data, kind)


def _fill(m: Message, data: Mapping[str, Any], path: str) -> None:
    desc: Any = m.DESCRIPTOR
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping, got {type(data).__name__}")
    for key, value in data.items():
        fd = desc.fields_by_name.get(key)
        where = f"{path}.{key}"
        if fd is None:
            raise ValueError(f"{where}: not a field of {desc.name}")
        if value is None:
            continue
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
            value_fd = fd.message_type.fields_by_name["value"]
            container: Any = getattr(m, key)
            for k, v in value.items():
                if value_fd.message_type is not None:
                    _fill(container[str(k)], v, f"{where}[{k}]")
                else:
                    container[str(k)] = _scalar(value_fd, v, f"{where}[{k}]")
        elif fd.message_type is not None:
            if fd.is_repeated:
                items: Any = getattr(m, key)
                for i, v in enumerate(_listed(value, where)):
                    _fill(items.add(), v, f"{where}[{i}]")
            else:
                inner: Any = getattr(m, key)
                inner.SetInParent()
                _fill(inner, value, where)
        elif fd.is_repeated:
            getattr(m, key).extend(_scalar(fd, v, f"{where}[{i}]") for i, v in enumerate(_listed(value, where)))
        else:
            setattr(m, key, _scalar(fd, value, where))


def _listed(value: Any, where: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{where}: expected a list, got {type(value).__name__}")


def _scalar(fd: Any, value: Any, where: str) -> Any:
    if fd.enum_type is not None and fd.enum_type.full_name == _FAILURE_ENUM:
        number = FAILURE_NUMBERS.get(value) if isinstance(value, str) else None
        if number is None:
            raise ValueError(f"{where}: {value!r} is not a failure class")
        return number
    if fd.type in _INTEGER_TYPES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a number that went through JSON or a Struct
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if fd.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    raise ValueError(f"{where}: a field of type {fd.type} is not handled")


def data_to_dict(m: Message) -> dict[str, Any]:
    """A data message (or any message of this contract) as plain values: every field,
    absent optional fields as None, failures by name."""
    out: dict[str, Any] = {}
    for fd in m.DESCRIPTOR.fields:
        value: Any = getattr(m, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            if value_fd.message_type is not None:
                out[fd.name] = {k: data_to_dict(v) for k, v in sorted(value.items())}
            else:
                out[fd.name] = {k: _plain(value_fd, v) for k, v in sorted(value.items())}
        elif fd.message_type is not None:
            if fd.is_repeated:
                out[fd.name] = [data_to_dict(v) for v in value]
            else:
                out[fd.name] = data_to_dict(value) if m.HasField(fd.name) else None
        elif fd.is_repeated:
            out[fd.name] = [_plain(fd, v) for v in value]
        elif fd.has_presence and not m.HasField(fd.name):
            out[fd.name] = None
        else:
            out[fd.name] = _plain(fd, value)
    return out


def _plain(fd: Any, value: Any) -> Any:
    if fd.enum_type is not None and fd.enum_type.full_name == _FAILURE_ENUM:
        name = failure_name(value)
        return name if name is not None else f"unknown failure number {value}"
    return value


def probe_result_to_dict(m: pb.ProbeResult) -> dict[str, Any]:
    """A ProbeResult as ``vantage probe --json`` and ``vantage results --json`` print it:
    the common fields, then ``data``, the kind's fields (None when there is none)."""
    which = m.WhichOneof("data")
    return {
        "kind": m.kind,
        "target": m.target,
        "failure": _plain(pb.ProbeResult.DESCRIPTOR.fields_by_name["failure"], m.failure),
        "failure_detail": m.failure_detail,
        "duration_s": m.duration_s,
        "data": data_to_dict(getattr(m, which)) if which else None,
    }


def task_result_to_dict(m: pb.TaskResult) -> dict[str, Any]:
    """A TaskResult (a stored one, with its place) as ``vantage results --json`` prints it."""
    return {
        "task_id": m.task_id,
        "job_id": m.job_id,
        "agent_id": m.agent_id,
        "place": {"region": m.place.region, "country": m.place.country, "asn": m.place.asn},
        "started_at": m.started_at,
        "finished_at": m.finished_at,
        "result": probe_result_to_dict(m.result),
    }


def probe_result_to_pb(
    *, kind: str, target: str, failure: str | None, failure_detail: str, duration_s: float,
    data: Mapping[str, Any],
) -> pb.ProbeResult:
    """A probe's outcome as the wire's ProbeResult. ValueError (naming the field) when the
    data or the failure class does not fit the contract. Empty data leaves ``data`` unset."""
    if (failure or "") not in FAILURE_NUMBERS:
        raise ValueError(f"failure: {failure!r} is not a failure class")
    m = pb.ProbeResult(
        kind=kind, target=target, failure=failure_number(failure), failure_detail=failure_detail,
        duration_s=duration_s,
    )  # fmt: skip
    if data:
        data_to_pb(kind, data, m)
    return m
