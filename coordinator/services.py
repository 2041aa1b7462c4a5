"""The gRPC servicers: AgentService (the agents' stream) and JobService (the API).

They check who calls and what they send, call the coordinator, and translate with
``coordinator/convert.py``; they read coordinator state only through its queries.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import structlog

from common.ids import (
    AGENT_ID_RE,
    COUNTRY_RE,
    JOB_ID_RE,
    REGION_RE,
    is_assigned_task_id,
    is_version,
    labels_problem,
)
from coordinator import admission, convert
from coordinator.access import Access, Denied, Principal, bind_agent, caller
from coordinator.core import AgentLimit, AgentRefused, Coordinator, NotStored
from coordinator.model import Acknowledgement, AgentInfo, Job, TaskResultData
from coordinator.quotas import QuotaExceeded
from coordinator.registry import Session
from coordinator.validation import InvalidJob
from coordinator.vouch import MAX_BATCH, Refused
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.coordinator")
EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # end-of-stream sentinel (missing from the stubs)

MAX_LIST = 1000
# ListAgents: agents a page when the caller asks no size, and the most it may ask.
AGENTS_PAGE = 500
MAX_AGENTS_PAGE = 1000
# Reasons of vantage_results_dropped_total counted here (before ingest).
BATCH_TOO_LONG = "batch over the limit"
MALFORMED_TASK_ID = "malformed task id"
HELLO_TIMEOUT_S = 10.0
# Result batches of one agent being ingested at once, and of all agents together
# (AgentServicer._read): past them a stream is not read until one is committed.
INGESTS_IN_FLIGHT = 8
# Queued messages written to an agent in one go (AgentServicer.serve).
OUTGOING_BATCH = 1000
INGESTS_IN_FLIGHT_TOTAL = 4096
# A watcher catching up on stored results dedupes the live ones against those stored
# since it began, less this margin (longer than a write can wait out a database outage:
# a result is stamped before its commit); the ids of older results are never held.
WATCH_OVERLAP_S = 60.0


# Set by a relay (coordinator/relay.py) on the stream it carries: the agent's own address,
# and the relay's name in the fleet.
PEER_KEY = "vantage-agent-peer"
RELAY_KEY = "vantage-relay"
_PEER_CHARS = frozenset("0123456789abcdefABCDEF.:[]%ipv")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/")


def peer_of(context: Any, *, relays: bool = True) -> str:
    """The agent's address as shown in ListAgents: the stream's peer, and for a relayed
    stream the address the relay saw and the relay's name (metadata any caller can set,
    so each is bounded and kept to the characters of an address or a name). A coordinator
    that is no fleet member has no relays (``relays=False``): there the metadata is a
    direct caller's forgery and is ignored."""
    peer = str(context.peer())
    if not relays:
        return peer
    given = {k: v for k, v in context.invocation_metadata() or () if k in (PEER_KEY, RELAY_KEY) and isinstance(v, str)}
    seen, relay = given.get(PEER_KEY, "")[:60], given.get(RELAY_KEY, "")[:60]
    if not seen or not set(seen) <= _PEER_CHARS:
        return peer
    via = relay if relay and set(relay) <= _NAME_CHARS else peer
    return f"{seen} via {via}"


async def read_hello(context: Any) -> pb.AgentMessage:
    """The first message of an agent's stream, checked to be a well-formed hello (the
    stream is aborted with the reason otherwise)."""
    try:
        first = await asyncio.wait_for(context.read(), HELLO_TIMEOUT_S)
    except TimeoutError:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no hello within 10s")
    if first is EOF or not first.HasField("hello"):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello: the first message must be a hello")
    hello = first.hello
    if not AGENT_ID_RE.fullmatch(hello.agent_id):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello.agent_id: missing or malformed")
    if not REGION_RE.fullmatch(hello.region):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello.region: missing or malformed")
    if hello.country and not COUNTRY_RE.fullmatch(hello.country.upper()):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "hello.country: must be empty or a two-letter country code",
        )
    problem = _hello_problem(hello)
    if problem is not None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
    if hello.result_format != pb.RESULT_FORMAT_TYPED:
        # An agent from before typed results: its string failures and Struct data would
        # read as successes without data. It must be upgraded, not half-understood.
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"hello.result_format: {hello.result_format} is not {pb.RESULT_FORMAT_TYPED} "
            "(typed results); this agent is older than the coordinator: upgrade it",
        )
    msg: pb.AgentMessage = first
    return msg


# What a hello may carry, beyond the id, region and country checked above.
MAX_HELD = 100_000
MAX_CONCURRENCY = 10_000
MAX_KINDS = 64
KIND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _hello_problem(hello: pb.Hello) -> str | None:
    """The first field of ``hello`` that is out of bounds, as "hello.<field>: <why>"."""
    problem = labels_problem(dict(hello.labels))
    if problem is not None:
        return f"hello.labels: {problem}"
    if hello.version and not is_version(hello.version):
        return "hello.version: malformed (letters, digits and ._+~- only, at most 64)"
    # Kinds this coordinator does not know are kept (no job of theirs is ever accepted),
    # so a newer agent still serves the kinds both know; each must look like a kind's name.
    if len(hello.kinds) > MAX_KINDS or not all(KIND_NAME_RE.fullmatch(k) for k in hello.kinds):
        return f"hello.kinds: at most {MAX_KINDS} names of lower-case letters, digits and _"
    if hello.concurrency > MAX_CONCURRENCY:
        return f"hello.concurrency: at most {MAX_CONCURRENCY}"
    if len(hello.held_task_ids) > MAX_HELD:
        return f"hello.held_task_ids: at most {MAX_HELD}"
    if not all(is_assigned_task_id(t) for t in hello.held_task_ids):
        return "hello.held_task_ids: a malformed task id"
    return None


async def bound_agent(access: Access, principal: Principal, hello: pb.Hello, context: Any) -> AgentInfo:
    """The agent ``hello`` may be for this caller (coordinator/access.py ``bind_agent``);
    the stream is aborted otherwise."""
    try:
        return bind_agent(principal, convert.agent_from_hello(hello), access)
    except Denied as why:
        log.warning("agent_hello_refused", agent_id=hello.agent_id, by=principal.name, reason=why.message)
        await context.abort(why.code, why.message)
        raise  # not reached: abort raises


class AgentServicer(pb_grpc.AgentServiceServicer):  # type: ignore[misc]
    """The agents' stream. The caller was authenticated by the interceptor
    (coordinator/access.py ``Guard``) before ``Connect`` runs."""

    # Whether a stream may come through a relay (a fleet member's servicer): only then is
    # the relay metadata read (``peer_of``).
    relays = False

    def __init__(self, core: Coordinator, access: Access) -> None:
        self.core = core
        self.access = access
        self._room = asyncio.Semaphore(INGESTS_IN_FLIGHT_TOTAL)  # batches being ingested

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        principal = caller()
        if not await admission.admit(self.core.lag, context, self.core.rng):
            return
        first = await read_hello(context)
        info = await bound_agent(self.access, principal, first.hello, context)
        await self.serve(first, info, principal, context)

    async def serve(self, first: pb.AgentMessage, info: AgentInfo, principal: Principal, context: Any) -> None:
        """One agent's session, from its checked hello (``read_hello``) and the identity
        it may have (``bound_agent``) on."""
        hello = first.hello
        try:
            session = self.core.agent_connected(info, peer_of(context, relays=self.relays), hello.held_task_ids, principal.credential)
        except AgentRefused as why:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(why, AgentLimit) else grpc.StatusCode.ALREADY_EXISTS
            await context.abort(code, str(why))
        structlog.contextvars.bind_contextvars(agent_id=info.agent_id)
        reader: asyncio.Task[None] | None = None
        reason = "session closed by coordinator"
        try:
            await context.write(
                convert.welcome_to_pb(session.session_id, self.core.config.heartbeat_interval_s)
            )
            reader = asyncio.create_task(self._read(session, context))
            # The writer loop waits on one queue; a closed session or a finished reader
            # puts None in it (cheaper than waiting on several futures per message).
            reader.add_done_callback(lambda _: session.outgoing.put_nowait(None))
            batches = hello.assign_batches
            closing = False
            while not closing:
                msg = await session.outgoing.get()
                if msg is None:
                    break
                # What else is queued goes with it: acks merged, assignments batched
                # (each message costs both sides far more than its bytes).
                taken = [msg]
                while len(taken) < OUTGOING_BATCH and not session.outgoing.empty():
                    more = session.outgoing.get_nowait()
                    if more is None:
                        closing = True
                        break
                    taken.append(more)
                for out in convert.outgoing_batch_to_pb(taken, assign_batches=batches):
                    await context.write(out)
            if reader.done() and not reader.cancelled():
                exc = reader.exception()
                reason = f"read failed: {exc}" if exc else "agent closed the stream"
        except (asyncio.CancelledError, grpc.aio.AioRpcError) as exc:
            reason = f"stream broke: {type(exc).__name__}"
            raise
        finally:
            if reader is not None:
                reader.cancel()
            self.core.agent_disconnected(session, reason)
            structlog.contextvars.unbind_contextvars("agent_id")

    async def _read(self, session: Session, context: Any) -> None:
        """Read the agent's messages. A batch of results is ingested beside the reading,
        up to ``INGESTS_IN_FLIGHT`` batches at once: the next message is read (a heartbeat
        seen, the next batch begun) while a batch waits for its commit. One batch at a time
        held an agent to one commit cycle per batch (about 170 results a second for an
        agent that sends them one by one as they finish). Each batch is acked when it is
        committed; a task id in two batches is stored once (``Ingest.ingest``)."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                msg = await context.read()
                if msg is EOF:
                    break
                self.core.heartbeat(session, session.running, session.outbox)
                which = msg.WhichOneof("body")
                if which == "heartbeat":
                    self.core.heartbeat(session, msg.heartbeat.running, msg.heartbeat.outbox)
                elif which == "results":
                    results, refused = self._results(session, msg.results.results)
                    # Waiting for room is the coordinator's doing: meanwhile the session
                    # is not silent (Coordinator._expire_silent_sessions).
                    session.held_back = True
                    try:
                        if len(inflight) >= INGESTS_IN_FLIGHT:
                            await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                        await self._room.acquire()
                    finally:
                        session.held_back = False
                    self.core.heartbeat(session, session.running, session.outbox)
                    task = asyncio.create_task(self._ingest(session, results, refused))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    # released however the task ends, even cancelled before it began
                    task.add_done_callback(lambda _: self._room.release())
            if inflight:  # the agent closed its side: what it sent is still acked
                await asyncio.wait(inflight)
        finally:
            for task in inflight:
                task.cancel()  # before its commit: not acked, the agent sends it again

    async def _ingest(
        self, session: Session, results: list[TaskResultData], refused: list[tuple[str, Refused]]
    ) -> None:
        try:
            outcome = await self.core.ingest(session, results, refused)
        except Exception as exc:  # a bug must not go unseen: the session ends, as a failed read did
            log.exception("ingest_failed", agent_id=session.info.agent_id, error=str(exc))
            session.close()
            return
        if outcome.acked:
            session.send(Acknowledgement(task_ids=outcome.acked))

    def _results(
        self, session: Session, batch: Sequence[pb.TaskResult]
    ) -> tuple[list[TaskResultData], list[tuple[str, Refused]]]:
        """A batch's results, and those refused before ingest (by task id). Past
        ``MAX_BATCH`` nothing is read (nor acked: a real agent resends them); a result whose
        task id cannot be ours is skipped without an ack."""
        counters = self.core.counters
        if len(batch) > MAX_BATCH:
            counters.dropped[BATCH_TOO_LONG] += len(batch) - MAX_BATCH
            log.warning("result_batch_too_long", agent_id=session.info.agent_id, results=len(batch))
        results: list[TaskResultData] = []
        refused: list[tuple[str, Refused]] = []
        for m in batch[:MAX_BATCH]:
            task_id = convert.task_id_of(m)
            if task_id is None:
                counters.dropped[MALFORMED_TASK_ID] += 1
                continue
            try:
                results.append(convert.task_result_from_pb(m))
            except Refused as why:
                refused.append((task_id, why))
        return results, refused


class JobServicer(pb_grpc.JobServiceServicer):  # type: ignore[misc]
    """The job API. Each call's caller was authenticated, and its role checked, by the
    interceptor (coordinator/access.py ``Guard``) before its handler runs."""

    def __init__(self, core: Coordinator, access: Access) -> None:
        self.core = core
        self.access = access

    @staticmethod
    async def _valid_job_id(job_id: str, context: Any) -> None:
        if not job_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id: is required")
        if not JOB_ID_RE.fullmatch(job_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"job_id: {job_id[:40]!r} is not a job id (16 hex digits)"
            )

    async def _job(self, job_id: str, context: Any) -> Job:
        await self._valid_job_id(job_id, context)
        job = self.core.job(job_id)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {job_id}")
        assert job is not None
        return job

    async def SubmitJob(self, request: pb.SubmitJobRequest, context: Any) -> pb.Job:
        who = caller()
        if not request.HasField("spec"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec: is required")
        try:
            job = await self.core.submit_job(convert.spec_from_pb(request.spec), owner=who.name, token=who.token)
        except InvalidJob as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except QuotaExceeded as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except RuntimeError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except NotStored:  # logged by the coordinator
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the job could not be stored, so it was not accepted; retry")
        return convert.job_to_pb(job)

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.Job:
        return convert.job_to_pb(await self._job(request.job_id, context))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Any) -> pb.ListJobsResponse:
        if request.limit > MAX_LIST:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit: at most {MAX_LIST}")
        return convert.jobs_to_pb(self.core.recent_jobs(request.limit or 100))

    async def CancelJob(self, request: pb.CancelJobRequest, context: Any) -> pb.Job:
        who = caller()
        job = await self._job(request.job_id, context)
        if not who.may("admin") and job.owner != who.name:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"job_id: job {job.job_id} was submitted by another token; only its own token or an admin cancels it",
            )
        if job.state.finished:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"job_id: job {job.job_id} is already {job.state}"
            )
        return convert.job_to_pb(self.core.cancel_job(job.job_id, actor=who.name))

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Any
    ) -> AsyncIterator[pb.WatchJobEvent]:
        """The job's stored results, read page by page, then (with ``follow``) the live
        ones until the job ends. A live result already sent from the store is skipped."""
        job = await self._job(request.job_id, context)
        watchers = self.core.watchers
        queue = watchers.watch(job.job_id) if request.follow else None
        began = self.core.clock() - WATCH_OVERLAP_S
        try:
            sent: set[str] = set()
            async for raw, received_at in self.core.store.iter_results(job.job_id):
                event = convert.watch_result(raw)
                if queue is not None and received_at >= began:
                    sent.add(event.result.task_id)
                yield event
            if queue is None or job.state.finished:
                yield convert.watch_end(job)
                return
            while True:
                live = await queue.get()
                if live.overflow:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "watch fell too far behind; read the stored results with follow=false",
                    )
                if live.result is not None and live.result.task_id not in sent:
                    yield convert.watch_result(live.result.raw)
                elif live.failed_task is not None:
                    yield convert.watch_failure(live.failed_task)
                elif live.job_end is not None:
                    yield convert.watch_end(live.job_end)
                    return
        finally:
            if queue is not None:
                watchers.unwatch(job.job_id, queue)

    async def ListAgents(self, request: pb.ListAgentsRequest, context: Any) -> pb.ListAgentsResponse:
        """A page of the agents, by id: a response of every agent once grew past the
        client's 4 MiB (1,600 shared-token agents), so nobody could list any."""
        size = request.page_size or AGENTS_PAGE
        if size > MAX_AGENTS_PAGE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size: at most {MAX_AGENTS_PAGE}")
        after = request.page_token
        if after and not AGENT_ID_RE.fullmatch(after):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: not one this coordinator gave")
        views = [v for v in self.core.agents() if v.info.agent_id > after] if after else self.core.agents()
        page = views[:size]
        response = convert.agents_to_pb(page, self.core.snapshot)
        if len(views) > size:
            response.next_page_token = page[-1].info.agent_id
        return response

    async def GetVerdicts(self, request: pb.GetVerdictsRequest, context: Any) -> pb.GetVerdictsResponse:
        return convert.verdicts_to_pb(self.core.snapshot)
