"""Load benchmark: real `vantage coordinator` processes and a load generator in a separate
process that simulates N agents (default 1,000) over real gRPC streams on 127.0.0.1.

It prints:
  * fan-out latency: for jobs sent to all N agents, the time from SubmitJob to the last
    agent receiving its assignment (p50, p99 over --fanout-jobs jobs);
  * ingestion: measurements stored per second while every agent answers every task at
    once (a job with --targets targets on every agent), counted from the first result sent
    to the last ack, and checked against the rows in SQLite;
  * the coordinator's peak RSS (VmHWM), and the ingest rate as a ratio of the 10,000/s aim;

for each engine in --engines, in one run: ``sqlite`` (one coordinator), ``postgres`` (one
coordinator on a private server it starts) and ``postgres2`` (a fleet of two on one fresh
database: half the agents connect to the lease holder, half to the other, which relays
them; jobs are submitted at the holder), then the ratios between them.

Usage: python benchmarks/network_load.py [--agents 1000] [--targets 20] [--fanout-jobs 20]
                                         [--engines sqlite,postgres,postgres2] [--pg-url URL]
                                         [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figlib import Figures, add_args, apply_quick
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

EOF = grpc.aio.EOF  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimAgent:
    """A simulated agent: hello, then answer every assignment at once with a tcp result."""

    def __init__(self, idx: int, stub: pb_grpc.AgentServiceStub, stats: dict[str, object]) -> None:
        self.idx = idx
        self.stub = stub
        self.stats = stats
        self.connected = asyncio.Event()

    async def run(self) -> None:
        call = self.stub.Connect()
        await call.write(pb.AgentMessage(hello=pb.Hello(
            agent_id=f"sim-{self.idx:05d}", region=f"r{self.idx % 10}", kinds=["tcp"], concurrency=64,
            result_format=pb.RESULT_FORMAT_TYPED,
        )))
        welcome = await call.read()
        assert welcome.HasField("welcome")
        self.connected.set()
        last_assign: dict[str, float] = self.stats["last_assign"]  # type: ignore[assignment]
        acked: list[int] = self.stats["acked"]  # type: ignore[assignment]
        pending: list[pb.TaskResult] = []
        while True:
            msg = await call.read()
            if msg is EOF:
                return
            which = msg.WhichOneof("body")
            if which == "assign":
                a = msg.assign
                now = time.perf_counter()
                if now > last_assign.get(a.job_id, 0.0):
                    last_assign[a.job_id] = now
                counts: dict[str, int] = self.stats["assign_count"]  # type: ignore[assignment]
                counts[a.job_id] = counts.get(a.job_id, 0) + 1
                if self.stats.get("answer"):
                    r = pb.TaskResult(task_id=a.task_id, job_id=a.job_id, agent_id=f"sim-{self.idx:05d}",
                                      started_at=time.time(), finished_at=time.time())
                    r.result.kind = "tcp"
                    r.result.target = a.target
                    r.result.duration_s = 0.001
                    r.result.tcp.address, r.result.tcp.port, r.result.tcp.connect_s = "192.0.2.1", 80, 0.001
                    pending.append(r)
                    # Each agent gets `batch` tasks per job: one ResultBatch for them all.
                    if len(pending) >= int(self.stats["batch"]):  # type: ignore[call-overload]
                        if self.stats.get("first_sent") is None:
                            self.stats["first_sent"] = time.perf_counter()
                        await call.write(pb.AgentMessage(results=pb.ResultBatch(results=pending)))
                        pending = []
            elif which == "ack":
                acked[0] += len(msg.ack.task_ids)
                self.stats["last_ack"] = time.perf_counter()


async def loadgen(address: str, n: int, targets: int, fanout_jobs: int) -> None:
    stats: dict[str, object] = {
        "last_assign": {}, "assign_count": {}, "acked": [0], "answer": False, "batch": targets,
    }
    addresses = address.split(",")  # the agents spread over them; the API uses the first
    channels = [grpc.aio.insecure_channel(addresses[i % len(addresses)], options=[("grpc.use_local_subchannel_pool", 1)])
                for i in range(max(len(addresses), n // 50))]  # fmt: skip
    agents = [SimAgent(i, pb_grpc.AgentServiceStub(channels[i % len(channels)]), stats) for i in range(n)]
    address = addresses[0]
    tasks = [asyncio.create_task(a.run()) for a in agents]
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 120)
    print(f"{n} simulated agents connected in {time.perf_counter() - t0:.1f}s")
    api = pb_grpc.JobServiceStub(grpc.aio.insecure_channel(address))

    # Fan-out latency: submit to the last of N assignments.
    latencies = []
    last_assign: dict[str, float] = stats["last_assign"]  # type: ignore[assignment]
    counts: dict[str, int] = stats["assign_count"]  # type: ignore[assignment]
    for i in range(fanout_jobs):
        t_submit = time.perf_counter()
        job = await api.SubmitJob(pb.SubmitJobRequest(spec=pb.JobSpec(kind="tcp", targets=[f"fanout{i}.example:80"])))
        # Wait until every agent has its assignment for this job (bounded).
        deadline = time.perf_counter() + 60
        while counts.get(job.job_id, 0) < n and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        assert counts.get(job.job_id, 0) == n, f"only {counts.get(job.job_id, 0)} of {n} assigned"
        latencies.append(last_assign[job.job_id] - t_submit)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"fan-out to {n} agents: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (submit -> last assignment, {len(latencies)} jobs)")
    print(f"FIG fanout_p99_ms {p99 * 1000:.1f}")

    # Ingestion: every agent answers every task of a wide job at once.
    stats["answer"] = True
    acked: list[int] = stats["acked"]  # type: ignore[assignment]
    acked[0] = 0  # the agents hold this list: reset it in place
    stats["first_sent"] = None
    total = n * targets
    job = await api.SubmitJob(pb.SubmitJobRequest(spec=pb.JobSpec(kind="tcp", targets=[f"t{i}.example:80" for i in range(targets)])))
    deadline = time.perf_counter() + 300
    while acked[0] < total and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    elapsed = float(stats["last_ack"]) - float(stats["first_sent"])  # type: ignore[arg-type]
    rate = acked[0] / elapsed
    print(f"ingested {acked[0]} of {total} measurements in {elapsed:.2f}s: {rate:,.0f} measurements/s "
          f"(ratio to the 10,000/s aim: {rate / 10_000:.2f})")
    print(f"FIG ingest_per_s {rate:.1f}")
    print(f"JOB {job.job_id}")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close()


def run_one(engine: str, db: str, tmp: Path, args: argparse.Namespace) -> dict[str, float] | None:
    """The coordinator(s) on ``db`` (two for ``postgres2``) and the load generator against
    them; returns the figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env["VANTAGE_LOG_LEVEL"] = "warning"
    ports: list[int] = []
    coords: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2 if engine == "postgres2" else 1):
            ports.append(free_port())
            coords.append(subprocess.Popen(
                [sys.executable, "-m", "vantage.cli", "coordinator", "--listen", f"127.0.0.1:{ports[-1]}",
                 "--metrics-listen", f"127.0.0.1:{free_port()}", "--db", db],
                env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / f"coord-{engine}-{i}.log", "wb"),  # noqa: SIM115
            ))  # fmt: skip
            time.sleep(2)  # the first takes the lease before the second starts
        out = subprocess.run(
            [sys.executable, __file__, "--role", "loadgen", "--address", ",".join(f"127.0.0.1:{p}" for p in ports),
             "--agents", str(args.agents), "--targets", str(args.targets),
             "--fanout-jobs", str(args.fanout_jobs)],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        print(f"== {engine}" + (" (two coordinators, half the agents relayed)" if len(coords) > 1 else ""))
        print(out.stdout, end="")
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return None
        figures = {k: float(v) for line in out.stdout.splitlines() if line.startswith("FIG ")
                   for k, v in [line.split()[1:3]]}  # fmt: skip
        job_id = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("JOB "))
        time.sleep(1)
        rows = count_rows(db, job_id)
        print(f"rows stored for the ingest job: {rows}")
        for i, coord in enumerate(coords):
            status = Path(f"/proc/{coord.pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            rss = int(hwm.split()[1]) / 1024
            figures.setdefault("rss_mib", rss)  # the first: the lease holder
            role = "" if len(coords) == 1 else (" (lease holder)" if i == 0 else " (relay)")
            print(f"coordinator{role} peak RSS: {rss:.0f} MiB")
        return figures
    finally:
        for coord in coords:
            coord.send_signal(signal.SIGTERM)
        for coord in coords:
            coord.wait(30)


def count_rows(db: str, job_id: str) -> int:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            row = conn.execute("SELECT COUNT(*) FROM measurements WHERE job_id=%s", (job_id,)).fetchone()
            return int(row[0]) if row else 0
    return int(sqlite3.connect(db).execute("SELECT COUNT(*) FROM measurements WHERE job_id=?", (job_id,)).fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--fanout-jobs", type=int, default=20)
    parser.add_argument("--engines", default="sqlite,postgres,postgres2",
                        help="comma-separated: sqlite, postgres, postgres2 (two coordinators); "
                        "default all three, in one run")
    parser.add_argument("--pg-url", help="a PostgreSQL database to use; default: a private "
                        "server started for the run (initdb in a temporary directory)")
    parser.add_argument("--role", choices=("main", "loadgen"), default="main", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    add_args(parser, "--engines sqlite --agents 500 --targets 40 --fanout-jobs 10 (the same 20,000 measurements)")
    args = parser.parse_args()
    if args.role == "loadgen":
        asyncio.run(loadgen(args.address, args.agents, args.targets, args.fanout_jobs))
        return 0
    apply_quick(args, parser, {"engines": "sqlite", "agents": 500, "targets": 40, "fanout_jobs": 10})
    figs = Figures("network_load", args.quick)
    if args.quick and args.engines == "sqlite":
        figs.skip("PostgreSQL (one and two coordinators)", "--quick runs on SQLite only")
    try:
        return measure(args, figs)
    finally:
        figs.write(args.json)


ENGINE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL, one coordinator",
                "postgres2": "PostgreSQL, two coordinators"}  # fmt: skip


def measure(args: argparse.Namespace, figs: Figures) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = None
        try:
            for engine in engines:
                if engine == "sqlite":
                    db = str(tmp / "bench.db")
                elif args.pg_url:
                    db = args.pg_url
                else:
                    from tests.pgserver import PgServer, unavailable_reason

                    if server is None:
                        reason = unavailable_reason()
                        if reason:
                            print(f"== {engine}: skipped: {reason}")
                            figs.skip(ENGINE_NAMES.get(engine, engine), reason)
                            continue
                        server = PgServer()
                        server.start()
                    db = server.create_db()
                figures = run_one(engine, db, tmp, args)
                if figures is None:
                    return 1
                results[engine] = figures
                label, n = ENGINE_NAMES.get(engine, engine), args.agents
                figs.add(f"{label}: ingest, {n:,} agents x {args.targets} tasks", figures["ingest_per_s"],
                         "measurements/s", 10_000, "higher", "goal: the 10,000/s aim")  # fmt: skip
                figs.add(f"{label}: fan-out to all {n:,} agents, p99", figures["fanout_p99_ms"], "ms")
                figs.add(f"{label}: coordinator peak RSS" + (" (lease holder)" if engine == "postgres2" else ""),
                         figures["rss_mib"], "MiB")  # fmt: skip
        finally:
            if server is not None:
                server.close()
    for a, b in (("postgres", "sqlite"), ("postgres2", "sqlite"), ("postgres2", "postgres")):
        if a in results and b in results:
            x, y = results[a], results[b]
            print(f"== {a} / {b}: ingest {x['ingest_per_s'] / y['ingest_per_s']:.2f}, "
                  f"fan-out p99 {x['fanout_p99_ms'] / y['fanout_p99_ms']:.2f}, RSS {x['rss_mib'] / y['rss_mib']:.2f}")
            figs.add(f"{a} / {b}: ingest", x["ingest_per_s"] / y["ingest_per_s"], "x")
            figs.add(f"{a} / {b}: fan-out p99", x["fanout_p99_ms"] / y["fanout_p99_ms"], "x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
