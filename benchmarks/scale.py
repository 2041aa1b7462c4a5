"""Scale benchmark: one real ``vantage coordinator`` and a load generator of several
processes (``benchmarks/loadgen.py``) standing in for 10,000 agents over real gRPC streams
on 127.0.0.1, on SQLite and on PostgreSQL (a private server it starts), in one run.

For each engine it prints, each figure beside its goal (issue 11) as a ratio:
  * storm: every agent dialling at once; the time until all are in and each has been
    assigned a task, and the stream attempts that failed on the way;
  * idle: with every agent connected and beating, the coordinator's RSS and the share of
    one core its heartbeat handling takes;
  * fan-out: submit to the last assignment, p50 and p99, to 1,000 agents (one region) and
    to every agent;
  * ingest: a mix of dns, tcp, tls, http and throughput jobs, at least 200,000 results,
    sent as the agents get them; results acked per second from the first sent to the
    last ack, checked against the rows stored;
  * restart: kill -9, the coordinator started again on the same database at once; the
    time until every agent is back in and has been assigned a task, and the attempts that
    failed: while nothing listened (refused connections) and against the running
    coordinator.

Usage: python benchmarks/scale.py [--agents 10000] [--procs 8] [--engines sqlite,postgres]
                                  [--fanout-jobs 10] [--ingest 200000] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figlib import Figures, add_args, apply_quick  # noqa: E402
from protos.vantage.v1 import vantage_pb2 as pb  # noqa: E402
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc  # noqa: E402

REGIONS = 10
INGEST_TIMEOUT_S = 600.0  # the longest a task may be given
# The ingest mix: (kind, targets) per job; every agent gets every target of each.
MIX = [
    ("tcp", [f"t{i}.example:443" for i in range(6)]),
    ("dns", [f"d{i}.example" for i in range(5)]),
    ("tls", [f"s{i}.example:443" for i in range(3)]),
    ("http", [f"https://h{i}.example/" for i in range(4)]),
    ("throughput", [f"https://x{i}.example/10MB.bin" for i in range(2)]),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stat(pid: int) -> tuple[float, float, float]:
    """(CPU seconds used, VmRSS MiB, VmHWM MiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class Coordinator:
    def __init__(self, db: str, tmp: Path, name: str) -> None:
        self.db, self.tmp, self.name = db, tmp, name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
        env["VANTAGE_LOG_LEVEL"] = os.environ.get("SCALE_LOG_LEVEL", "warning")
        self.starts += 1
        log = open(self.tmp / f"coord-{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vantage.cli", "coordinator", "--listen", self.address,
             "--metrics-listen", f"127.0.0.1:{free_port()}", "--db", self.db],
            env=env, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT,
        )  # fmt: skip

    def wait_listening(self, limit_s: float = 60.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            assert self.proc is not None and self.proc.poll() is None, "the coordinator exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return time.monotonic()
            time.sleep(0.02)
        raise TimeoutError("the coordinator is not listening")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Generators:
    """The load generator's processes and their latest counters."""

    def __init__(self, address: str, agents: int, procs: int) -> None:
        self.latest: list[dict[str, Any]] = [{} for _ in range(procs)]
        self.procs: list[subprocess.Popen[str]] = []
        per = -(-agents // procs)
        for i in range(procs):
            first, count = i * per, min(per, agents - i * per)
            p = subprocess.Popen(
                [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), address, str(first), str(count),
                 str(REGIONS), str(i)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
            )  # fmt: skip
            self.procs.append(p)
            threading.Thread(target=self._read, args=(i, p), daemon=True).start()

    def _read(self, i: int, p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            with contextlib.suppress(ValueError):
                self.latest[i] = json.loads(line)

    def total(self, key: str) -> int:
        return sum(int(s.get(key) or 0) for s in self.latest)

    def attempts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.latest:
            for k, v in (s.get("attempts") or {}).items():
                out[k] = out.get(k, 0) + int(v)
        return out

    def assigned(self, job_id: str) -> tuple[int, float]:
        seen = [s.get("assigned", {}).get(job_id) for s in self.latest]
        return sum(int(x[0]) for x in seen if x), max((float(x[1]) for x in seen if x), default=0.0)

    def lateness(self) -> str:
        beat = max(float(s.get("beat_late_max", 0)) for s in self.latest)
        ack = max(float(s.get("ack_wait_max", 0)) for s in self.latest)
        return (
            f"heartbeats sent up to {beat:.1f}s late; a result waited up to {ack:.1f}s for its ack"
        )

    def why(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.latest:
            for k, v in (s.get("why") or {}).items():
                out[k] = out.get(k, 0) + int(v)
        return dict(sorted(out.items(), key=lambda kv: -kv[1])[:8])

    def first_sent(self, jobs: list[str]) -> float:
        """When the first result of any of ``jobs`` was sent."""
        return min(
            float(x[2])
            for s in self.latest
            for j in jobs
            if len(x := s.get("assigned", {}).get(j) or ()) > 2
        )

    def last_ack(self) -> float:
        return max(float(s["last_ack"]) for s in self.latest if s.get("last_ack"))

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def wait_for(what: str, cond: Any, limit_s: float) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"{what}: not within {limit_s:.0f}s")
        time.sleep(0.01)


def failed(attempts: dict[str, int]) -> int:
    return sum(v for k, v in attempts.items() if k != "ok")


def submit(
    api: Any, kind: str, targets: list[str], regions: list[str] | None = None, timeout_s: float = 0
) -> str:
    spec = pb.JobSpec(
        kind=kind, targets=targets, selector=pb.Selector(regions=regions or []), timeout_s=timeout_s
    )
    return str(api.SubmitJob(pb.SubmitJobRequest(spec=spec), timeout=30).job_id)


def wait_done(api: Any, job_id: str, limit_s: float) -> None:
    def done() -> bool:
        job = api.GetJob(pb.GetJobRequest(job_id=job_id), timeout=30)
        return bool(job.state == pb.JOB_STATE_DONE)

    t0 = time.monotonic()
    while not done():
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"job {job_id} not done within {limit_s:.0f}s")
        time.sleep(0.1)


def everyone_assigned(gens: Generators, api: Any, n: int, t0: float, limit_s: float) -> float:
    """Submit a tcp job to every agent; seconds from t0 until each has its task."""
    t_submit = time.monotonic()
    job = submit(api, "tcp", ["storm.example:443"])
    wait_for("every agent assigned", lambda: gens.assigned(job)[0] >= n, limit_s)
    at = gens.assigned(job)[1] - t0
    wait_done(api, job, limit_s)
    print(
        f"  submitted at {t_submit - t0:.1f}s, every agent assigned at {at:.1f}s, done at "
        f"{time.monotonic() - t0:.1f}s; {gens.lateness()}"
    )
    return at


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def fanout(
    gens: Generators, api: Any, jobs: int, regions: list[str] | None, n: int
) -> tuple[float, float]:
    lat = []
    for i in range(jobs):
        t_submit = time.monotonic()
        job = submit(api, "tcp", [f"fanout{i}.example:443"], regions)
        wait_for(f"fan-out {job}", lambda job=job: gens.assigned(job)[0] >= n, 120)
        lat.append(gens.assigned(job)[1] - t_submit)
        wait_done(api, job, 120)
    return statistics.median(lat), pct(lat, 0.99)


def count_rows(db: str, job_ids: list[str]) -> int:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM measurements WHERE job_id = ANY(%s)", (job_ids,)
            ).fetchone()
            return int(row[0]) if row else 0
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(job_ids))
        return int(
            conn.execute(
                f"SELECT COUNT(*) FROM measurements WHERE job_id IN ({marks})", job_ids
            ).fetchone()[0]
        )


FIGS = Figures("scale")
ENGINE = [""]  # the engine being measured: the prefix of the figures' names


def record(label: str, value: float, unit: str, note: str = "") -> None:
    FIGS.add(f"{ENGINE[0]}: {label}", value, unit, note=note)


def show(label: str, value: float, unit: str, goal: float, higher_better: bool) -> None:
    FIGS.add(f"{ENGINE[0]}: {label}", value, unit, goal, "higher" if higher_better else "lower")
    word = "at least" if higher_better else "at most"
    if not higher_better and value == 0:
        shown = "none: met"
    else:
        shown = f"{value / goal if higher_better else goal / value:.2f}"
    print(f"  {label}: {value:,.1f} {unit} (goal {word} {goal:,g}; ratio {shown})", flush=True)


def run_engine(engine: str, db: str, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    n = args.agents
    phases = set(args.phases.split(","))
    fig: dict[str, float] = {}
    coord = Coordinator(db, tmp, engine)
    coord.start()
    coord.wait_listening()
    channel = grpc.insecure_channel(coord.address)
    api = pb_grpc.JobServiceStub(channel)
    print(f"== {engine}: {n:,} agents from {args.procs} processes", flush=True)
    ENGINE[0] = {"sqlite": "SQLite", "postgres": "PostgreSQL"}.get(engine, engine)
    t0 = time.monotonic()
    gens = Generators(coord.address, n, args.procs)
    try:
        wait_for("every agent connected", lambda: gens.total("connected") >= n, 300)
        fig["storm_in_s"] = time.monotonic() - t0
        fig["storm_s"] = everyone_assigned(gens, api, n, t0, 300)
        fig["storm_failed"] = failed(gens.attempts())
        print(f"storm: {n:,} in after {fig['storm_in_s']:.1f}s; every one assigned a task at "
              f"{fig['storm_s']:.1f}s; failed attempts {fig['storm_failed']:,.0f} {gens.attempts()}")  # fmt: skip
        print(f"  why: {gens.why()}")
        show(f"storm, {n:,} agents dialling at once: all in and assigned", fig["storm_s"], "s", 30, False)
        record("storm, failed stream attempts", fig["storm_failed"], "attempts")
        if "idle" in phases:
            idle(gens, coord, fig, args)
        if "fanout" in phases:
            fanouts(gens, api, fig, args)
        if "ingest" in phases:
            ingest(gens, api, db, fig, args)
        if "restart" in phases:
            restart(gens, api, coord, fig, args)
        _, rss, hwm = proc_stat(coord.proc.pid)  # type: ignore[union-attr]
        print(f"coordinator at the end: RSS {rss:.0f} MiB, peak {hwm:.0f} MiB")
    finally:
        gens.stop()
        channel.close()
        coord.stop()
    return fig


def idle(
    gens: Generators, coord: Coordinator, fig: dict[str, float], args: argparse.Namespace
) -> None:
    # Idle: every agent connected and beating.
    beats0, (cpu0, _, _), w0 = gens.total("heartbeats"), proc_stat(coord.proc.pid), time.monotonic()  # type: ignore[union-attr]
    time.sleep(args.idle_s)
    beats1, (cpu1, rss, _), w1 = (
        gens.total("heartbeats"),
        proc_stat(coord.proc.pid),
        time.monotonic(),
    )  # type: ignore[union-attr]
    fig["idle_rss_mib"], fig["idle_cpu_share"] = rss, (cpu1 - cpu0) / (w1 - w0)
    fig["heartbeats_per_s"] = (beats1 - beats0) / (w1 - w0)
    print(f"idle: RSS {rss:.0f} MiB with {gens.total('connected'):,} agents; "
          f"{fig['heartbeats_per_s']:,.0f} heartbeats/s take {fig['idle_cpu_share'] * 100:.1f}% of a core")  # fmt: skip
    show(f"coordinator RSS, {args.agents:,} agents connected and beating", rss, "MiB", 512, False)
    record("heartbeats handled", fig["heartbeats_per_s"], "heartbeats/s")
    record("CPU share of the heartbeats", fig["idle_cpu_share"] * 100, "% of one core")


def fanouts(gens: Generators, api: Any, fig: dict[str, float], args: argparse.Namespace) -> None:
    n = args.agents
    p50, p99 = fanout(gens, api, args.fanout_jobs, ["r0"], -(-n // REGIONS))
    fig["fanout1k_p50_ms"], fig["fanout1k_p99_ms"] = p50 * 1000, p99 * 1000
    print(
        f"fan-out to {-(-n // REGIONS):,} agents: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    record(f"fan-out p50, {-(-n // REGIONS):,} agents (one region)", p50 * 1000, "ms")
    show(f"fan-out p99, {-(-n // REGIONS):,} agents (one region)", p99 * 1000, "ms", 200, False)
    p50, p99 = fanout(gens, api, args.fanout_jobs, None, n)
    fig["fanout_p50_ms"], fig["fanout_p99_ms"] = p50 * 1000, p99 * 1000
    print(f"fan-out to {n:,} agents: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    record(f"fan-out p50, all {n:,} agents", p50 * 1000, "ms")
    show(f"fan-out p99, all {n:,} agents", p99 * 1000, "ms", 1000, False)


def ingest(
    gens: Generators, api: Any, db: str, fig: dict[str, float], args: argparse.Namespace
) -> None:
    n = args.agents
    # Ingest: the mix, repeated until at least --ingest results.
    per_round = n * sum(len(t) for _, t in MIX)
    rounds = -(-args.ingest // per_round)
    acked0 = gens.total("acked")
    # A long task timeout: the figure is how fast all of it is stored, not how much of it
    # lands before the default deadline (60 s) fails the rest.
    jobs = [
        submit(api, kind, targets, timeout_s=INGEST_TIMEOUT_S)
        for _ in range(rounds)
        for kind, targets in MIX
    ]
    total = per_round * rounds
    wait_for("every result acked", lambda: gens.total("acked") - acked0 >= total, 900)
    elapsed = gens.last_ack() - gens.first_sent(jobs)
    for j in jobs:
        wait_done(api, j, INGEST_TIMEOUT_S)
    rows = count_rows(db, jobs)
    fig["ingest_per_s"] = total / elapsed
    print(f"ingest: {total:,} results ({', '.join(k for k, _ in MIX)}) acked in {elapsed:.1f}s: "
          f"{fig['ingest_per_s']:,.0f}/s; {rows:,} rows stored")  # fmt: skip
    show(f"ingest, {total:,} results of five kinds, {n:,} agents", fig["ingest_per_s"], "results/s", 15_000, True)


def restart(
    gens: Generators, api: Any, coord: Coordinator, fig: dict[str, float], args: argparse.Namespace
) -> None:
    n = args.agents
    # Restart: kill -9 and start again at once.
    before = gens.attempts()
    coord.kill()
    t0 = time.monotonic()
    coord.start()
    listening = coord.wait_listening()
    wait_for("every agent back", lambda: gens.total("connected") >= n, 300)
    fig["restart_in_s"] = time.monotonic() - t0
    fig["restart_s"] = everyone_assigned(gens, api, n, t0, 300)
    after = gens.attempts()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    down = delta.get("UNAVAILABLE-down", 0)
    fig["restart_failed"] = failed(delta) - down
    fig["restart_refused"] = down
    print(f"restart: listening after {listening - t0:.1f}s; {n:,} back in after {fig['restart_in_s']:.1f}s; "
          f"every one assigned a task at {fig['restart_s']:.1f}s; attempts refused while down "
          f"{down:,}, failed against the coordinator {fig['restart_failed']:,.0f} {delta}")  # fmt: skip
    show(f"restart after kill -9, {n:,} agents: all back in and assigned", fig["restart_s"], "s", 30, False)
    record("restart: listening after", listening - t0, "s")
    record("restart: attempts failed against the coordinator", fig["restart_failed"], "attempts")
    record("restart: attempts refused while down", down, "attempts")
    fails = fig["storm_failed"] + fig["restart_failed"]
    show("failed attempts per agent (storm and restart)", fails / n, "", 1, False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=8, help="load generator processes")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--fanout-jobs", type=int, default=10)
    parser.add_argument("--ingest", type=int, default=200_000, help="at least this many results")
    parser.add_argument("--idle-s", type=float, default=15.0)
    parser.add_argument(
        "--phases",
        default="storm,idle,fanout,ingest,restart",
        help="which to run, in this order (storm always runs)",
    )
    parser.add_argument("--logs", type=Path, help="keep the coordinators' logs here")
    add_args(parser, "--agents 1000 --procs 2 --engines sqlite --fanout-jobs 5 --ingest 20000 --idle-s 5")
    args = parser.parse_args()
    apply_quick(args, parser, QUICK)
    FIGS.quick = args.quick
    if args.quick and args.engines == "sqlite":
        FIGS.skip("PostgreSQL", "--quick runs on SQLite only")
    try:
        return measure(args)
    finally:
        FIGS.write(args.json)


QUICK = {"agents": 1000, "procs": 2, "engines": "sqlite", "fanout_jobs": 5, "ingest": 20_000, "idle_s": 5.0}


def measure(args: argparse.Namespace) -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        logs = args.logs or tmp
        logs.mkdir(parents=True, exist_ok=True)
        server = None
        try:
            for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
                if engine == "sqlite":
                    db = str(tmp / "scale.db")
                else:
                    from tests.pgserver import PgServer, unavailable_reason

                    reason = unavailable_reason()
                    if reason:
                        print(f"== postgres: skipped: {reason}")
                        FIGS.skip("PostgreSQL", reason)
                        continue
                    server = PgServer()
                    server.start()
                    db = server.create_db()
                results[engine] = run_engine(engine, db, logs, args)
        finally:
            if server is not None:
                server.close()
    if "sqlite" in results and "postgres" in results:
        a, b = results["postgres"], results["sqlite"]
        print("== postgres / sqlite: " + ", ".join(f"{k} {a[k] / b[k]:.2f}" for k in a if b.get(k)))
        for k in ("storm_s", "fanout_p99_ms", "ingest_per_s", "restart_s"):
            if a.get(k) and b.get(k):
                FIGS.add(f"PostgreSQL / SQLite: {k}", a[k] / b[k], "x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
