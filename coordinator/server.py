"""Server assembly: the gRPC server (AgentService, JobService, health, reflection),
the /metrics HTTP endpoint, and the scheduler and analysis loops, with one lifecycle.

``CoordinatorServer.run()`` serves until ``shutdown()`` (SIGTERM/SIGINT in the CLI):
health turns NOT_SERVING, new jobs are refused, in-flight ingestion drains, writes are
flushed, then the listeners close.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.convert import (
    agent_from_hello,
    job_to_pb,
    spec_from_pb,
    task_result_from_pb,
)
from coordinator.core import Coordinator, CoordinatorConfig, Session
from coordinator.metrics import build_registry
from coordinator.model import JobSpec
from coordinator.store import SQLiteStore
from coordinator.validation import COUNTRY_RE, REGION_RE, InvalidJob
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.coordinator")
EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # end-of-stream sentinel (missing from the stubs)

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
JOB_ID_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_LIST = 1000
HELLO_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    metrics_listen: str = "127.0.0.1:9477"
    db: str = "vantage.db"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False
    agent_token: str | None = None
    api_token: str | None = None
    core: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    # the canary job (coordinator/canary.py), None without --canary
    canary: JobSpec | None = None


class StartupError(Exception):
    """The coordinator could not start; the message names the setting to fix."""


def split_host_port(address: str) -> tuple[str, int]:
    """'127.0.0.1:50051', '[::1]:50051' or 'host:0' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def peer_is_loopback(peer: str) -> bool:
    """grpc peers look like 'ipv4:127.0.0.1:5000', 'ipv6:%5B::1%5D:5000' (percent-encoded
    brackets) or 'unix:...'."""
    peer = urllib.parse.unquote(peer)
    if peer.startswith("unix:"):
        return True
    if peer.startswith("ipv4:"):
        return is_loopback_host(peer[5:].rsplit(":", 1)[0])
    if peer.startswith("ipv6:"):
        host = peer[5:].rsplit(":", 1)[0].strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_loopback
        return ip.is_loopback
    return False


class TokenAuth:
    """Bearer tokens in the ``authorization`` metadata, compared in constant time.

    With no token configured for a role, only loopback peers are served for it."""

    def __init__(self, agent_token: str | None, api_token: str | None) -> None:
        self.tokens = {"agent": agent_token, "api": api_token}

    async def check(self, context: grpc.aio.ServicerContext[Any, Any], role: str) -> None:
        expected = self.tokens[role]
        if expected is None:
            if not peer_is_loopback(context.peer()):
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"no {role} token is configured on the coordinator, so only loopback "
                    f"clients are served (set VANTAGE_{role.upper()}_TOKEN on both sides)",
                )
            return
        given = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                given = value.removeprefix("Bearer ").strip()
        if not given:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing {role} token")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"wrong {role} token")


class AgentServicer(pb_grpc.AgentServiceServicer):  # type: ignore[misc]
    def __init__(self, core: Coordinator, auth: TokenAuth) -> None:
        self.core = core
        self.auth = auth

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        await self.auth.check(context, "agent")
        try:
            first = await asyncio.wait_for(context.read(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no hello within 10s")
        if first is EOF or not first.HasField("hello"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello: the first message must be a hello")
        hello = first.hello
        if not AGENT_ID_RE.match(hello.agent_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello.agent_id: missing or malformed")
        if not REGION_RE.match(hello.region):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello.region: missing or malformed")
        if hello.country and not COUNTRY_RE.match(hello.country.upper()):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "hello.country: must be empty or a two-letter country code",
            )
        info = agent_from_hello(hello)
        session = self.core.agent_connected(info, context.peer(), hello.held_task_ids)
        structlog.contextvars.bind_contextvars(agent_id=info.agent_id)
        reader: asyncio.Task[None] | None = None
        reason = "session closed by coordinator"
        try:
            await context.write(
                pb.CoordinatorMessage(
                    welcome=pb.Welcome(
                        session_id=session.session_id,
                        heartbeat_interval_s=self.core.config.heartbeat_interval_s,
                    )
                )
            )
            reader = asyncio.create_task(self._read(session, context))
            # The writer loop waits on one queue; a closed session or a finished reader
            # puts None in it (cheaper than waiting on several futures per message).
            reader.add_done_callback(lambda _: session.outgoing.put_nowait(None))
            while True:
                msg = await session.outgoing.get()
                if msg is None:
                    break
                await context.write(msg)
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
        while True:
            msg = await context.read()
            if msg is EOF:
                return
            self.core.heartbeat(session, session.running, session.outbox)
            which = msg.WhichOneof("body")
            if which == "heartbeat":
                self.core.heartbeat(session, msg.heartbeat.running, msg.heartbeat.outbox)
            elif which == "results":
                results = [task_result_from_pb(r) for r in msg.results.results]
                outcome = await self.core.ingest(session, results)
                if outcome.acked:
                    session.send(pb.CoordinatorMessage(ack=pb.Ack(task_ids=list(outcome.acked))))


class JobServicer(pb_grpc.JobServiceServicer):  # type: ignore[misc]
    def __init__(self, core: Coordinator, auth: TokenAuth) -> None:
        self.core = core
        self.auth = auth

    async def _job(self, job_id: str, context: Any) -> Any:
        if not job_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id: is required")
        if not JOB_ID_RE.match(job_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"job_id: {job_id[:40]!r} is not a job id (16 hex digits)"
            )
        job = self.core.jobs.get(job_id)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {job_id}")
        return job

    async def SubmitJob(self, request: pb.SubmitJobRequest, context: Any) -> pb.Job:
        await self.auth.check(context, "api")
        if not request.HasField("spec"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec: is required")
        try:
            job = await self.core.submit_job(spec_from_pb(request.spec))
        except InvalidJob as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RuntimeError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return job_to_pb(job)

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.Job:
        await self.auth.check(context, "api")
        return job_to_pb(await self._job(request.job_id, context))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Any) -> pb.ListJobsResponse:
        await self.auth.check(context, "api")
        if request.limit > MAX_LIST:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit: at most {MAX_LIST}")
        limit = request.limit or 100
        jobs = sorted(self.core.jobs.values(), key=lambda j: j.created_at, reverse=True)[:limit]
        return pb.ListJobsResponse(jobs=[job_to_pb(j) for j in jobs])

    async def CancelJob(self, request: pb.CancelJobRequest, context: Any) -> pb.Job:
        await self.auth.check(context, "api")
        job = await self._job(request.job_id, context)
        if job.state.finished:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"job_id: job {job.job_id} is already {job.state}"
            )
        return job_to_pb(self.core.cancel_job(job.job_id))

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Any
    ) -> AsyncIterator[pb.WatchJobEvent]:
        await self.auth.check(context, "api")
        job = await self._job(request.job_id, context)
        queue = self.core.watch(job.job_id) if request.follow else None
        try:
            sent: set[str] = set()
            stored = await asyncio.to_thread(self.core.store.results_for_job, job.job_id)
            for raw, _region in stored:
                result = pb.TaskResult.FromString(raw)
                sent.add(result.task_id)
                yield pb.WatchJobEvent(result=result)
            if queue is None or job.state.finished:
                yield pb.WatchJobEvent(job_end=job_to_pb(job))
                return
            while True:
                event = await queue.get()
                if event.overflow:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "watch fell too far behind; read the stored results with follow=false",
                    )
                if event.result is not None and event.result.task_id not in sent:
                    sent.add(event.result.task_id)
                    yield pb.WatchJobEvent(result=pb.TaskResult.FromString(event.result.raw))
                elif event.failed_task is not None:
                    t = event.failed_task
                    yield pb.WatchJobEvent(
                        task_failed=pb.TaskFailure(task_id=t.task_id, agent_id=t.agent_id, reason=t.reason)
                    )
                elif event.job_end is not None:
                    yield pb.WatchJobEvent(job_end=job_to_pb(event.job_end))
                    return
        finally:
            if queue is not None and queue in self.core.watchers.get(job.job_id, ()):
                self.core.unwatch(job.job_id, queue)

    async def ListAgents(self, request: pb.ListAgentsRequest, context: Any) -> pb.ListAgentsResponse:
        await self.auth.check(context, "api")
        out = []
        health = {a.agent_id: a for a in self.core.analyzer.snapshot.agents}
        for agent_id, (info, last_seen) in sorted(self.core.known_agents.items()):
            session = self.core.sessions.get(agent_id)
            seen = health.get(agent_id)
            out.append(
                pb.AgentInfo(
                    agent_id=info.agent_id, region=info.region, country=info.country, asn=info.asn,
                    labels=dict(info.labels), version=info.version, kinds=list(info.kinds),
                    connected=session is not None,
                    first_seen=self.core.first_seen.get(agent_id, 0.0),
                    last_seen=session.last_seen if session else last_seen,
                    running=session.running if session else 0,
                    peer=session.peer if session else "",
                    health=seen.state if seen else "",
                    health_reason=seen.reason if seen else "",
                    errors=dict(self.core.agent_error_counts.get(agent_id, {})),
                )
            )
        return pb.ListAgentsResponse(agents=out)

    async def GetVerdicts(self, request: pb.GetVerdictsRequest, context: Any) -> pb.GetVerdictsResponse:
        await self.auth.check(context, "api")
        snap = self.core.analyzer.snapshot
        return pb.GetVerdictsResponse(
            evaluated_at=snap.evaluated_at,
            regions=[
                pb.RegionVerdict(
                    region=v.group, target=v.target, verdict=v.verdict, failure=v.failure,
                    throughput_bps=v.throughput_bps or 0.0, ratio=v.ratio or 0.0,
                    samples=v.samples, agents=v.agents, since=v.since, reason=v.reason,
                )
                for v in snap.regions
            ],
            targets=[
                pb.TargetVerdict(
                    target=t.target, outage=t.outage, since=t.since, reason=t.reason,
                    degraded=t.degraded, degraded_since=t.degraded_since,
                    degraded_reason=t.degraded_reason,
                )
                for t in snap.targets
            ],
            region_health=[
                pb.RegionHealth(
                    region=r.group, reachable=r.reachable, since=r.since, reason=r.reason,
                    agents=r.agents, healthy=r.healthy, unhealthy=r.unhealthy,
                )
                for r in snap.region_health
            ],
        )


def _read_tls_pair(cert: Path | None, key: Path | None) -> tuple[bytes, bytes]:
    """(key PEM, certificate chain PEM), checked to be a usable pair: gRPC would only say
    "Failed to bind" about a bad one."""
    import ssl

    assert cert is not None and key is not None
    try:
        pair = (key.read_bytes(), cert.read_bytes())
    except OSError as exc:
        raise StartupError(f"--tls-cert/--tls-key: cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise StartupError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its private key ({exc})"
        ) from exc
    return pair


def _check_bindable(address: str, flag: str) -> None:
    """Bind ``address`` once with a plain socket, so a port in use or an address this host
    does not have is reported with the system's reason (gRPC reports neither well). Port 0
    (any free port) is not checked."""
    import socket

    host, port = split_host_port(address)
    if port == 0:
        return
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(bare or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"{flag} {address}: {exc.strerror}") from exc
    family, _type, _proto, _canon, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise StartupError(f"{flag} {address}: {exc.strerror}") from exc


class CoordinatorServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        try:
            self.store = SQLiteStore(config.db)
        except (sqlite3.Error, OSError) as exc:
            raise StartupError(f"--db {config.db}: {exc}") from exc
        self.analyzer = Analyzer(config.analysis)
        self.core = Coordinator(self.store, self.analyzer, config.core, messages=pb)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.port = 0
        self.metrics_port = 0
        self._stop = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        cfg = self.config
        host, _ = split_host_port(cfg.listen)
        tls = cfg.tls_cert is not None and cfg.tls_key is not None
        if not is_loopback_host(host) and not tls and not cfg.insecure:
            raise StartupError(
                f"--listen {cfg.listen}: refusing to listen on a non-loopback address without "
                "TLS; give --tls-cert and --tls-key, or --insecure for a lab"
            )
        try:
            await asyncio.to_thread(self.core.load)
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            raise StartupError(f"--db {cfg.db}: cannot read the stored state: {exc}") from exc
        await self.core.start_canaries(cfg.canary)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_ping_strikes", 0),
            ]
        )
        auth = TokenAuth(cfg.agent_token, cfg.api_token)
        pb_grpc.add_AgentServiceServicer_to_server(AgentServicer(self.core, auth), server)
        pb_grpc.add_JobServiceServicer_to_server(JobServicer(self.core, auth), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (
            pb.DESCRIPTOR.services_by_name["AgentService"].full_name,
            pb.DESCRIPTOR.services_by_name["JobService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        pair = _read_tls_pair(cfg.tls_cert, cfg.tls_key) if tls else None
        _check_bindable(cfg.listen, "--listen")
        try:
            if pair is not None:
                self.port = server.add_secure_port(cfg.listen, grpc.ssl_server_credentials([pair]))
            else:
                self.port = server.add_insecure_port(cfg.listen)
        except RuntimeError as exc:  # grpc: "Failed to bind to address ..."
            raise StartupError(f"--listen {cfg.listen}: could not bind ({exc})") from exc
        if self.port == 0:
            raise StartupError(f"--listen {cfg.listen}: could not bind (in use, or not an address of this host)")
        await server.start()
        self._server = server
        for name in ("", names[0], names[1]):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

        app = web.Application()
        registry = build_registry(self.core)

        async def metrics(_: web.Request) -> web.Response:
            self.analyzer.evaluate(time.time())
            return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def index(_: web.Request) -> web.Response:
            return web.Response(text="vantage coordinator: metrics at /metrics\n")

        app.router.add_get("/metrics", metrics)
        app.router.add_get("/", index)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        mhost, mport = split_host_port(cfg.metrics_listen)
        try:
            _check_bindable(cfg.metrics_listen, "--metrics-listen")
        except StartupError:
            await runner.cleanup()
            await server.stop(grace=None)
            self._server = None
            raise
        site = web.TCPSite(runner, mhost, mport)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            await server.stop(grace=None)
            self._server = None
            raise StartupError(f"--metrics-listen {cfg.metrics_listen}: {exc.strerror or exc}") from exc
        self._runner = runner
        self.metrics_port = runner.addresses[0][1] if runner.addresses else mport
        log.info(
            "coordinator_started", listen=f"{host}:{self.port}", tls=tls,
            metrics=f"http://{mhost}:{self.metrics_port}/metrics", db=cfg.db,
        )

    async def _tick_loop(self) -> None:
        cfg = self.config.core
        next_eval = 0.0
        while not self._stop.is_set():
            now = time.time()
            try:
                self.core.run_due(now)
                if now >= next_eval:
                    self.analyzer.evaluate(now)
                    next_eval = now + cfg.evaluate_every_s
            except Exception:
                # A bug here must not stop scheduling for good: log it loudly, go on.
                log.exception("tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), cfg.tick_s)

    async def run(self) -> None:
        """Start, serve until ``shutdown()``, then drain and close."""
        await self.start()
        tick = asyncio.create_task(self._tick_loop())
        try:
            await self._stop.wait()
        finally:
            await self._drain(tick)

    async def _drain(self, tick: asyncio.Task[None]) -> None:
        log.info("coordinator_draining")
        self.core.accepting = False
        await self.health.enter_graceful_shutdown()
        self._stop.set()
        await tick
        if self._server is not None:
            await self._server.stop(grace=5.0)
        await self.core.flush()
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.to_thread(self.store.close)
        log.info("coordinator_stopped", open_jobs=len(self.core.open_jobs))

    def shutdown(self) -> None:
        self._stop.set()
