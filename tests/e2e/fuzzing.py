"""A property-based fuzzer for a live coordinator, over real gRPC (hypothesis).

Every case is one of:
- a unary call of JobService or AdminService with a request built from the proto's own
  descriptors (every field, with values chosen to hit the edges: NaN, huge counts,
  escape sequences, IDNA-invalid hosts, ids that almost parse), and a credential drawn
  from: none, a wrong one, the agent token, the bootstrap admin, or one of the API
  tokens the fuzzer itself made earlier (so roles and quotas are in play);
- raw bytes that may not parse, to any method, with any of those credentials;
- a WatchJob stream, read for a moment;
- an agent's stream: a fuzzed hello, then fuzzed messages (heartbeats, result batches:
  for a task actually assigned to it when there is one), then the end.

The property: the coordinator answers every call with a status that says what happened
(never UNKNOWN or INTERNAL), its process stays up, and a well-behaved agent enrolled
beside it stays connected and runs a real job at the end.

Fuzzed jobs never reach the well-behaved agent: every SubmitJob is kept off its region
(``WELL_BEHAVED_REGION``), so no fuzzed target is ever probed. They go to the fuzzer's
own agent in ``FUZZ_REGION``, which holds its tasks and runs nothing.

``tests/e2e/test_fuzz.py`` runs a bounded number of cases in CI; ``scripts/fuzz.py`` runs a
longer campaign against a coordinator it starts.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import descriptor as d
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.vantage.v1 import vantage_pb2 as pb

WELL_BEHAVED_REGION = "de"
FUZZ_REGION = "xx-fuzz"
# What the coordinator may answer: each says what happened. UNKNOWN (an exception escaped
# a handler) and INTERNAL are the bugs the fuzzer looks for; DEADLINE_EXCEEDED is a
# stream the fuzzer left open until its own timeout.
ALLOWED = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED, grpc.StatusCode.UNIMPLEMENTED,
})  # fmt: skip

STRINGS = [
    "", " ", "tcp", "http", "https", "dns", "tls", "throughput", "ping", "h-1", "de", FUZZ_REGION, "RU", "ru",
    "0123456789abcdef", "ffffffffffffffff", "0123456789abcdeg", "http://xn--/", "https://xn--ls8h.la/",
    "http://127.0.0.1:1/", "127.0.0.1:1", "[::1]:1", "localhost", "example.org", "a" * 300, "\x1b]0;x\x07\x1b[2J",
    "\x00", "é", "\U0001d54f", "../../etc/passwd", "/etc/passwd", "1e309", "nan", "-1", "control", "ca_file",
    "max_bytes", "timeout", "resolver", "sni", "method", "read", "submit", "admin", "bootstrap", "loopback",
    "result refused", "unknown_failure", "tcp_refused", "Bearer x",
]  # fmt: skip
NUMBERS = [0.0, -0.0, -1.0, 1.0, 5.0, 1e-9, 1e308, -1e308, math.inf, -math.inf, math.nan, 2.0**32, 4102444800.0]

text = st.one_of(st.sampled_from(STRINGS), st.text(max_size=24), st.text(max_size=2500))
small_ints = st.one_of(st.integers(0, 12), st.sampled_from([2**31 - 1, 2**32 - 1, 100_000, 100_001]))


def _now_ish() -> st.SearchStrategy[float]:
    return st.builds(lambda dt: time.time() + dt, st.floats(-1e6, 1e9))


doubles = st.one_of(st.sampled_from(NUMBERS), st.floats(), _now_ish())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def _scalar(f: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return text
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return doubles
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == d.FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in f.enum_type.values]), st.integers(-5, 50))
    if t in (d.FieldDescriptor.TYPE_UINT32, d.FieldDescriptor.TYPE_FIXED32):
        return st.one_of(small_ints, st.integers(0, 2**32 - 1))
    if t in (d.FieldDescriptor.TYPE_UINT64, d.FieldDescriptor.TYPE_FIXED64):
        return st.one_of(small_ints, st.integers(0, 2**64 - 1))
    if t in (d.FieldDescriptor.TYPE_INT32, d.FieldDescriptor.TYPE_SINT32, d.FieldDescriptor.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    return st.integers(-(2**63), 2**63 - 1)


def message(desc: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of type ``desc``: any subset of its fields set, each to edge-seeking values."""
    cls: Any = _classes()[desc.full_name]
    if desc.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(_struct)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            fields[f.name] = st.dictionaries(_scalar(key), _scalar(value), max_size=4)
        elif f.message_type is not None:
            if depth >= 3:
                continue
            inner = message(f.message_type, depth + 1)
            fields[f.name] = st.lists(inner, max_size=3) if _repeated(f) else inner
        else:
            fields[f.name] = st.lists(_scalar(f), max_size=4) if _repeated(f) else _scalar(f)
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, desc, values))


def _repeated(f: d.FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def _build(cls: Any, desc: d.Descriptor, values: dict[str, Any]) -> Message:
    m = cls()
    for name, value in values.items():
        f = desc.fields_by_name[name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            getattr(m, name).update(value)
        elif f.message_type is not None and _repeated(f):
            for v in value:
                getattr(m, name).add().CopyFrom(v)
        elif f.message_type is not None:
            getattr(m, name).CopyFrom(value)
        elif _repeated(f):
            getattr(m, name).extend(value)
        else:
            setattr(m, name, value)
    return m  # type: ignore[no-any-return]


_CLASSES: dict[str, Any] = {}


def _classes() -> dict[str, Any]:
    if not _CLASSES:
        for name in dir(pb):
            obj = getattr(pb, name)
            if isinstance(obj, type) and issubclass(obj, Message):
                _CLASSES[obj.DESCRIPTOR.full_name] = obj
        _CLASSES["google.protobuf.Struct"] = struct_pb2.Struct
        _CLASSES["google.protobuf.Value"] = struct_pb2.Value
        _CLASSES["google.protobuf.ListValue"] = struct_pb2.ListValue
    return _CLASSES


OPTION_NAMES = [
    "alpn", "ca_file", "control", "interval", "max_body", "max_bytes", "max_redirects", "max_seconds", "method",
    "resolver", "sni", "stall_threshold", "timeout", "transport", "type", "verify", "nope",
]  # fmt: skip
OPTION_VALUES = ["1", "0", "-1", "3s", "2M", "h2", "GET", "A", "AAAA", "tcp", "udp", "true", "false", "/etc/passwd",
                 "127.0.0.1", "http://127.0.0.1:1/blob", "nan", "1e309", "x" * 3000]  # fmt: skip
TARGETS = ["127.0.0.1:1", "127.0.0.1", "http://127.0.0.1:1/", "https://127.0.0.1:1/x", "localhost:9", "[::1]:1",
           "http://xn--/", "xn--", "a" * 300, "127.0.0.1:99999", "http://[::1]:1/", "*", ""]  # fmt: skip
# Specs that pass the first checks and reach the deeper ones (task counts, quotas,
# options, dispatch): for each kind, targets and options of its own, and at times a value
# from anywhere.
KIND_PARTS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "tcp": (["127.0.0.1:1", "localhost:9", "[::1]:1", "127.0.0.2:65535"], {"timeout": ["1", "3s", "0", "-1"]}),
    "tls": (["127.0.0.1:1", "localhost:443"], {"sni": ["a.test", ""], "alpn": ["h2", "http/1.1"],
                                                 "verify": ["true", "false"], "timeout": ["2"]}),
    "http": (["http://127.0.0.1:1/", "https://127.0.0.1:1/x", "http://[::1]:1/"],
             {"method": ["GET", "HEAD", "DELETE"], "max_body": ["1000", "1G"], "max_redirects": ["0", "50"],
              "verify": ["false"], "timeout": ["2"]}),
    "dns": (["localhost", "a.test", "xn--"], {"type": ["A", "AAAA", "TXT", "ANY"], "resolver": ["127.0.0.1", "[::1]:53"],
                                              "transport": ["udp", "tcp"], "timeout": ["1"]}),
    "throughput": (["http://127.0.0.1:1/blob"], {"max_bytes": ["2M", "1", "0"], "max_seconds": ["3", "0.1"],
                                                 "control": ["http://127.0.0.1:2/blob"], "stall_threshold": ["1"]}),
}  # fmt: skip


def _kind_spec(kind: str) -> st.SearchStrategy[pb.JobSpec]:
    targets, options = KIND_PARTS[kind]
    option = st.sampled_from(sorted(options)).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(st.sampled_from(options[name]), st.sampled_from(OPTION_VALUES)))
    )
    return st.builds(
        lambda kind, targets, options, every, count, until, spread, timeout: pb.JobSpec(
            kind=kind, targets=targets, options=dict(options), selector=pb.Selector(regions=[FUZZ_REGION]),
            every_s=every, count=count, until=until, spread_s=spread, timeout_s=timeout,
        ),
        st.just(kind),
        st.lists(st.one_of(st.sampled_from(targets), st.sampled_from(targets), st.sampled_from(TARGETS)),
                 min_size=1, max_size=4, unique=True),
        st.lists(option, max_size=2),
        st.sampled_from([0.0, 0.0, 0.0, 1.0, 5.0, 60.0, 0.5, -1.0, math.nan, math.inf]),
        st.one_of(st.integers(0, 5), small_ints),
        st.one_of(st.just(0.0), st.just(0.0), doubles),
        st.one_of(st.just(0.0), st.just(1.0), doubles),
        st.one_of(st.just(0.0), st.just(2.0), doubles),
    )  # fmt: skip


plausible_specs = st.one_of([_kind_spec(k) for k in KIND_PARTS])

UNARY = [
    (s.full_name, m) for s in pb.DESCRIPTOR.services_by_name.values() if s.name in ("JobService", "AdminService")
    for m in s.methods if not m.server_streaming and not m.client_streaming
]  # fmt: skip
METHODS = [f"/{s.full_name}/{m.name}" for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods]


@dataclasses.dataclass
class Target:
    """The coordinator under test and the credentials the fuzzer knows."""

    address: str
    shared_agent_token: str
    bootstrap_token: str
    # never revoked, never taken: the well-behaved agent
    protected_agent: str = "h-1"
    tokens: list[str] = dataclasses.field(default_factory=list)  # API tokens the fuzzer made
    job_ids: list[str] = dataclasses.field(default_factory=list)  # jobs it submitted
    seen: Counter[str] = dataclasses.field(default_factory=Counter)  # status codes, by method
    reasons: Counter[str] = dataclasses.field(default_factory=Counter)  # why, by method and status
    cases: int = 0


class FuzzAgent:
    """The fuzzer's own agent in FUZZ_REGION: fuzzed jobs go to it; it holds their tasks
    and runs nothing (its heartbeats keep it connected)."""

    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self._out: queue.Queue[pb.AgentMessage | None] = queue.Queue()
        self._out.put(pb.AgentMessage(hello=pb.Hello(
            agent_id="fuzz-holder", region=FUZZ_REGION, version="0.1.0", concurrency=10_000,
            kinds=["dns", "tcp", "tls", "http", "throughput"], result_format=pb.RESULT_FORMAT_TYPED,
        )))  # fmt: skip
        self._stop = threading.Event()
        self.welcomed = threading.Event()
        stream = channel.stream_stream("/vantage.v1.AgentService/Connect",
                                       request_serializer=pb.AgentMessage.SerializeToString,
                                       response_deserializer=pb.CoordinatorMessage.FromString)  # fmt: skip
        self.call = stream(self._requests(), metadata=(("authorization", f"Bearer {token}"),))
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._beat, daemon=True).start()

    def _requests(self) -> Iterator[pb.AgentMessage]:
        while (m := self._out.get()) is not None:
            yield m

    def _read(self) -> None:
        try:
            for m in self.call:
                if m.HasField("welcome"):
                    self.welcomed.set()
        except grpc.RpcError:
            pass

    def _beat(self) -> None:
        while not self._stop.wait(2.0):
            self._out.put(pb.AgentMessage(heartbeat=pb.Heartbeat(sent_at=time.time())))

    def close(self) -> None:
        self._stop.set()
        self._out.put(None)
        self.call.cancel()


def _credential(target: Target, choice: int) -> tuple[tuple[str, str], ...]:
    """Half the cases as the admin (they go deepest), the rest spread over the others."""
    tokens = [None, "wrong-token", target.shared_agent_token, *target.tokens[-5:]]
    token = target.bootstrap_token if choice < 10 else tokens[choice % len(tokens)]
    return () if token is None else (("authorization", f"Bearer {token}"),)


def _tame(target: Target, method: str, request: Message) -> None:
    """Keep a fuzzed request off the well-behaved agent: its region is never selected, and
    it is never revoked."""
    if method.endswith("/SubmitJob"):
        sel = request.spec.selector  # type: ignore[attr-defined]
        regions = [r for r in sel.regions if r != WELL_BEHAVED_REGION] or [FUZZ_REGION]
        del sel.regions[:]
        sel.regions.extend(regions)
    if method.endswith("/RevokeAgent") and request.agent_id == target.protected_agent:  # type: ignore[attr-defined]
        request.agent_id = "not-" + target.protected_agent  # type: ignore[attr-defined]
    if method.endswith("/EnrollAgent") and request.agent_id in (target.protected_agent, "fuzz-holder"):  # type: ignore[attr-defined]
        request.agent_id = "x-" + request.agent_id  # type: ignore[attr-defined]


class Bug(AssertionError):
    pass


def _check(target: Target, what: str, code: grpc.StatusCode, details: str) -> None:
    target.seen[f"{what.rsplit('/', 1)[-1]} {code.name}"] += 1
    target.reasons[f"{what.rsplit('/', 1)[-1]} {code.name}: {details.split(':')[0][:40]}"] += 1
    if code not in ALLOWED:
        raise Bug(f"{what}: {code.name}: {details}")


cases = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(range(len(UNARY))), st.integers(0, 20), st.data()),
    st.tuples(st.just("submit"), st.just(0), st.integers(0, 20), plausible_specs),
    st.tuples(st.just("raw"), st.sampled_from(METHODS), st.integers(0, 20), st.binary(max_size=300)),
    st.tuples(st.just("watch"), st.just(0), st.integers(0, 20), message(pb.WatchJobRequest.DESCRIPTOR)),
    st.tuples(st.just("agent"), st.just(0), st.integers(0, 20), st.data()),
)


def run_case(target: Target, channel: grpc.Channel, case: tuple[Any, ...]) -> None:
    kind, which, cred, payload = case
    target.cases += 1
    metadata = _credential(target, cred)
    if kind == "submit":  # a plausible spec, then (at times) a cancel of a job it made
        kind, payload = "unary", _Fixed(pb.SubmitJobRequest(spec=payload))
        which = next(i for i, (_, m) in enumerate(UNARY) if m.name == "SubmitJob")
    if kind == "unary":
        service, m = UNARY[which]
        request = payload.draw(message(m.input_type), label=m.name)
        method = f"/{service}/{m.name}"
        _tame(target, method, request)
        if "job_id" in m.input_type.fields_by_name and target.job_ids and cred % 2:
            request.job_id = target.job_ids[cred % len(target.job_ids)]  # type: ignore[attr-defined]
        call = channel.unary_unary(method, request_serializer=lambda r: r.SerializeToString(),
                                   response_deserializer=_classes()[m.output_type.full_name].FromString)  # fmt: skip
        try:
            answer = call(request, metadata=metadata, timeout=10)
            target.seen[f"{m.name} OK"] += 1
            if m.name == "AddToken" and answer.secret:
                target.tokens.append(answer.secret)
            if m.name == "SubmitJob":
                target.job_ids.append(answer.job_id)
        except grpc.RpcError as exc:
            _check(target, method, exc.code(), str(exc.details()))
    elif kind == "raw":
        if which.endswith("/Connect"):
            return  # the stream is the "agent" case
        if which.endswith("/RevokeAgent"):
            return  # raw bytes may name the well-behaved agent
        if which.endswith("/WatchJob"):
            call = channel.unary_stream(which)
            try:
                for _ in call(payload, metadata=metadata, timeout=2):
                    pass
                target.seen["WatchJob OK"] += 1
            except grpc.RpcError as exc:
                _check(target, which, exc.code(), str(exc.details()))
            return
        if which.endswith("/SubmitJob"):
            return  # cannot be kept off the well-behaved agent's region
        try:
            channel.unary_unary(which)(payload, metadata=metadata, timeout=10)
            target.seen[f"{which.rsplit('/', 1)[-1]} OK"] += 1
        except grpc.RpcError as exc:
            _check(target, which, exc.code(), str(exc.details()))
    elif kind == "watch":
        if target.job_ids and cred % 2:
            payload.job_id = target.job_ids[cred % len(target.job_ids)]
        call = channel.unary_stream("/vantage.v1.JobService/WatchJob",
                                    request_serializer=pb.WatchJobRequest.SerializeToString,
                                    response_deserializer=pb.WatchJobEvent.FromString)  # fmt: skip
        try:
            for n, _ in enumerate(call(payload, metadata=metadata, timeout=1.5)):
                if n > 50:
                    break
            target.seen["WatchJob OK"] += 1
        except grpc.RpcError as exc:
            _check(target, "WatchJob", exc.code(), str(exc.details()))
    else:
        _agent_case(target, channel, metadata, payload)


class _Fixed:
    """A ``data`` whose draw is a message already made."""

    def __init__(self, value: Message) -> None:
        self.value = value

    def draw(self, _strategy: Any, label: str = "") -> Message:
        return self.value


def _agent_case(target: Target, channel: grpc.Channel, metadata: Any, data: Any) -> None:
    if data.draw(st.integers(0, 3), label="with the shared agent token") > 0:
        metadata = (("authorization", f"Bearer {target.shared_agent_token}"),)
    hello = data.draw(message(pb.Hello.DESCRIPTOR), label="hello")
    if data.draw(st.booleans(), label="plausible hello"):
        hello.agent_id = data.draw(st.sampled_from(["fz-1", "fz-2", target.protected_agent]))
        hello.region = FUZZ_REGION
        del hello.kinds[:]
        hello.kinds.extend(["tcp", "http", "dns", "tls", "throughput"])
    first = pb.AgentMessage(hello=hello)
    if data.draw(st.integers(0, 9), label="not a hello first") == 0:
        first = data.draw(message(pb.AgentMessage.DESCRIPTOR), label="first message")
    rest = data.draw(st.lists(message(pb.AgentMessage.DESCRIPTOR), max_size=3), label="messages")
    out: queue.Queue[pb.AgentMessage | None] = queue.Queue()
    out.put(first)

    def requests() -> Iterator[pb.AgentMessage]:
        while (m := out.get()) is not None:  # a None always follows (finally, below)
            yield m

    stream = channel.stream_stream("/vantage.v1.AgentService/Connect",
                                   request_serializer=pb.AgentMessage.SerializeToString,
                                   response_deserializer=pb.CoordinatorMessage.FromString)  # fmt: skip
    call = stream(requests(), metadata=metadata, timeout=3)
    try:
        sent = False
        for m in call:
            if m.HasField("assign") and not sent:  # answer a real task: fuzzed fields on it
                for r in (x for x in rest if x.HasField("results")):
                    for res in r.results.results:
                        res.task_id, res.job_id = m.assign.task_id, m.assign.job_id
            if not sent:
                for r in rest:
                    out.put(r)
                out.put(None)
                sent = True
        target.seen["Connect OK"] += 1
    except grpc.RpcError as exc:
        _check(target, "AgentService/Connect", exc.code(), str(exc.details()))
    finally:
        out.put(None)
        call.cancel()


def campaign(target: Target, examples: int, *, seed: int | None = None) -> Target:
    """Run ``examples`` cases against ``target``; raises Bug (the smallest case hypothesis
    finds) on a status the coordinator must never answer."""
    with grpc.insecure_channel(target.address) as channel:
        holder = FuzzAgent(channel, target.shared_agent_token)
        if not holder.welcomed.wait(10):
            raise AssertionError("the fuzzer's own agent was not welcomed")
        try:
            def one(case: tuple[Any, ...]) -> None:
                run_case(target, channel, case)

            run = settings(
                max_examples=examples, deadline=None, database=None, derandomize=seed is None,
                suppress_health_check=list(HealthCheck), print_blob=True,
            )(given(case=cases)(one))
            if seed is not None:
                from hypothesis import seed as with_seed

                run = with_seed(seed)(run)
            run()
        finally:
            holder.close()
    return target
