"""Active and standby coordinators on one PostgreSQL database, as real processes: the
standby takes over the moment the active one is killed (-9, mid-job), the agents move to
it by themselves, the periodic job's rounds go on within 15 s, and the stored rows are
exactly rounds x agents x targets: nothing lost, nothing twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.harness import VANTAGE, Proc, Targets, _port_open, free_port, network, wait_for
from tests.pgserver import PgServer

pytestmark = pytest.mark.e2e
AGENTS = {"a-1": "de", "a-2": "de", "a-3": "ru"}


@pytest.mark.timeout(180)
def test_a_standby_takes_over_from_a_killed_coordinator_and_nothing_is_lost(
    tmp_path: Path, pg_server: PgServer, targets: Targets
) -> None:
    db = pg_server.create_db()
    with network(tmp_path, db_url=db) as n:
        n.start_coordinator()
        b_port, b_metrics = free_port(), free_port()
        standby = Proc("coordinator-b", [
            *VANTAGE, "coordinator", "--listen", f"127.0.0.1:{b_port}", "--metrics-listen",
            f"127.0.0.1:{b_metrics}", "--db", db, "--min-interval", "1s", "--reassign-after", "2s",
            "--standby",
        ], tmp_path / "coordinator-b.log", n.env()).start()  # fmt: skip
        n.procs.append(standby)
        fleet = f"{n.address},127.0.0.1:{b_port}"
        for aid, region in AGENTS.items():
            n.start_agent(aid, region, "--coordinator", fleet)
        n.wait_agents(set(AGENTS), timeout=45)  # whichever they tried first, they end up at A
        wait_for(lambda: "coordinator_standby" in standby.log(), 20, "B to wait as the standby")
        assert not _port_open(b_port), "a standby listens on nothing"
        with n.client() as c:
            job = c.submit("tcp", [f"127.0.0.1:{targets.http_port}"], every_s=1.0, count=20)
            wait_for(lambda: c.get(job.job_id).rounds_done >= 4, 30, "four rounds at A")

        assert n.coordinator is not None
        n.coordinator.kill(signal.SIGKILL)
        killed = time.monotonic()
        n.coordinator.popen.wait(10)  # type: ignore[union-attr]
        n.port = b_port  # from now on the client talks to B
        wait_for(lambda: _port_open(b_port), 20, "B to take over and listen")
        took_over = time.monotonic() - killed
        with n.client() as c:
            before = c.get(job.job_id).rounds_done
            wait_for(lambda: c.get(job.job_id).rounds_done > before, 15, "a round at B")
            resumed = time.monotonic() - killed
            n.wait_agents(set(AGENTS), timeout=30)
            final = wait_for(lambda: (j := c.get(job.job_id)).state == pb.JOB_STATE_DONE and j, 60,
                             "the job to finish at B")  # fmt: skip
            agents_at_b = {a.agent_id for a in c.agents() if a.connected}
        assert resumed <= 15.0, f"rounds resumed {resumed:.1f} s after the kill"
        assert agents_at_b == set(AGENTS)
        assert final.rounds_done == 20
        total, distinct = n.query("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM measurements WHERE job_id=?",
                                  (job.job_id,))[0]  # fmt: skip
        assert total == distinct == final.tasks_done
        assert final.tasks_failed == 0 and total == final.rounds_done * len(AGENTS) * 1, (total, final)
        assert "coordinator_taking_over" in standby.log()
        print(f"B listened {took_over:.1f} s after A was killed; rounds went on after {resumed:.1f} s; "
              f"{total} rows for {final.rounds_done} rounds x {len(AGENTS)} agents ({final.tasks_failed} failed)")
