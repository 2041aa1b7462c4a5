"""Server assembly: the gRPC server (AgentService, JobService, health, reflection),
the /metrics HTTP endpoint, and the scheduler and analysis loops, with one lifecycle.

``CoordinatorServer.run()`` serves until ``shutdown()`` (SIGTERM/SIGINT in the CLI):
health turns NOT_SERVING, new jobs are refused, in-flight ingestion drains, writes are
flushed, then the listeners close.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.defaults import DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN
from common.hostport import split_host_port
from coordinator import convert
from coordinator.access import Access
from coordinator.admin import AdminServicer
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.auth import is_loopback_host
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.fleet import Fleet
from coordinator.guard import MAX_MESSAGE_BYTES, Guard
from coordinator.metrics import build_registry
from coordinator.model import JobSpec
from coordinator.relay import FleetAdminServicer, FleetAgentServicer, FleetJobServicer, Upstreams
from coordinator.services import AgentServicer, JobServicer
from coordinator.startup import (
    StartupError,
    advertised,
    check_bindable,
    read_tls_pair,
    serve_metrics,
)
from coordinator.store import SharedStore, StoreError, open_store
from coordinator.tail_watch import TailStore
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.coordinator")

# gRPC core's queue of new streams waiting for a handler (see the server options).
MAX_PENDING_STREAMS = 50_000
# How often the store is maintained (PostgreSQL: the coming days' partitions) and, with
# --retain, pruned.
PRUNE_EVERY_S = 600.0
# The event loop's lag is measured by a timer this often (the metric).
LAG_PROBE_S = 0.1
# The share of the event loop's time the analysis may take (``_every``, "evaluate").
EVALUATE_SHARE = 0.25
# The longest a call waits for a starting coordinator to read its state back; then it is
# refused with UNAVAILABLE (which the agent and the CLI retry).
LOAD_WAIT_S = 60.0
# A scheduling tick later than this counts as time the coordinator stalled (``_every``).
STALL_SLACK_S = 0.05
# How often a fleet member reads the credentials again (enrolments and tokens another
# member made or revoked; an unknown token also makes it read them, at most once a second).
CREDENTIALS_EVERY_S = 10.0


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    db: str = "vantage.db"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # --client-ca: mutual TLS. Every client presents a certificate this CA signed; an
    # agent's names its id (coordinator/access.py).
    client_ca: Path | None = None
    insecure: bool = False
    agent_token: str | None = None
    api_token: str | None = None
    core: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    # the canary job (coordinator/canary.py), None without --canary
    canary: JobSpec | None = None
    # --retain: measurements, finished tasks and finished jobs older than this many
    # seconds are dropped (every PRUNE_EVERY_S); 0 keeps everything.
    retain_s: float = 0.0
    # --advertise (a fleet on PostgreSQL): where the other coordinators reach this one;
    # None: the --listen host (this host's name when that is a wildcard) and bound port.
    advertise: str | None = None


class CoordinatorServer:
    def __init__(self, config: ServerConfig, *, restarted: bool = False) -> None:
        self.config = config
        # Restarted in the same process after losing the fleet's lease: it must not take the
        # lease back from a holder at its own address (that one is alive: it took it).
        self.restarted = restarted
        try:
            self.store = open_store(config.db)
        except StoreError as exc:
            raise StartupError(str(exc)) from exc
        self.analyzer = Analyzer(config.analysis)
        self.core = Coordinator(self.store, self.analyzer, config.core)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.port = 0
        self.metrics_port = 0
        self._stop = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        # Set once the stored state is read back (``_load_then_serve``).
        self.loaded = asyncio.Event()
        self._runner: web.AppRunner | None = None
        # A fleet (a database shared by several coordinators): the lease decides which
        # one schedules (coordinator/fleet.py); the others relay to it.
        self.fleet: Fleet | None = None
        self.upstreams: Upstreams | None = None
        self._leader_loops: list[asyncio.Task[None]] = []
        # Why this coordinator stopped scheduling (the lease was taken): the CLI then
        # starts it again, as a relay.
        self.lost_lease: str | None = None
        self.access = Access(
            config.agent_token, config.api_token,
            reload=self.store.load_credentials if self.store.shared else None,
        )  # fmt: skip

    async def start(self) -> None:
        cfg = self.config
        host, _ = split_host_port(cfg.listen)
        tls = cfg.tls_cert is not None and cfg.tls_key is not None
        if not is_loopback_host(host) and not tls and not cfg.insecure:
            raise StartupError(
                f"--listen {cfg.listen}: refusing to listen on a non-loopback address without "
                "TLS; give --tls-cert and --tls-key, or --insecure for a lab"
            )
        shown = self.store.safe_url  # never the password
        client_ca = None
        if cfg.client_ca is not None:
            if self.store.shared:
                raise StartupError(
                    "--client-ca: not in a fleet yet (a relay cannot vouch for an agent's certificate "
                    "to the coordinator that schedules); give the agents enrolled tokens instead"
                )
            try:
                client_ca = cfg.client_ca.read_bytes()
            except OSError as exc:
                raise StartupError(f"--client-ca: cannot read {cfg.client_ca}: {exc.strerror}") from exc
            if b"-----BEGIN CERTIFICATE-----" not in client_ca:
                raise StartupError(f"--client-ca: {cfg.client_ca} holds no PEM certificate")
        try:
            await self.store.open()
        except Exception as exc:  # any engine's error: the server refused, the schema is newer
            raise StartupError(f"--db {shown}: {' '.join(str(exc).split())}") from exc  # one line
        try:
            if self.store.shared:
                await self.access.refresh()
            else:
                self.access.load(*await self.store.load_credentials())
        except Exception as exc:  # any engine's error
            await self.store.close()
            raise StartupError(f"--db {shown}: cannot read the credentials: {exc}") from exc
        server = grpc.aio.server(
            # Until the state is read back every call of the Vantage services waits (after
            # its caller is authenticated): see ``_load_then_serve``.
            interceptors=[Guard(self.access, ready=self.loaded, wait_s=LOAD_WAIT_S)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_ping_strikes", 0),
                # Streams the server has taken but no handler has begun yet. gRPC's
                # defaults (1,000, and past it a random share refused, none past 3,000)
                # failed a quarter of the attempts of 10,000 agents dialling at once; the
                # queue drains in seconds, so it may hold a whole network.
                ("grpc.server.max_pending_requests", MAX_PENDING_STREAMS),
                ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_STREAMS),
            ]
        )
        access = self.access
        pair = read_tls_pair(cfg.tls_cert, cfg.tls_key) if tls else None
        agents: AgentServicer
        jobs: JobServicer
        admin: AdminServicer
        if self.store.shared:
            roots = grpc.ssl_channel_credentials(root_certificates=pair[1]) if pair is not None else None
            self.upstreams = Upstreams(roots, MAX_MESSAGE_BYTES)
            shared = cast(SharedStore, self.store)
            self.fleet = Fleet(shared.lease(), address=cfg.advertise or "", on_elected=self._take_over,
                               on_lost=self._lost)  # fmt: skip
            agents = FleetAgentServicer(self.core, access, self.fleet, self.upstreams)
            jobs = FleetJobServicer(self.core, access, self.fleet, self.upstreams, cast(TailStore, self.store))
            admin = FleetAdminServicer(self.core, access, self.fleet, self.upstreams)
        else:
            agents, jobs = AgentServicer(self.core, access), JobServicer(self.core, access)
            admin = AdminServicer(self.core, access)
        pb_grpc.add_AgentServiceServicer_to_server(agents, server)
        pb_grpc.add_JobServiceServicer_to_server(jobs, server)
        pb_grpc.add_AdminServiceServicer_to_server(admin, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (
            pb.DESCRIPTOR.services_by_name["AgentService"].full_name,
            pb.DESCRIPTOR.services_by_name["JobService"].full_name,
            pb.DESCRIPTOR.services_by_name["AdminService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        check_bindable(cfg.listen, "--listen")
        try:
            if pair is not None:
                creds = grpc.ssl_server_credentials(
                    [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
                )
                self.port = server.add_secure_port(cfg.listen, creds)
            else:
                self.port = server.add_insecure_port(cfg.listen)
        except RuntimeError as exc:  # grpc: "Failed to bind to address ..."
            raise StartupError(f"--listen {cfg.listen}: could not bind ({exc})") from exc
        if self.port == 0:
            raise StartupError(f"--listen {cfg.listen}: could not bind (in use, or not an address of this host)")
        if self.fleet is not None:
            if not cfg.advertise:
                self.fleet.address = advertised(cfg.listen, self.port)
            try:
                await self.fleet.first_election(predecessor=not self.restarted)
            except Exception as exc:  # the state could not be read back
                await self.fleet.close()
                await self.store.close()
                raise StartupError(f"--db {shown}: cannot read the stored state: {exc}") from exc
        for name in ("", *names[:3]):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()
        self._server = server
        if not self.store.shared:
            await self._load_then_serve(shown)
        else:  # a fleet: the calls wait for a scheduler instead (coordinator/relay.py)
            self.loaded.set()
        for name in ("", *names[:3]):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

        registry = build_registry(self.core, self.fleet, agents)
        try:
            runner, self.metrics_port = await serve_metrics(registry, cfg.metrics_listen)
        except StartupError:
            await server.stop(grace=None)
            self._server = None
            raise
        self._runner = runner
        if cfg.agent_token is not None and not is_loopback_host(host):
            log.warning(
                "shared_agent_token_off_loopback", listen=cfg.listen,
                advice="any holder of VANTAGE_AGENT_TOKEN may connect as any agent that is not enrolled, "
                "in any region it names; enrol each agent (vantage agents add) and drop the shared token",
            )  # fmt: skip
        mhost, _ = split_host_port(cfg.metrics_listen)
        log.info(
            "coordinator_started", listen=f"{host}:{self.port}", tls=tls, mutual_tls=client_ca is not None,
            metrics=f"http://{mhost}:{self.metrics_port}/metrics", db=shown, engine=self.store.engine,
            fleet=None if self.fleet is None else self.fleet.address,
        )

    async def _load_then_serve(self, shown: str) -> None:
        """Read the state back while already listening. Reading back a large window (the
        200,000 stored results of 10,000 agents take 10 s or more) before the port opened
        had agents that dialled a restarting coordinator refused, each backing off further,
        so they came back long after it could serve them. Now the port opens first: a call
        waits (``Guard``, at most LOAD_WAIT_S) until the state is back, the health service
        says NOT_SERVING meanwhile, and nothing is scheduled, judged or exported before it
        is (the metrics endpoint opens after)."""
        try:
            await self._load()
        except Exception as exc:  # any engine's error: the file or database is unusable
            assert self._server is not None
            await self._server.stop(grace=None)
            self._server = None
            await self.store.close()
            raise StartupError(f"--db {shown}: cannot read the stored state: {exc}") from exc
        self.loaded.set()

    async def _load(self) -> None:
        """Read the state back (a start, or a takeover in a fleet), judge the refilled
        window at once (verdicts stand from the first request on), start the canaries."""
        if self.store.shared:  # a takeover: what the last holder made or revoked
            await self.access.refresh()
        await self.core.load(convert.task_result_from_bytes)
        self.analyzer.evaluate(time.time())
        await self.core.start_canaries(self.config.canary)

    async def _take_over(self, epoch: int) -> None:
        """This coordinator took the fleet's lease: fence its writes with it, read the
        state back, and schedule."""
        assert self.fleet is not None
        cast(SharedStore, self.store).fence(self.fleet.me, epoch)
        await self._load()
        self._leader_loops = self.start_loops()

    def _lost(self, reason: str) -> None:
        self.lost_lease = reason
        self.shutdown()

    async def _every(self, interval_s: float, step: str) -> None:
        """Run ``step`` every ``interval_s`` until shutdown. A bug in one step must not
        stop it for good: it is logged loudly and the loop goes on."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._stop.is_set():
            wait = interval_s
            try:
                if step == "tick":
                    # A late tick means the loop was too busy to read any stream: that
                    # time is not an agent's silence (Coordinator.note_stall).
                    self.core.note_stall(max(0.0, loop.time() - due - STALL_SLACK_S))
                    if self.fleet is None or self.fleet.may_schedule():
                        self.core.run_due(time.time())
                elif step == "evaluate":
                    began = time.perf_counter()
                    self.analyzer.evaluate(time.time())
                    # A costly evaluation (a window of hundreds of thousands of results)
                    # is spaced so it takes at most EVALUATE_SHARE of the loop's time.
                    wait = max(interval_s, (time.perf_counter() - began) / EVALUATE_SHARE)
                elif step == "credentials":
                    await self.access.refresh()
                else:
                    await self.store.maintain(time.time())
                    if self.config.retain_s > 0:
                        await self.core.prune(self.config.retain_s)
            except Exception:
                log.exception(f"{step}_failed")
            due = loop.time() + wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    async def run(self) -> None:
        """Start, serve until ``shutdown()``, then drain and close. Scheduling, the
        analysis and pruning each run on their own clock; in a fleet only on the
        coordinator that holds the lease. A shutdown while starting ends it without
        serving."""
        starting = asyncio.create_task(self.start())
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            if self._server is not None:  # it listened already (reading its state back)
                await self._server.stop(grace=None)
            await self.store.close()
            log.info("coordinator_stopped", open_jobs=0, reason="shut down before it served")
            return
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        starting.result()  # a StartupError goes to the caller
        if self.fleet is not None:
            loops = [
                asyncio.create_task(self.fleet.run(self._stop), name="fleet"),
                asyncio.create_task(self._every(CREDENTIALS_EVERY_S, "credentials")),
            ]
        else:
            loops = self.start_loops()
        loops.append(asyncio.create_task(self._watch_lag(), name="lag"))
        try:
            await self._stop.wait()
        finally:
            await self._drain(loops)

    async def _watch_lag(self) -> None:
        """Measure how late the event loop runs a timer (every ``LAG_PROBE_S``): how long
        every stream's next message waits to be read. Exported as a metric."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            expected = loop.time() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            self.core.lag = max(0.0, loop.time() - expected)

    def start_loops(self) -> list[asyncio.Task[None]]:
        cfg = self.config.core
        loops = [
            asyncio.create_task(self._every(cfg.tick_s, "tick")),
            asyncio.create_task(self._every(cfg.evaluate_every_s, "evaluate")),
        ]
        loops.append(asyncio.create_task(self._every(PRUNE_EVERY_S, "maintain")))
        return loops

    async def _drain(self, loops: list[asyncio.Task[None]]) -> None:
        log.info("coordinator_draining")
        self.core.accepting = False
        await self.health.enter_graceful_shutdown()
        self._stop.set()
        await asyncio.gather(*loops)
        await asyncio.gather(*self._leader_loops)
        if self._server is not None:
            await self._server.stop(grace=5.0)
        with contextlib.suppress(Exception):  # refused by the fence once the lease was taken
            await self.core.flush()
        if self.fleet is not None:
            await self.fleet.close()  # after the last commit: the next holder reads it all
        if self.upstreams is not None:
            await self.upstreams.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.close()
        log.info("coordinator_stopped", open_jobs=len(self.core.book.open_jobs))

    def shutdown(self) -> None:
        self._stop.set()
