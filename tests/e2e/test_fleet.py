"""A fleet of three coordinators on one PostgreSQL database, as real processes, with six
agents in three regions spread over them (coordinator/fleet.py, coordinator/relay.py).

- A periodic job submitted at one coordinator and watched at another runs every round in
  every region, wherever each agent is connected.
- The coordinator that holds the lease is killed -9 mid-job: another takes over, the
  agents move by themselves, rounds go on within 15 s, and the stored rows are exactly
  rounds x agents x targets; a watch of that job at a relay goes on through the takeover
  and sees each result once.
- PostgreSQL is restarted under load: the fleet recovers by itself and nothing acked is
  lost.
- `vantage verdicts` gives the same table at every coordinator, and of a Prometheus-style
  scrape of every coordinator exactly one carries the verdict series.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from coordinator.client import VantageClient
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.harness import (
    VANTAGE,
    Network,
    Proc,
    Targets,
    _port_open,
    free_port,
    network,
    wait_for,
)
from tests.pgserver import PgServer

pytestmark = pytest.mark.e2e
# agent -> region; agent i prefers coordinator i % 3 and fails over to the others
AGENTS = {"a-0": "de", "a-1": "ru", "a-2": "us", "a-3": "de", "a-4": "ru", "a-5": "us"}


class Member:
    def __init__(self, n: Network, i: int) -> None:
        self.n, self.i = n, i
        self.port, self.metrics_port = free_port(), free_port()
        self.proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Member:
        assert self.n.db_url is not None
        self.proc = Proc(f"coordinator-{self.i}", [
            *VANTAGE, "coordinator", "--listen", self.address, "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}", "--db", self.n.db_url, "--min-interval", "1s",
            "--reassign-after", "2s", "--window", "300s",
        ], self.n.root / f"coordinator-{self.i}.log", self.n.env()).start()  # fmt: skip
        self.n.procs.append(self.proc)
        # gRPC listens a moment before /metrics does: wait for both
        wait_for(lambda: _port_open(self.port) and _port_open(self.metrics_port), 20,
                 f"coordinator {self.i} to listen")  # fmt: skip
        return self

    def client(self, token: str = "fleet-api") -> VantageClient:
        return VantageClient(self.address, token=token)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def leads(self) -> bool:
        try:
            return "vantage_fleet_leader 1.0" in self.metrics()
        except OSError:
            return False

    def follows(self) -> bool:
        """It serves /metrics as a relay (False while /metrics is down: during an in-process
        restart it is, for a moment)."""
        try:
            return "vantage_fleet_leader 0.0" in self.metrics()
        except OSError:
            return False


def job_state(members: list[Member], job_id: str) -> pb.Job | None:
    """The job as any live member answers (None while the fleet has no scheduler)."""
    for m in members:
        if m.proc is None or not m.proc.alive:
            continue
        try:
            with m.client() as c:
                return c.get(job_id)
        except Exception:
            continue
    return None


def execute(db: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(sql)


def rows(n: Network, job_id: str) -> tuple[int, int]:
    total, distinct = n.query("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM measurements WHERE job_id=?", (job_id,))[0]
    return int(total), int(distinct)


@pytest.mark.timeout(420)
@pytest.mark.timing  # rounds going on within the lease's time of a kill -9: wall-clock, by the database
def test_a_fleet_of_three_schedules_once_survives_its_leader_and_postgres_and_agrees_everywhere(
    tmp_path: Path, pg_server: PgServer, targets: Targets
) -> None:
    db = pg_server.create_db()
    target = f"127.0.0.1:{targets.http_port}"
    # tokens as in production: a relay checks them, and the holder checks them again
    tokens = {"VANTAGE_AGENT_TOKEN": "fleet-agents", "VANTAGE_API_TOKEN": "fleet-api"}
    with network(tmp_path, db_url=db, extra_env=tokens) as n:
        members = [Member(n, 0).start()]
        wait_for(members[0].leads, 20, "coordinator 0 to take the lease")
        members += [Member(n, 1).start(), Member(n, 2).start()]
        for i, (aid, region) in enumerate(AGENTS.items()):
            order = [members[(i + k) % 3].address for k in range(3)]
            n.start_agent(aid, region, "--coordinator", ",".join(order), "--coordinator-order", "listed")
        with members[1].client() as c1:
            wait_for(lambda: {a.agent_id for a in c1.agents() if a.connected} == set(AGENTS), 45,
                     "all six agents, as the fleet sees them from coordinator 1")  # fmt: skip
            peers = {a.agent_id: a.peer for a in c1.agents()}
        relayed = {aid for aid, peer in peers.items() if " via " in peer}
        assert relayed == {"a-1", "a-2", "a-4", "a-5"}, peers  # they prefer coordinators 1 and 2
        assert [m.leads() for m in members] == [True, False, False]
        # a relay answers for the holder, errors included, and checks the token itself
        with members[2].client() as c2, pytest.raises(grpc.RpcError) as bad:
            c2.submit("nope", [target])
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec.kind" in str(bad.value.details())
        with members[2].client(token="wrong") as c2, pytest.raises(grpc.RpcError) as refused:
            c2.agents()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # -- one job, submitted at 0, watched at 1, runs every round in every region --
        with members[0].client() as c0:
            job = c0.submit("tcp", [target], every_s=1.0, count=5)
        with members[1].client() as c1:
            events = list(c1.watch(job.job_id, follow=True))
        results = [e.result for e in events if e.HasField("result")]
        assert events[-1].HasField("job_end") and events[-1].job_end.state == pb.JOB_STATE_DONE
        assert len(results) == 5 * len(AGENTS) and len({r.task_id for r in results}) == len(results)
        per_agent = {aid: sum(r.agent_id == aid for r in results) for aid in AGENTS}
        assert per_agent == dict.fromkeys(AGENTS, 5), per_agent  # every round, every agent
        assert rows(n, job.job_id) == (30, 30)

        # -- kill -9 the lease holder mid-job, watched at a relay all the while --
        with members[2].client() as c2:
            job = c2.submit("tcp", [target], every_s=1.0, count=25)
        watched: list[pb.WatchJobEvent] = []
        watch_error: list[BaseException] = []

        def watch_through_the_kill() -> None:
            try:
                with members[1].client() as c1:
                    watched.extend(c1.watch(job.job_id, follow=True))
            except BaseException as exc:  # reported below
                watch_error.append(exc)

        watcher = threading.Thread(target=watch_through_the_kill, daemon=True)
        watcher.start()
        wait_for(lambda: (j := job_state(members, job.job_id)) is not None and j.rounds_done >= 4, 30,
                 "four rounds of the second job")  # fmt: skip
        at_kill = job_state(members, job.job_id)
        assert at_kill is not None and members[0].proc is not None
        members[0].proc.kill(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: (j := job_state(members, job.job_id)) is not None and j.rounds_done > at_kill.rounds_done,
                 30, "a round after the kill")  # fmt: skip
        resumed = time.monotonic() - killed
        new_leader = wait_for(lambda: next((m for m in members[1:] if m.leads()), None), 10, "a new lease holder")
        with new_leader.client() as c:
            wait_for(lambda: {a.agent_id for a in c.agents() if a.connected} == set(AGENTS), 30,
                     "every agent back, the killed coordinator's too")  # fmt: skip
        final = wait_for(lambda: (j := job_state(members, job.job_id)) is not None
                         and j.state == pb.JOB_STATE_DONE and j, 90, "the second job to finish")  # fmt: skip
        assert resumed <= 15.0, f"rounds went on {resumed:.1f} s after the kill"
        assert final.rounds_done == 25 and final.tasks_failed == 0, final
        assert rows(n, job.job_id) == (25 * len(AGENTS), 25 * len(AGENTS))
        assert final.tasks_done == 25 * len(AGENTS)
        watcher.join(30)
        assert not watcher.is_alive() and not watch_error, watch_error
        seen = [e.result.task_id for e in watched if e.HasField("result")]
        assert len(seen) == len(set(seen)) == 25 * len(AGENTS), "the watch at a relay saw each result once"
        assert watched[-1].HasField("job_end") and watched[-1].job_end.state == pb.JOB_STATE_DONE
        print(f"kill -9 of the lease holder: rounds went on after {resumed:.1f} s; "
              f"{25 * len(AGENTS)} rows for 25 rounds x {len(AGENTS)} agents")  # fmt: skip

        # -- restart PostgreSQL under load --
        with members[1].client() as c1:
            job = c1.submit("tcp", [target], every_s=1.0, count=15)
        wait_for(lambda: (j := job_state(members, job.job_id)) is not None and j.rounds_done >= 3, 30,
                 "three rounds of the third job")  # fmt: skip
        pg_server.restart("immediate")  # a crash of the database, then back
        final = wait_for(lambda: (j := job_state(members, job.job_id)) is not None
                         and j.state == pb.JOB_STATE_DONE and j, 120, "the third job to finish")  # fmt: skip
        assert final.rounds_done == 15 and final.tasks_failed == 0, final
        assert rows(n, job.job_id) == (15 * len(AGENTS), 15 * len(AGENTS))
        assert new_leader.leads(), "the holder kept its lease through the database's restart"

        # -- the same verdicts at every coordinator; verdict series at exactly one --
        members[0] = Member(n, 0).start()  # back, as a relay
        wait_for(members[0].follows, 20,
                 "the restarted coordinator to follow")  # fmt: skip
        # The table as `vantage verdicts --json` gives it at each coordinator. The three calls
        # are a second or so apart, so the evaluation time may differ (an evaluation runs
        # every second); every verdict, its evidence and since when it stands must not.
        tables: list[dict[str, object]] = []
        for _attempt in range(5):  # samples may leave the window between two of the calls
            tables = [json.loads(n.cli("verdicts", "--json", "--coordinator", m.address).stdout) for m in members]
            for t in tables:
                t.pop("evaluated_at")
            if all(t == tables[0] for t in tables):
                break
        assert all(t == tables[0] for t in tables), tables
        regions = tables[0]["regions"]
        assert isinstance(regions, list)
        assert {(v["region"], v["verdict"]) for v in regions} == {("de", "ok"), ("ru", "ok"), ("us", "ok")}
        scraped = [m.metrics() for m in members]
        assert sum("vantage_verdict_info{" in s for s in scraped) == 1, "verdict series at exactly one coordinator"
        assert sum("vantage_fleet_leader 1.0" in s for s in scraped) == 1


@pytest.mark.timeout(120)
def test_a_coordinator_that_loses_its_lease_starts_again_as_a_relay_and_leads_again_when_it_can(
    tmp_path: Path, pg_server: PgServer
) -> None:
    db = pg_server.create_db()
    with network(tmp_path, db_url=db) as n:
        m = Member(n, 0).start()
        wait_for(m.leads, 20, "the coordinator to take the lease")
        # another coordinator takes the lease (as after this one could not renew it in time)
        execute(db, "UPDATE vantage_lease SET holder = 'elsewhere', address = '127.0.0.1:9', epoch = epoch + 1, "
                "expires_at = now() + interval '1 hour'")  # fmt: skip
        assert m.proc is not None
        wait_for(lambda: "coordinator_restarting" in m.proc.log(), 20, "it to notice and start again")  # type: ignore[union-attr]
        wait_for(m.follows, 20, "it to serve again, as a relay")
        assert m.proc.alive
        execute(db, "UPDATE vantage_lease SET expires_at = now() - interval '1 second'")  # the other one is gone
        wait_for(m.leads, 20, "it to take the lease again")
        assert m.proc.alive and "fleet_lease_lost" in m.proc.log()
