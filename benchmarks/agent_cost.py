"""What one real agent costs, and how fast it probes: the agent part of
``benchmarks/scale.py`` (also runnable alone).

A fresh coordinator (SQLite in a temporary directory), one real ``vantage agent``
process, and local targets in their own process (a TCP listener and an aiohttp HTTP
server on 127.0.0.1). It prints:
  * the agent's RSS once connected and idle (goal: at most 50 MB), and the modules of
    the coordinator it loaded (none may be);
  * its CPU seconds per 1,000 tcp probes (a job of 1,000 tcp targets);
  * its http probes per second against the local HTTP server (a job of 1,000 http
    targets at --concurrency), beside ``prometheus-blackbox-exporter`` (Debian's package)
    probing the same URL as many times at the same concurrency through its /probe
    endpoint, and the ratio between them (goal: at least 0.5). Without the exporter
    installed that comparison is skipped, and says so.

Usage: python benchmarks/agent_cost.py [--concurrency 32] [--probes 1000] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figlib import Figures, add_args, apply_quick  # noqa: E402
from protos.vantage.v1 import vantage_pb2 as pb  # noqa: E402
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc  # noqa: E402

TARGETS = """
import asyncio, sys
from aiohttp import web

async def main():
    async def handle(_r):
        return web.Response(text="ok " * 100)


    async def tcp(reader, writer):
        writer.close()

    hosts = [f"127.0.0.{i}" for i in range(1, 251)]  # 1,000 distinct tcp targets: 250 x 4 ports

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    for port in sys.argv[2].split(","):
        await asyncio.start_server(tcp, hosts, int(port))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, limit_s: float = 30.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError("no VmRSS")


def run_job(api: pb_grpc.JobServiceStub, spec: pb.JobSpec, limit_s: float = 600) -> tuple[float, pb.Job]:
    t0 = time.monotonic()
    job = api.SubmitJob(pb.SubmitJobRequest(spec=spec), timeout=30)
    seen = 0
    while True:
        got = api.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=30)
        if os.environ.get("AGENT_COST_TRACE") and got.tasks_done != seen:
            seen = got.tasks_done
            print(f"  {time.monotonic() - t0:6.2f}s {got.tasks_done} done", flush=True)
        if got.state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
            return time.monotonic() - t0, got
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"job {job.job_id} not done in {limit_s:.0f}s")
        time.sleep(0.05)


async def blackbox_rate(exporter_port: int, urls: list[str], concurrency: int) -> tuple[float, int]:
    import aiohttp

    probe = f"http://127.0.0.1:{exporter_port}/probe"
    ok = 0
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(url: str) -> None:
            nonlocal ok
            async with sem, session.get(probe, params={"target": url, "module": "http_2xx"}) as resp:
                body = await resp.text()
                ok += int("probe_success 1" in body)

        t0 = time.monotonic()
        await asyncio.gather(*(one(u) for u in urls))
        return len(urls) / (time.monotonic() - t0), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=5.0, help="wait this long once connected before "
                        "reading the idle RSS (default 5)")  # fmt: skip
    add_args(parser, "--probes 300 --idle-s 3")
    args = parser.parse_args()
    apply_quick(args, parser, {"probes": 300, "idle_s": 3.0})
    figs = Figures("agent_cost", args.quick)
    try:
        return measure(args, figs)
    finally:
        figs.write(args.json)


def measure(args: argparse.Namespace, figs: Figures) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env["VANTAGE_LOG_LEVEL"] = "warning"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            http_port, port = free_port(), free_port()
            tcp_ports = [free_port() for _ in range(4)]
            targets = subprocess.Popen([sys.executable, "-c", TARGETS, str(http_port), ",".join(map(str, tcp_ports))],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
            procs.append(targets)  # type: ignore[arg-type]
            coord = subprocess.Popen(
                [sys.executable, "-m", "vantage.cli", "coordinator", "--listen", f"127.0.0.1:{port}",
                 "--metrics-listen", f"127.0.0.1:{free_port()}", "--db", str(tmp / "v.db")],
                env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "coord.log", "wb"), cwd=ROOT,  # noqa: SIM115
            )  # fmt: skip
            procs.append(coord)
            wait_port(port)
            wait_port(http_port)
            agent = subprocess.Popen(
                [sys.executable, "-m", "vantage.cli", "agent", "--coordinator", f"127.0.0.1:{port}",
                 "--region", "lab", "--id", "bench-1", "--state-dir", str(tmp / "agent"),
                 "--allow-private-targets", "--concurrency", str(args.concurrency)],
                env=env, stdout=subprocess.DEVNULL,
                stderr=open(tmp / "agent.log", "wb"), cwd=ROOT,  # noqa: SIM115
            )  # fmt: skip
            procs.append(agent)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            api = pb_grpc.JobServiceStub(channel)
            t0 = time.monotonic()
            while not any(a.connected for a in api.ListAgents(pb.ListAgentsRequest(), timeout=10).agents):
                if time.monotonic() - t0 > 60:
                    raise TimeoutError("the agent did not connect")
                time.sleep(0.1)
            time.sleep(args.idle_s)  # settled and idle
            idle = rss_mib(agent.pid)
            loaded = sorted(
                m for m in agent_modules() if m.split(".")[0] in ("coordinator", "psycopg", "prometheus_client")
            )
            print(f"agent idle RSS: {idle:.1f} MiB (goal at most 50 MB = 47.7 MiB; ratio {47.68 / idle:.2f}); "
                  f"coordinator modules loaded: {loaded or 'none'}")  # fmt: skip
            figs.add("agent idle RSS, connected", idle, "MiB", 47.68, "lower", "goal: at most 50 MB")
            figs.add("coordinator modules the agent loads", len(loaded), "modules", note=", ".join(loaded))

            sel = pb.Selector(agent_ids=["bench-1"])
            n = args.probes
            cpu0, coord0 = cpu_s(agent.pid), cpu_s(coord.pid)
            tcp_targets = [f"127.0.0.{1 + i // 4}:{tcp_ports[i % 4]}" for i in range(n)]
            took, job = run_job(api, pb.JobSpec(kind="tcp", targets=tcp_targets, selector=sel))
            cpu, coord_cpu = cpu_s(agent.pid) - cpu0, cpu_s(coord.pid) - coord0
            print(f"tcp: {job.tasks_done} of {n} probes in {took:.1f}s; agent CPU {cpu:.2f}s, "
                  f"{cpu * 1000 / n:.2f} CPU s per 1,000 tcp probes (the coordinator's: {coord_cpu:.2f}s)")  # fmt: skip
            figs.add(f"agent CPU per 1,000 tcp probes ({n:,} probes)", cpu * 1000 / n, "s")
            figs.add(f"{n:,} tcp probes, submit to the job's end", took, "s")

            urls = [f"http://127.0.0.1:{http_port}/?probe={i}" for i in range(n)]  # targets are distinct
            took, job = run_job(api, pb.JobSpec(kind="http", targets=urls, selector=sel))
            rate = n / took
            print(f"http: {job.tasks_done} of {n} probes in {took:.1f}s: {rate:,.0f} probes/s "
                  f"(submit to the job's end, concurrency {args.concurrency})")  # fmt: skip
            figs.add(f"agent http probes per second, concurrency {args.concurrency}", rate, "probes/s")
            exporter = shutil.which("prometheus-blackbox-exporter")
            if exporter is None:
                print("blackbox exporter: skipped: prometheus-blackbox-exporter is not installed "
                      "(apt-get install prometheus-blackbox-exporter)")  # fmt: skip
                figs.skip("agent / blackbox exporter http probe rate (goal at least 0.5)",
                          "prometheus-blackbox-exporter is not installed")  # fmt: skip
                return 0
            cfg = tmp / "blackbox.yml"
            cfg.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
            bb_port = free_port()
            bb = subprocess.Popen([exporter, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{bb_port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            procs.append(bb)
            wait_port(bb_port)
            bb_rate, ok = asyncio.run(blackbox_rate(bb_port, urls, args.concurrency))
            print(f"blackbox exporter: {ok} of {n} probes succeeded, {bb_rate:,.0f} probes/s at concurrency "
                  f"{args.concurrency}; agent / exporter: {rate / bb_rate:.2f} (goal at least 0.5)")  # fmt: skip
            figs.add(f"blackbox exporter http probes per second, concurrency {args.concurrency}", bb_rate,
                     "probes/s", note=f"{ok} of {n} succeeded")  # fmt: skip
            figs.add("agent / blackbox exporter http probe rate", rate / bb_rate, "", 0.5, "higher")
            channel.close()
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


# What the agent command imports to run (vantage/commands/agent_cmd.py and the agent's
# package); tests/unit/test_agent_imports.py holds it to the same rule.
AGENT_IMPORTS = "import vantage.cli, vantage.commands.agent_cmd, agent.session, agent.runner, agent.probes"


def agent_modules() -> list[str]:
    """The modules a fresh interpreter holds once it has imported what the agent runs."""
    probe = f"{AGENT_IMPORTS}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.split()


if __name__ == "__main__":
    sys.exit(main())
