"""Protobuf struct helpers both sides of the wire use (``ProbeResult.data`` is a Struct):
the agent builds one from a probe's data, the coordinator reads one back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2


def struct_from_dict(data: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(data))
    return s


def dict_from_struct(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)
