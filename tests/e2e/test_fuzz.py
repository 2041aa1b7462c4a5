"""The fuzzer (tests/e2e/fuzzing.py) against a live coordinator process, over real gRPC:
every JobService and AdminService request, raw bytes to every method, WatchJob, and the
agents' stream, with every kind of credential. The coordinator must never answer UNKNOWN
or INTERNAL, never crash, and keep serving a well-behaved, enrolled agent throughout.

CI runs ``VANTAGE_FUZZ_CASES`` cases (default 2000) and prints how many it ran and what
the coordinator answered; ``scripts/fuzz.py`` runs a longer campaign.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from coordinator.client import VantageClient
from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.fuzzing import WELL_BEHAVED_REGION, Target, campaign
from tests.e2e.harness import network, wait_for

pytestmark = pytest.mark.e2e

SHARED = "fuzz-shared-agent-token"
BOOT = "fuzz-bootstrap-token"
CASES = int(os.environ.get("VANTAGE_FUZZ_CASES", "2000"))


@pytest.mark.timeout(900)
def test_the_coordinator_survives_the_fuzzer_and_keeps_serving_a_good_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"VANTAGE_AGENT_TOKEN": SHARED, "VANTAGE_API_TOKEN": BOOT}
    with network(tmp_path, extra_env=env) as n:
        proc = n.start_coordinator()
        with VantageClient(n.address, token=BOOT) as c:
            token = c.enroll_agent("h-1", WELL_BEHAVED_REGION).token
        n.start_agent("h-1", WELL_BEHAVED_REGION, env={"VANTAGE_AGENT_TOKEN": token})
        n.wait_agents({"h-1"})
        began = time.monotonic()
        target = campaign(Target(n.address, SHARED, BOOT), CASES)
        took = time.monotonic() - began
        with capsys.disabled():
            codes = ", ".join(f"{k} {v}" for k, v in target.seen.most_common())
            print(f"\nfuzz: {target.cases} cases in {took:.0f}s, 0 bugs; the coordinator answered: {codes}")
        assert target.cases >= CASES
        assert proc.alive, proc.log()[-3000:]
        # The well-behaved agent was served throughout: still the same session, and it runs a job now.
        with VantageClient(n.address, token=BOOT) as c:
            h1 = next(a for a in c.agents() if a.agent_id == "h-1")
            assert h1.connected and h1.region == WELL_BEHAVED_REGION
            job = c.submit("tcp", [f"127.0.0.1:{n.port}"], regions=[WELL_BEHAVED_REGION])
            done = wait_for(lambda: (j := c.get(job.job_id)).state == pb.JOB_STATE_DONE and j, 30, "the good agent's job")
            assert done.tasks_done == 1
            [event, _end] = list(c.watch(job.job_id, follow=False))
            assert event.result.agent_id == "h-1" and failure_name(event.result.result.failure) == ""
        log = proc.log()
        assert "Traceback" not in log and '"tick_failed"' not in log, log[-3000:]
