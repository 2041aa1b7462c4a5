"""A long fuzzing campaign against a live coordinator (tests/e2e/fuzzing.py).

Usage: python scripts/fuzz.py [--cases 50000] [--chunk 2500] [--db postgresql://...]

It starts a coordinator (SQLite in a temporary directory, or --db), enrols a well-behaved
agent and starts it, then runs the fuzzer in chunks of --chunk cases, each with its own
seed. After every chunk it checks that the coordinator is up and that the good agent is
still connected and runs a real tcp job. It prints the cases run, what the coordinator
answered, and the bugs found (a status it must never give, a crash, the good agent lost);
it exits 1 on the first bug, with hypothesis' smallest failing case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator.client import VantageClient
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.fuzzing import WELL_BEHAVED_REGION, Bug, Target, campaign
from tests.e2e.harness import network, wait_for

SHARED, BOOT = "fuzz-campaign-agent-token", "fuzz-campaign-admin-token"


def good_agent_works(address: str, port: int) -> bool:
    with VantageClient(address, token=BOOT) as c:
        h1 = next((a for a in c.agents() if a.agent_id == "h-1"), None)
        if h1 is None or not h1.connected:
            return False
        job = c.submit("tcp", [f"127.0.0.1:{port}"], regions=[WELL_BEHAVED_REGION])
        done = wait_for(lambda: c.get(job.job_id).state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED), 30, "the job")
        return bool(done) and c.get(job.job_id).tasks_done == 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=50_000, help="cases in all (default 50000)")
    ap.add_argument("--chunk", type=int, default=2_500, help="cases per seed (default 2500)")
    ap.add_argument("--db", help="the coordinator's --db (default: SQLite in a temporary directory)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vantage-fuzz-"))
    seen: Counter[str] = Counter()
    ran = 0
    began = time.monotonic()
    with network(root, db_url=args.db, extra_env={"VANTAGE_AGENT_TOKEN": SHARED, "VANTAGE_API_TOKEN": BOOT}) as n:
        proc = n.start_coordinator()
        with VantageClient(n.address, token=BOOT) as c:
            token = c.enroll_agent("h-1", WELL_BEHAVED_REGION).token
        n.start_agent("h-1", WELL_BEHAVED_REGION, env={"VANTAGE_AGENT_TOKEN": token})
        n.wait_agents({"h-1"})
        seed = 0
        while ran < args.cases:
            seed += 1
            target = Target(n.address, SHARED, BOOT)
            try:
                campaign(target, min(args.chunk, args.cases - ran), seed=seed)
            except Bug as bug:
                print(f"BUG after {ran + target.cases} cases (seed {seed}): {bug}", flush=True)
                return 1
            ran += target.cases
            seen.update(target.seen)
            if not proc.alive:
                print(f"BUG: the coordinator died after {ran} cases; see {n.root}/coordinator.log", flush=True)
                return 1
            if not good_agent_works(n.address, n.port):
                print(f"BUG: the well-behaved agent was not served after {ran} cases", flush=True)
                return 1
            print(f"{ran} cases, {time.monotonic() - began:.0f}s, 0 bugs", flush=True)
        if "Traceback" in proc.log():
            print(f"BUG: a traceback in {n.root}/coordinator.log", flush=True)
            return 1
    print(f"fuzz campaign: {ran} cases in {time.monotonic() - began:.0f}s, 0 bugs; answers:")
    for key, count in seen.most_common():
        print(f"  {count:7d}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
