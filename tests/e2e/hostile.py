"""A hand-driven agent for the trust tests: it speaks the agent protocol over real gRPC and
sends whatever a test makes it send (forged fields, NaN, far-future times, huge batches)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from protos.results import FAILURE_NUMBERS, data_to_pb
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc


class RawAgent:
    def __init__(
        self,
        address: str,
        agent_id: str,
        region: str,
        *,
        kinds: Sequence[str] = ("dns", "tcp", "tls", "http", "throughput"),
        token: str | None = None,
        hello: pb.Hello | None = None,
    ) -> None:
        self.address = address
        self.hello = hello or pb.Hello(
            agent_id=agent_id, region=region, kinds=list(kinds), concurrency=64, version="0.1.0",
            result_format=pb.RESULT_FORMAT_TYPED,
        )
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.channel: grpc.aio.Channel | None = None
        self.call: Any = None
        self.acked: set[str] = set()
        self.assignments: list[pb.TaskAssignment] = []

    async def __aenter__(self) -> RawAgent:
        self.channel = grpc.aio.insecure_channel(self.address)
        stub = pb_grpc.AgentServiceStub(self.channel)
        self.call = stub.Connect(metadata=self.metadata)
        await self.call.write(pb.AgentMessage(hello=self.hello))
        first = await asyncio.wait_for(self.call.read(), 10)
        assert first is not grpc.aio.EOF and first.HasField("welcome"), first  # type: ignore[attr-defined]
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.call is not None:
            self.call.cancel()
        if self.channel is not None:
            await self.channel.close()

    async def read(self, limit_s: float = 10.0) -> pb.CoordinatorMessage:
        msg = await asyncio.wait_for(self.call.read(), limit_s)
        if msg is grpc.aio.EOF:  # type: ignore[attr-defined]
            raise AssertionError("the coordinator ended the session")
        if msg.HasField("ack"):
            self.acked.update(msg.ack.task_ids)
        elif msg.HasField("assign"):
            self.assignments.append(msg.assign)
        return msg  # type: ignore[no-any-return]

    async def assignment(self, limit_s: float = 15.0) -> pb.TaskAssignment:
        """The next task assigned to this agent."""
        deadline = asyncio.get_running_loop().time() + limit_s
        seen = len(self.assignments)
        while len(self.assignments) == seen:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError("no task assigned in time")
            await self.read(left)
        return self.assignments[seen]

    async def send(self, *results: pb.TaskResult) -> None:
        await self.call.write(pb.AgentMessage(results=pb.ResultBatch(results=list(results))))

    async def heartbeat(self) -> None:
        await self.call.write(pb.AgentMessage(heartbeat=pb.Heartbeat(sent_at=0)))

    async def until_acked(self, task_ids: set[str], limit_s: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + limit_s
        while not task_ids <= self.acked:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"not acked in time: {sorted(task_ids - self.acked)}")
            await self.read(left)


def answer(a: pb.TaskAssignment, **fields: Any) -> pb.TaskResult:
    """A plausible result for assignment ``a`` (a tcp connect that worked), with ``fields``
    overriding the TaskResult's fields and ``result`` a dict of ProbeResult fields: its
    ``failure`` a class name or an enum number, its ``data`` the typed data of the kind (or
    of ``data_kind``) as a dict."""
    import time

    now = time.time()
    probe: dict[str, Any] = {
        "kind": a.kind, "target": a.target, "duration_s": 0.01, "failure": "", "failure_detail": "",
    }  # fmt: skip
    probe.update(fields.pop("result", {}))
    data = probe.pop("data", None)
    member = probe.pop("data_kind", probe["kind"])
    if isinstance(probe["failure"], str):
        probe["failure"] = FAILURE_NUMBERS[probe["failure"]]
    r = pb.TaskResult(
        task_id=a.task_id, job_id=a.job_id, agent_id="", started_at=now - 0.01, finished_at=now,
        result=pb.ProbeResult(**probe),
    )  # fmt: skip
    if data is not None:
        data_to_pb(member, data, r.result)  # NaN and infinities pass: the coordinator must refuse them
    for key, value in fields.items():
        setattr(r, key, value)
    return r
