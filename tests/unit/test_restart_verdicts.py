"""Restarts keep verdicts: a coordinator refills its analysis window from the store at
start-up and judges it before it serves, so a throttled verdict that stood before a
restart stands right after it. Scrapes never cause an evaluation."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from coordinator import convert
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import AgentInfo, Assignment, JobSpec
from coordinator.server import CoordinatorServer, ServerConfig
from coordinator.store import Store, open_store
from protos.results import probe_result_to_pb
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

TWITTER = "http://twitter.example/blob"
PEER = "ipv4:127.0.0.1:1"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def throughput_result(a: Assignment, agent_id: str, bps: float, at: float) -> pb.TaskResult:
    data = {"bytes_per_second": bps, "control": {"failure": "", "bytes_per_second": 1e6}}
    return pb.TaskResult(
        task_id=a.task_id, job_id=a.job_id, agent_id=agent_id, started_at=at - 1, finished_at=at,
        result=probe_result_to_pb(kind="throughput", target=a.target, failure="", failure_detail="",
                                  duration_s=1.0, data=data),
    )  # fmt: skip


async def measure_a_throttled_region(store: Store, start: float) -> None:
    """Four rounds, 10 s apart, ending 5 s before ``start`` + 40: two agents in ru at
    ~2% of their control, two in de at full speed, all results through the real ingest."""
    clock = Clock(start)
    core = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(), clock=clock)
    sessions = {
        a.agent_id: core.agent_connected(a, PEER, [])
        for a in (AgentInfo(agent_id=f"{r}-{i}", region=r, kinds=("throughput",)) for r in ("ru", "de") for i in (1, 2))
    }  # fmt: skip
    await core.submit_job(JobSpec(kind="throughput", targets=(TWITTER,), every_s=10, count=4))
    for rnd in range(4):
        clock.now = start + rnd * 10
        for session in sessions.values():
            core.heartbeat(session, running=0, outbox=0)
        core.run_due(clock.now)
        for agent_id, session in sessions.items():
            while not session.outgoing.empty():
                msg = session.outgoing.get_nowait()
                if isinstance(msg, Assignment):
                    bps = 20_000.0 if agent_id.startswith("ru") else 950_000.0
                    raw = throughput_result(msg, agent_id, bps, clock.now + 1)
                    outcome = await core.ingest(session, [convert.task_result_from_pb(raw)])
                    assert outcome.accepted == 1
    core.analyzer.evaluate(clock.now + 2)
    verdicts = {(v.group, v.target): v.verdict for v in core.snapshot.regions}
    assert verdicts == {("ru", TWITTER): "throttled", ("de", TWITTER): "ok"}, core.snapshot.regions
    await core.flush()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else str(tmp_path / "v.db")


async def opened(db: str) -> Store:
    store = open_store(db)
    await store.open()
    return store


async def test_a_refilled_core_gives_the_same_verdicts(db: str) -> None:
    store = await opened(db)
    now = time.time()
    await measure_a_throttled_region(store, now - 40)
    await store.close()
    store = await opened(db)
    fresh = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(), clock=lambda: now)
    assert await fresh.load(convert.task_result_from_bytes) == 16
    fresh.analyzer.evaluate(now)
    assert {(v.group, v.verdict) for v in fresh.snapshot.regions} == {("ru", "throttled"), ("de", "ok")}
    # without the refill, the same restart knows nothing
    blank = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(), clock=lambda: now)
    await blank.load()
    blank.analyzer.evaluate(now)
    assert blank.snapshot.regions == ()
    await store.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text: str = resp.read().decode()
        return text


async def test_a_restarted_server_serves_the_throttled_verdict_from_its_first_request(db: str) -> None:
    store = await opened(db)
    await measure_a_throttled_region(store, time.time() - 40)
    await store.close()
    server = CoordinatorServer(ServerConfig(listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", db=db))
    await server.start()  # no scheduling or evaluation loop runs in this test
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = await pb_grpc.JobServiceStub(channel).GetVerdicts(pb.GetVerdictsRequest(), timeout=10)
        verdicts = {(v.region, v.target): v.verdict for v in reply.regions}
        assert verdicts == {("ru", TWITTER): "throttled", ("de", TWITTER): "ok"}
        evaluated: Callable[[], float] = lambda: server.analyzer.snapshot.evaluated_at  # noqa: E731
        before = evaluated()
        text = await asyncio.to_thread(scrape, server.metrics_port)
        text += await asyncio.to_thread(scrape, server.metrics_port)
        assert 'vantage_throttled{region="ru",target="http://twitter.example/blob"} 1.0' in text
        assert evaluated() == before, "a scrape must not run an evaluation"
    finally:
        server.shutdown()
        await server._drain([])
