"""A fleet member that does not schedule relays to the one that does (``coordinator/fleet.py``).

- An agent's stream: this coordinator checks the agent's token and hello itself (nothing
  unauthenticated goes further), then opens the same ``AgentService.Connect`` call at the
  scheduler with the agent's own credential and carries messages both ways unchanged. The
  scheduler sees an ordinary session (its peer shown "via" this relay) and applies every
  rule it applies to a direct one. While there is no scheduler (an election, a takeover)
  the agent's stream waits here, up to ``PARK_S``, before its hello goes on: agents do
  not spin through their backoff while the fleet fails over. Once a session was carried,
  its end at the scheduler ends it here too, so that the agent says again, in a fresh
  hello, which tasks it holds.
- The job API: each call is checked for its token here and forwarded, with the caller's
  credential, to the scheduler; its answer or its error comes back as it is.

Coordinators reach each other at their ``--advertise`` address, over TLS when they listen
with TLS (the peer is verified against ``--tls-cert``: give the fleet one certificate, or
certificates whose chain file ends with the CA that signed them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import grpc
import structlog

from common.defaults import RETRY_HINT_KEY
from coordinator import admission, tail_watch
from coordinator.access import Access, caller
from coordinator.admin import AdminServicer
from coordinator.core import Coordinator
from coordinator.fleet import Fleet, Route
from coordinator.services import (
    EOF,
    PEER_KEY,
    RELAY_KEY,
    AgentServicer,
    JobServicer,
    bound_agent,
    read_hello,
)
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.coordinator")

PARK_S = 30.0  # an agent's stream waits this long for a scheduler
API_WAIT_S = 10.0  # an API call waits this long for a scheduler
API_TIMEOUT_S = 30.0  # a forwarded unary call
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)


class Upstreams:
    """One channel per scheduler address, reused by every relayed call."""

    def __init__(self, credentials: grpc.ChannelCredentials | None, max_message: int) -> None:
        self.credentials = credentials
        self.options = [
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # A holder that comes back at the same address is reached again within
            # seconds, not after gRPC's default reconnect backoff (up to 2 minutes).
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is None:
            if self.credentials is not None:
                ch = grpc.aio.secure_channel(address, self.credentials, options=self.options)
            else:
                ch = grpc.aio.insecure_channel(address, options=self.options)
            self._channels[address] = ch
        return ch

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(grace=None)


def forwarded(context: Any, me: str) -> list[tuple[str, str]]:
    """The metadata a relayed call carries: the caller's credential, the relay's name and
    the caller's address (for the scheduler's ListAgents)."""
    md = [(k, v) for k, v in context.invocation_metadata() or () if k == "authorization" and isinstance(v, str)]
    md.append((RELAY_KEY, me))
    md.append((PEER_KEY, str(context.peer())[:60]))
    return md


def relayed_already(context: Any) -> bool:
    """The call came through another relay (it carries a relay's name)."""
    return any(k == RELAY_KEY for k, _ in context.invocation_metadata() or ())


def _details(exc: grpc.aio.AioRpcError) -> str:
    return " ".join(str(exc.details() or exc.code().name).split())[:300]


class FleetAgentServicer(AgentServicer):
    """AgentService for a fleet member: served here while it schedules, relayed otherwise."""

    relays = True

    def __init__(self, core: Coordinator, access: Access, fleet: Fleet, upstreams: Upstreams) -> None:
        super().__init__(core, access)
        self.fleet = fleet
        self.upstreams = upstreams
        self.relayed = 0  # sessions carried to the scheduler right now
        self._warned: dict[str, float] = {}  # scheduler address -> when last said unreachable

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        principal = caller()
        if not await admission.admit(self.core.lag, context, self.core.rng):
            return
        first = await read_hello(context)
        info = await bound_agent(self.access, principal, first.hello, context)
        deadline = time.monotonic() + PARK_S
        while True:
            route = await self.fleet.route(max(0.0, deadline - time.monotonic()))
            if route is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE,
                                    f"no coordinator of the fleet schedules yet (waited {PARK_S:g}s); retry")  # fmt: skip
            assert route is not None
            if route.local:
                # checked again: the wait for a scheduler may have outlasted a revocation
                info = await bound_agent(self.access, principal, first.hello, context)
                await self.serve(first, info, principal, context)
                return
            if relayed_already(context):  # two members disagree for a moment: no relay chains
                await context.abort(grpc.StatusCode.UNAVAILABLE, "this coordinator does not schedule; reconnect")
            if await self._relay(first, context, route):
                return
            # the scheduler we knew did not answer: wait for the fleet to say who does now
            await asyncio.sleep(0.5)

    async def _relay(self, first: pb.AgentMessage, context: Any, route: Route) -> bool:
        """Carry one session to ``route``; False when the scheduler could not be reached
        before the session began (worth another try)."""
        stub = pb_grpc.AgentServiceStub(self.upstreams.channel(route.address))
        call = stub.Connect(metadata=forwarded(context, self.fleet.me))
        try:
            try:
                await call.write(first)
                welcome = await call.read()
            except grpc.aio.AioRpcError as exc:
                if exc.code() in RETRYABLE:
                    now = time.monotonic()
                    if now - self._warned.get(route.address, -60.0) >= 5.0:  # once in 5 s, not per agent
                        self._warned[route.address] = now
                        log.warning("relay_scheduler_unreachable", scheduler=route.address, error=_details(exc))
                    return False
                # e.g. the scheduler refused the token, or shed the stream: its retry hint
                # goes on to the agent (coordinator/admission.py)
                trailers: Any = exc.trailing_metadata() or ()
                hint = [(k, v) for k, v in trailers if k == RETRY_HINT_KEY]
                if hint:
                    context.set_trailing_metadata(tuple(hint[:1]))
                await context.abort(exc.code(), _details(exc))
            if welcome is EOF:
                return False
            await context.write(welcome)
            self.relayed += 1
            try:
                await self._pump(call, context)
            finally:
                self.relayed -= 1
            return True
        finally:
            call.cancel()

    @staticmethod
    async def _pump(call: Any, context: Any) -> None:
        async def up() -> None:  # agent -> scheduler
            while (msg := await context.read()) is not EOF:
                await call.write(msg)
            await call.done_writing()

        async def down() -> None:  # scheduler -> agent
            while (msg := await call.read()) is not EOF:
                await context.write(msg)

        up_t, down_t = asyncio.create_task(up()), asyncio.create_task(down())
        try:
            done, _ = await asyncio.wait({up_t, down_t}, return_when=asyncio.FIRST_COMPLETED)
            if up_t in done and not down_t.done() and up_t.exception() is None:
                await asyncio.wait({down_t}, timeout=10.0)  # the agent closed: the scheduler follows
        finally:
            for t in (up_t, down_t):
                t.cancel()
            for t in (up_t, down_t):
                with contextlib.suppress(BaseException):
                    await t
        ended = next((t.exception() for t in (down_t, up_t) if t.done() and not t.cancelled()
                      and t.exception() is not None), None)  # fmt: skip
        if isinstance(ended, grpc.aio.AioRpcError):  # the scheduler's side broke or refused
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"the fleet's scheduler ended the session ({_details(ended)}); reconnect")  # fmt: skip


def _answered_by_the_holder(name: str, local_class: type = JobServicer, stub_class: Any = pb_grpc.JobServiceStub
                             ) -> Callable[..., Coroutine[Any, Any, Any]]:  # fmt: skip
    """A unary method of a fleet member (JobService, AdminService): the local one while
    this coordinator holds the lease, the holder's otherwise (the same answer, or the
    same error)."""
    local = getattr(local_class, name)

    async def method(self: Forwarding, request: Any, context: Any) -> Any:
        route = await self._route(context)
        if route.local:
            return await local(self, request, context)
        return await self._forward(stub_class, name, request, context, route)

    method.__name__ = name
    return method


class Forwarding:
    """What a fleet member's API servicers share: the route to the holder, and a call
    forwarded to it with the caller's credential."""

    fleet: Fleet
    upstreams: Upstreams

    async def _route(self, context: Any) -> Route:
        route = await self.fleet.route(API_WAIT_S)
        if route is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "no coordinator of the fleet schedules yet (a takeover takes up to about "
                                "10s); retry")  # fmt: skip
        assert route is not None
        return route

    async def _forward(self, stub_class: Any, name: str, request: Any, context: Any, route: Route) -> Any:
        if relayed_already(context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this coordinator does not schedule; retry")
        stub = stub_class(self.upstreams.channel(route.address))
        try:
            return await getattr(stub, name)(request, metadata=forwarded(context, self.fleet.me),
                                             timeout=API_TIMEOUT_S)  # fmt: skip
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE:
                await context.abort(exc.code(), f"the fleet's scheduler at {route.address}: {_details(exc)}; retry")
            await context.abort(exc.code(), _details(exc))


class FleetJobServicer(Forwarding, JobServicer):
    """JobService for a fleet member: answered here while it schedules, forwarded otherwise."""

    def __init__(
        self, core: Coordinator, access: Access, fleet: Fleet, upstreams: Upstreams, tail: tail_watch.TailStore
    ) -> None:
        super().__init__(core, access)
        self.fleet = fleet
        self.upstreams = upstreams
        self.tail = tail

    # The unary calls: answered here at the holder, forwarded to it elsewhere.
    SubmitJob = _answered_by_the_holder("SubmitJob")
    GetJob = _answered_by_the_holder("GetJob")
    ListJobs = _answered_by_the_holder("ListJobs")
    CancelJob = _answered_by_the_holder("CancelJob")
    ListAgents = _answered_by_the_holder("ListAgents")
    GetVerdicts = _answered_by_the_holder("GetVerdicts")

    async def WatchJob(self, request: pb.WatchJobRequest, context: Any) -> AsyncIterator[pb.WatchJobEvent]:
        """At the holder, its own watch; elsewhere the job read from the shared database
        as it commits (coordinator/tail_watch.py), so the watch goes on through a
        takeover."""
        if self.fleet.leading:
            async for event in super().WatchJob(request, context):
                yield event
            return
        await self._valid_job_id(request.job_id, context)
        try:
            job = await self.tail.tail_job(request.job_id)
        except Exception as exc:  # the database: say so, as the holder's own errors would
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the fleet's database: {' '.join(str(exc).split())[:200]}; retry")
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {request.job_id}")
        assert job is not None
        async for event in tail_watch.watch(self.tail, job, follow=request.follow):
            yield event


class FleetAdminServicer(Forwarding, AdminServicer):
    """AdminService for a fleet member: the holder writes every credential (and closes a
    revoked agent's session, which it serves); the others forward to it."""

    def __init__(self, core: Coordinator, access: Access, fleet: Fleet, upstreams: Upstreams) -> None:
        super().__init__(core, access)
        self.fleet = fleet
        self.upstreams = upstreams


for _name in ("EnrollAgent", "RevokeAgent", "ListEnrollments", "AddToken", "RevokeToken", "ListTokens", "ListAudit"):
    setattr(FleetAdminServicer, _name, _answered_by_the_holder(_name, AdminServicer, pb_grpc.AdminServiceStub))
