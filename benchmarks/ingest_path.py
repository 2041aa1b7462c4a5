"""The coordinator's ingest path in one process, without the network: where the time of
one result goes once its message is read.

A real Coordinator on SQLite (a temporary file) with --agents sessions, a tcp job of
--targets targets to each (agents x targets open tasks), then every result fed through
what the gRPC reader does (``convert.task_result_from_pb`` and ``Coordinator.ingest``,
acks queued on the session), in batches of each --batches size, one batch per agent at
a time, every agent's batch in flight at once. Prints results/s per batch size, and how
long one full pass of the scheduling tick (``Coordinator._full_pass``) takes over that
many open tasks, beside the reference: the same number of dict lookups.

Usage: python benchmarks/ingest_path.py [--agents 2000] [--targets 20] [--batches 1,5,20]
                                       [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figlib import Figures, add_args, apply_quick
from benchmarks.loadgen import result_for
from coordinator import convert
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import AgentInfo, JobSpec
from coordinator.store import SQLiteStore
from protos.vantage.v1 import vantage_pb2 as pb


async def one(agents: int, targets: int, batch: int, tmp: Path) -> tuple[float, float, int]:
    import random

    store = SQLiteStore(tmp / f"ingest-{batch}.db")
    await store.open()
    core = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(heartbeat_interval_s=3600))
    sessions = [
        core.agent_connected(AgentInfo(agent_id=f"a{i:05d}", region=f"r{i % 10}", kinds=("tcp",), concurrency=64),
                             "ipv4:127.0.0.1:1", [])
        for i in range(agents)
    ]  # fmt: skip
    await core.submit_job(JobSpec(kind="tcp", targets=tuple(f"t{i}.example:443" for i in range(targets))))
    core.run_due(time.time())
    t0 = time.perf_counter()
    core._full_pass(time.time())  # what a tick costs when it walks every open task
    tick = time.perf_counter() - t0
    rng = random.Random(1)
    by_agent: dict[str, list[pb.TaskResult]] = {}
    for s in sessions:
        while not s.outgoing.empty():
            msg = s.outgoing.get_nowait()
            a = convert.outgoing_to_pb(msg).assign if msg is not None else None
            if a is not None and a.task_id:
                by_agent.setdefault(s.info.agent_id, []).append(result_for(a, s.info.agent_id, rng))
    total = sum(len(v) for v in by_agent.values())

    async def agent(session: object, results: list[pb.TaskResult]) -> None:
        for i in range(0, len(results), batch):
            parsed = [convert.task_result_from_pb(m) for m in results[i : i + batch]]
            await core.ingest(session, parsed, [])  # type: ignore[arg-type]

    t0 = time.perf_counter()
    await asyncio.gather(*(agent(s, by_agent.get(s.info.agent_id, [])) for s in sessions))
    elapsed = time.perf_counter() - t0
    await core.flush()
    await store.close()
    return total / elapsed, tick, total


def main() -> int:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--batches", default="1,5,20")
    add_args(parser, "--agents 500")
    args = parser.parse_args()
    apply_quick(args, parser, {"agents": 500})
    figs = Figures("ingest_path", args.quick)
    d = {i: i for i in range(args.agents * args.targets)}
    t0 = time.perf_counter()
    for k in range(args.agents * args.targets):
        d.get(k)
    ref = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        for batch in [int(b) for b in args.batches.split(",")]:
            rate, tick, total = asyncio.run(one(args.agents, args.targets, batch, Path(tmp)))
            print(f"batch {batch:>4}: {total:,} results at {rate:,.0f}/s; one full pass over {total:,} open tasks: "
                  f"{tick * 1000:.0f} ms ({tick / ref:.0f} x {total:,} dict lookups, {ref * 1000:.1f} ms)")  # fmt: skip
            figs.add(f"ingest, {batch} per batch, {total:,} results", rate, "results/s")
            if batch == int(args.batches.split(",")[0]):
                figs.add(f"one full pass over {total:,} open tasks", tick * 1000, "ms")
                figs.add(f"one full pass against {total:,} dict lookups", tick / ref, "x")
    figs.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
