"""The agent's side of ``AgentService.Connect``: dial out, say hello, keep the stream
alive with heartbeats (and HTTP/2 keepalive), take assignments, send results, drop them
from the outbox when acked, and reconnect with jittered exponential backoff.

Only the agent dials: it works from behind NAT and firewalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import structlog

from agent import __version__
from agent.budget import HourlyBytes
from agent.clock import Clock, SystemClock, wait_event
from agent.outbox import Outbox
from agent.probes import KINDS, run_probe
from agent.probes.base import Limits
from agent.runner import Assignment, ProbeFn, Runner
from common.defaults import RETRY_HINT_KEY
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.agent")
EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # end-of-stream sentinel (missing from the stubs)

RESULT_BATCH = 200
# Assignments read from one AssignBatch (the contract's bound; more are ignored).
MAX_ASSIGN_BATCH = 1000
RESEND_AFTER_S = 60.0
# A session that lasted this long was healthy: the next reconnect starts the backoff over.
HEALTHY_SESSION_S = 30.0


class Stream(Protocol):
    """One ``AgentService.Connect`` call as the session uses it."""

    async def write(self, message: pb.AgentMessage) -> None: ...

    async def read(self) -> pb.CoordinatorMessage | None:
        """The next message, or None when the coordinator ended the stream."""
        ...


# Opens a stream to the coordinator (the real one dials gRPC; tests pass a fake).
Connector = Callable[[], AbstractAsyncContextManager[Stream]]


class _GrpcStream:
    def __init__(self, call: Any) -> None:
        self._call = call

    async def write(self, message: pb.AgentMessage) -> None:
        await self._call.write(message)

    async def read(self) -> pb.CoordinatorMessage | None:
        msg = await self._call.read()
        return None if msg is EOF else msg  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    # HOST:PORT, or several separated by commas: coordinators sharing one database, any
    # of which the agent may use (coordinators)
    coordinator: str
    coordinator_order: str = "random"  # or "listed": start at the first address
    region: str
    agent_id: str
    state_dir: Path
    country: str = ""
    asn: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    concurrency: int = 8
    limits: Limits = field(default_factory=Limits)
    token: str | None = None
    ca_file: Path | None = None
    tls: bool = False  # TLS with the system's CA certificates (implied by ca_file)
    # (certificate chain, private key) for a coordinator with mutual TLS: the
    # certificate's subject CN is this agent's id.
    client_cert: tuple[Path, Path] | None = None
    outbox_max: int = 10_000
    # The most bytes probes may move in any hour (agent/budget.py); 0: no budget.
    max_bytes_per_hour: int = 0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    heartbeat_interval_s: float = 5.0  # until the coordinator's Welcome says otherwise
    drain_s: float = 10.0  # on SIGTERM, how long running tasks may take to finish

    @property
    def coordinators(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.coordinator.split(",") if a.strip())


# The coordinator's Welcome sets the heartbeat interval; outside these bounds (or not a
# number) the agent keeps its own rather than beating in a tight loop or going silent.
HEARTBEAT_BOUNDS_S = (0.5, 300.0)


def heartbeat_interval(offered: float, default: float) -> float:
    low, high = HEARTBEAT_BOUNDS_S
    return offered if math.isfinite(offered) and low <= offered <= high else default


# Trailing metadata of a refused stream: how long the coordinator asks the agent to wait
# before the next attempt, in milliseconds (coordinator/admission.py sets it when it sheds
# new streams while overloaded). Bounded here: a hint is never a reason to go silent for long.
RETRY_HINT_MAX_S = 120.0


def retry_hint(exc: grpc.aio.AioRpcError) -> float | None:
    """The wait in seconds that a failed call's trailers ask for, or None (absent,
    malformed or out of range: the backoff alone decides)."""
    try:
        trailers: Any = exc.trailing_metadata() or ()
    except Exception:  # a call that failed before it had trailers
        return None
    for item in trailers:
        key, value = item[0], item[1]
        if key == RETRY_HINT_KEY and isinstance(value, str) and value.isdigit() and len(value) <= 9:
            return min(int(value) / 1000.0, RETRY_HINT_MAX_S)
    return None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base * 2^attempt)."""
    d = min(cap, base * (2 ** min(attempt, 30)))
    return rng.uniform(d / 2, d)


class Agent:
    """The agent: its outbox, its runner and its session with the coordinator.

    ``clock``, ``connect`` and ``probe`` are seams for tests (a fake clock, a fake stream
    that plays the coordinator, a fake probe); the defaults are the real things.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock | None = None,
        connect: Connector | None = None,
        probe: ProbeFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._connect = connect or self._grpc_connect
        self.outbox = Outbox(config.state_dir / "outbox", max_items=config.outbox_max)
        self._new_results: asyncio.Queue[str] = asyncio.Queue()
        self.runner = Runner(
            agent_id=config.agent_id,
            limits=config.limits,
            outbox=self.outbox,
            concurrency=config.concurrency,
            on_result=self._new_results.put_nowait,
            clock=self.clock,
            byte_budget=HourlyBytes(config.max_bytes_per_hour) if config.max_bytes_per_hour > 0 else None,
            probe=probe if probe is not None else run_probe,
        )
        self._shutdown = asyncio.Event()  # SIGTERM: stop taking tasks, drain
        self._disconnect = asyncio.Event()  # then close the session
        self._progress = asyncio.Event()  # an ack arrived or the session ended
        self.connected = asyncio.Event()
        self.sessions = 0
        self.rng = rng or random.Random()
        # The coordinator this attempt dials: a random one of the list to begin with (so a
        # fleet's agents spread over its coordinators) or the first ("listed"), the next one
        # after each failure.
        addresses = config.coordinators or (config.coordinator,)
        self._addresses = addresses
        self._index = 0 if config.coordinator_order == "listed" else self.rng.randrange(len(addresses))
        self.current = addresses[self._index]

    def shutdown(self) -> None:
        """Drain: take no new tasks, let running ones finish (up to ``drain_s``), send
        their results and wait briefly for the acks, then disconnect. Whatever is not
        acked by then stays in the outbox for the next start."""
        self._shutdown.set()

    async def run(self) -> None:
        held = await asyncio.to_thread(self.outbox.load)
        log.info(
            "agent_started", agent_id=self.config.agent_id, region=self.config.region,
            coordinators=list(self._addresses), outbox=held, concurrency=self.config.concurrency,
        )
        runner_stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.runner.run(runner_stop))
            group.create_task(self._connect_loop())
            await self._shutdown.wait()
            log.info("agent_draining", running=self.runner.running, outbox=len(self.outbox))
            self.runner.accepting = False
            await self.runner.wait_idle(self.config.drain_s)
            runner_stop.set()
            await self._wait_outbox_empty(self.config.drain_s)
            self._disconnect.set()
        log.info("agent_stopped", outbox=len(self.outbox))

    async def _connect_loop(self) -> None:
        """Keep a session up. When one ends, or an attempt fails, the next attempt dials the
        next coordinator of the list; the jittered backoff grows once every coordinator
        of the list has failed in a row (with one coordinator: after every failure), and
        starts over after a session that lasted HEALTHY_SESSION_S. A refusal that carries a
        retry hint (``retry_hint``) waits at least that long."""
        attempt = 0
        n = len(self._addresses)
        while not self._disconnect.is_set():
            started = self.clock.monotonic()
            reason = "closed"
            hint = None
            try:
                await self._session()
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
                hint = retry_hint(exc)
                if exc.code() in (
                    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.FAILED_PRECONDITION,
                ):
                    log.error("coordinator_refused_agent", reason=reason)
            except Exception as exc:  # any end of a session is a reason to reconnect
                reason = f"{type(exc).__name__}: {exc}"
            self.connected.clear()
            self._progress.set()
            if self._disconnect.is_set():
                break
            if self.clock.monotonic() - started > HEALTHY_SESSION_S:
                attempt = 0
            delay = backoff_delay(attempt // n, self.config.backoff_base_s, self.config.backoff_cap_s, self.rng)
            if hint is not None:  # a coordinator shedding a storm says when to come back
                delay = max(delay, hint)
            attempt += 1
            gone = self.current
            self._index = (self._index + 1) % n
            self.current = self._addresses[self._index]
            log.warning(
                "coordinator_unreachable", coordinator=gone, reason=reason, retry_in_s=round(delay, 2),
                next=self.current,
            )  # fmt: skip
            await wait_event(self.clock, self._disconnect, delay)

    async def _wait_outbox_empty(self, limit_s: float) -> None:
        """Give the session up to ``limit_s`` to have the outbox acked; stop waiting early
        when the session ends (nothing would ack then)."""
        with contextlib.suppress(TimeoutError):
            async with self.clock.timeout(limit_s):
                while len(self.outbox) and self.connected.is_set():
                    self._progress.clear()
                    await self._progress.wait()

    @contextlib.asynccontextmanager
    async def _grpc_connect(self) -> AsyncIterator[Stream]:
        metadata = (("authorization", f"Bearer {self.config.token}"),) if self.config.token else ()
        async with self._channel() as channel:
            stub = pb_grpc.AgentServiceStub(channel)
            call: Any = stub.Connect(metadata=metadata)
            try:
                yield _GrpcStream(call)
            finally:
                call.cancel()

    def _channel(self) -> grpc.aio.Channel:
        options = [
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ]
        if self.config.ca_file is not None or self.config.tls:
            roots = self.config.ca_file.read_bytes() if self.config.ca_file else None
            pair = self.config.client_cert
            creds = grpc.ssl_channel_credentials(
                root_certificates=roots,
                private_key=pair[1].read_bytes() if pair else None,
                certificate_chain=pair[0].read_bytes() if pair else None,
            )
            return grpc.aio.secure_channel(self.current, creds, options=options)
        return grpc.aio.insecure_channel(self.current, options=options)

    async def _session(self) -> None:
        cfg = self.config
        async with self._connect() as call:
            write_lock = asyncio.Lock()

            async def send(msg: pb.AgentMessage) -> None:
                async with write_lock:
                    await call.write(msg)

            await send(
                pb.AgentMessage(
                    hello=pb.Hello(
                        agent_id=cfg.agent_id, region=cfg.region, country=cfg.country, asn=cfg.asn,
                        labels=cfg.labels, version=__version__, kinds=list(KINDS),
                        concurrency=cfg.concurrency, held_task_ids=self.runner.held_task_ids(),
                        result_format=pb.RESULT_FORMAT_TYPED, assign_batches=True,
                    )
                )
            )
            welcome = await call.read()
            if welcome is None or not welcome.HasField("welcome"):
                raise ConnectionError("coordinator closed the stream before welcome")
            interval = heartbeat_interval(welcome.welcome.heartbeat_interval_s, cfg.heartbeat_interval_s)
            self.sessions += 1
            self.connected.set()
            log.info("connected", coordinator=self.current, session_id=welcome.welcome.session_id,
                     outbox=len(self.outbox))  # fmt: skip
            # Every unacked result goes again: the coordinator deduplicates by task id.
            while not self._new_results.empty():
                self._new_results.get_nowait()
            workers = [
                asyncio.create_task(self._read(call)),
                asyncio.create_task(self._send_results(send)),
                asyncio.create_task(self._heartbeat(send, interval)),
            ]
            stop_wait = asyncio.create_task(self._disconnect.wait())
            try:
                done, _ = await asyncio.wait({*workers, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (*workers, stop_wait):
                    t.cancel()
                await asyncio.gather(*workers, stop_wait, return_exceptions=True)
            for t in done:
                if t is not stop_wait and not t.cancelled() and (exc := t.exception()) is not None:
                    raise exc

    async def _read(self, call: Stream) -> None:
        while True:
            msg = await call.read()
            if msg is None:
                raise ConnectionError("coordinator ended the stream")
            which = msg.WhichOneof("body")
            if which == "assign":
                self._take(msg.assign)
            elif which == "assign_batch":
                for task in msg.assign_batch.tasks[:MAX_ASSIGN_BATCH]:  # the contract's bound
                    self._take(task)
            elif which == "cancel":
                self.runner.cancel(msg.cancel.task_id)
            elif which == "ack":
                await self.outbox.ack(list(msg.ack.task_ids))
                self._progress.set()

    def _take(self, message: pb.TaskAssignment) -> None:
        assignment = Assignment.from_pb(message)
        if self.runner.submit(assignment):
            log.info(
                "task_accepted", task_id=assignment.task_id, job_id=assignment.job_id,
                kind=assignment.kind,
            )

    async def _send_results(self, send: Any) -> None:
        """Send every unacked result now, then each new one as it is stored. A result
        still unacked ``RESEND_AFTER_S`` after it was sent goes again (the coordinator
        may have failed to store it); the coordinator deduplicates by task id."""
        sent_at: dict[str, float] = {}
        await self._send_ids(send, self.outbox.task_ids(), sent_at)
        checked = self.clock.monotonic()
        while True:
            ids: list[str] = []
            with contextlib.suppress(TimeoutError):
                async with self.clock.timeout(RESEND_AFTER_S / 2):
                    ids.append(await self._new_results.get())
            while not self._new_results.empty() and len(ids) < RESULT_BATCH:
                ids.append(self._new_results.get_nowait())
            await self._send_ids(send, ids, sent_at)
            now = self.clock.monotonic()
            if now - checked >= RESEND_AFTER_S / 2:
                checked = now
                for tid in [t for t in sent_at if t not in self.outbox]:
                    del sent_at[tid]  # acked
                stale = [t for t, at in sent_at.items() if now - at >= RESEND_AFTER_S]
                await self._send_ids(send, stale, sent_at)

    async def _send_ids(self, send: Any, ids: list[str], sent_at: dict[str, float]) -> None:
        for i in range(0, len(ids), RESULT_BATCH):
            chunk = [(t, blob) for t in ids[i : i + RESULT_BATCH] if (blob := self.outbox.get(t)) is not None]
            if chunk:
                await send(self._batch([blob for _, blob in chunk]))
                now = self.clock.monotonic()
                sent_at.update((t, now) for t, _ in chunk)

    @staticmethod
    def _batch(blobs: list[bytes]) -> pb.AgentMessage:
        batch = pb.ResultBatch()
        for blob in blobs:
            batch.results.add().MergeFromString(blob)
        return pb.AgentMessage(results=batch)

    async def _heartbeat(self, send: Any, interval: float) -> None:
        while True:
            await self.clock.sleep(interval)
            await send(
                pb.AgentMessage(
                    heartbeat=pb.Heartbeat(
                        sent_at=self.clock.time(), running=self.runner.running, outbox=len(self.outbox),
                        outbox_dropped=self.outbox.dropped,
                    )
                )
            )
