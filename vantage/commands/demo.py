"""``vantage demo``: the whole product on one machine, without root, in about a minute.

It starts a real ``vantage coordinator`` (SQLite) and six real ``vantage agent`` processes
in three regions (de-fra, us-nyc, ru-msk; two each), serves local targets, and runs
periodic jobs:

* ``twitter.demo`` is downloaded (throughput, with ``control.demo`` as the same-agent
  control). Every agent has its own "line": it resolves both names (``--resolve``) to
  userspace token-bucket relays on loopback addresses of its own, at 1 MB/s (8 Mbit/s).
  In ru-msk the twitter relay holds 16,250 bytes/s instead (130 kbit/s, the March 2021
  rate). There is no root here, so these relays stand in for the ``tc`` shaping the lab
  uses.
* ``twitter.demo/upload`` takes uploads (throughput ``direction=upload``, with
  ``control.demo/upload`` as the control) through the same relays; in ru-msk the twitter
  relay takes them at 32,500 bytes/s: an upload throttle, as in 2021.
* ``facebook.demo`` is fetched over HTTP. In ru-msk it resolves to an address where
  nothing listens, so connections are refused: a regional block.

It tells the story as it goes (what starts, the jobs' progress) and ends with the
per-region verdict table that ``vantage verdicts`` shows. Every process's log goes to a
file in the state directory (``--verbose`` shows the demo's own log lines on stderr
too); a temporary state directory is removed at the end unless something failed, so the
logs of a failed run stay for reading. ``--keep-running`` keeps everything up for
Prometheus and Grafana.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO, cast

from common.hostport import join_host_port, split_host_port
from vantage.config import parse_duration
from vantage.errors import UsageError

REGIONS = ("de-fra", "us-nyc", "ru-msk")
THROTTLED_REGION = "ru-msk"
RATE_BPS = 16_250  # 130 kbit/s
UPLOAD_RATE_BPS = 32_500  # 260 kbit/s: uploads to twitter.demo from ru-msk
LINE_BPS = 1_000_000  # every agent's line: 8 Mbit/s
ROUND_S = 10.0
BLOB = 4 * 1024 * 1024
FINISHED = (3, 4, 5)  # vantage.v1.JobState DONE, CANCELLED, FAILED


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a coordinator, six agents in three regions and local targets for a minute",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", default="60s", help="how long jobs run (default 60s)")
    p.add_argument("--listen", default="127.0.0.1:0", help="coordinator gRPC address (default: a free port)")
    p.add_argument("--metrics-listen", default="127.0.0.1:0", help="metrics address (default: a free port)")
    p.add_argument("--state-dir", help="where the database, outboxes and logs go (default: a temp dir)")
    p.add_argument("--keep-running", action="store_true", help="keep serving after the jobs until Ctrl-C")
    p.add_argument("--verbose", action="store_true",
                   help="show log lines on stderr too (the demo's own, and info-level ones from "
                   "the coordinator and agents in their log files)")
    p.set_defaults(func=run)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port(address: str, field: str) -> tuple[str, int]:
    """HOST and PORT as the coordinator the demo starts will read them; port 0: a free one,
    picked when the coordinator starts (``_start_coordinator``)."""
    try:
        return split_host_port(address, field=field)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# A free port is found by binding port 0 and letting it go, so another process may take
# it before the coordinator binds it: the coordinator is then started again on others.
START_ATTEMPTS = 3
START_WAIT_S = 30.0


def say(text: str = "") -> None:
    """One line of the demo's story, on stdout."""
    print(text, flush=True)


def _log_to(state: Path, verbose: bool) -> Any:
    """The demo's own log lines go to ``demo.log`` in the state directory (and to stderr
    with ``--verbose``); stdout is for the story. Returns the file, for run() to close."""
    import io

    from vantage.logs import configure_logging

    log_file = open(state / "demo.log", "a", encoding="utf-8")  # noqa: SIM115 - closed by run()

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            log_file.write(text)
            if verbose:
                sys.stderr.write(text)
            return len(text)

        def flush(self) -> None:
            log_file.flush()

    configure_logging("info", json=True, file=cast(TextIO, Tee()))
    return log_file


def run(args: argparse.Namespace) -> int:
    duration = parse_duration(args.duration, "--duration")
    if duration < ROUND_S:
        raise UsageError(f"--duration: at least {ROUND_S:g}s (one round)")
    want = (_port(args.listen, "--listen"), _port(args.metrics_listen, "--metrics-listen"))
    temporary = not args.state_dir
    state = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="vantage-demo-"))
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--state-dir: cannot create {state}: {exc.strerror}") from None
    log_file = _log_to(state, args.verbose)
    code = 1
    try:
        code = asyncio.run(
            _demo(duration, want, state, args.keep_running, args.verbose)
        )
        return code
    except KeyboardInterrupt:
        code = 130
        return code
    finally:
        log_file.close()
        if temporary and code == 0:
            shutil.rmtree(state, ignore_errors=True)
        elif temporary:
            print(f"vantage demo: the logs are kept in {state}", file=sys.stderr)


async def _serve_targets() -> tuple[Any, dict[str, int]]:
    from aiohttp import web

    blob = os.urandom(BLOB)

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>demo target</body></html>", content_type="text/html")

    async def data(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(blob))})
        await resp.prepare(request)
        view = memoryview(blob)
        # Probes stop reading at max_bytes or max_seconds and hang up: that is normal.
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(blob), 64 * 1024):
                await resp.write(view[i : i + 64 * 1024])
        return resp

    async def upload(request: web.Request) -> web.Response:
        got = 0
        with contextlib.suppress(ConnectionError):  # probes hang up at max_seconds
            async for block in request.content.iter_any():
                got += len(block)
        return web.Response(text=f"{got}\n")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/blob", data)
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = {}
    for name in ("twitter", "control", "facebook"):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports[name] = runner.addresses[-1][1]
    return runner, ports


async def _demo(
    duration: float,
    want: tuple[tuple[str, int], tuple[str, int]],
    state: Path,
    keep: bool,
    verbose: bool = False,
) -> int:
    from coordinator.client import VantageClient
    from vantage.relay import ThrottlingRelay

    say("vantage demo: a coordinator, six agents in three regions and local targets, on 127.0.0.1")
    say(f"  state and logs: {state}")
    runner, ports = await _serve_targets()
    say("  targets: twitter.demo (a 4 MiB download), control.demo (the same, the control), facebook.demo (a page)")
    relays: list[ThrottlingRelay] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env["VANTAGE_LOG_LEVEL"] = "info" if verbose else "warning"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(state / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "vantage.cli", *argv], stdout=log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
        procs.append(proc)
        log.close()
        return proc

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client: Any = None
    try:
        listen, metrics = await _start_coordinator(spawn, procs, want, state)
        client = VantageClient(listen)
        agent_ids = []
        for r, region in enumerate(REGIONS):
            for i in (1, 2):
                agent_id = f"{region}-{i}"
                agent_ids.append(agent_id)
                # This agent's own line: relays on loopback addresses only it resolves to.
                resolve = []
                for name, subnet in (("twitter", 1), ("control", 2)):
                    address = f"127.{subnet}.{r}.{i}"
                    rate = RATE_BPS if (name == "twitter" and region == THROTTLED_REGION) else LINE_BPS
                    up_rate = UPLOAD_RATE_BPS if (name == "twitter" and region == THROTTLED_REGION) else LINE_BPS
                    relay = ThrottlingRelay(
                        host=address, port=ports[name], upstream_host="127.0.0.1",
                        upstream_port=ports[name], downstream_rate=rate, upstream_rate=up_rate,
                    )
                    await relay.start()
                    relays.append(relay)
                    resolve += ["--resolve", f"{name}.demo={address}"]
                # Nothing listens on 127.0.0.3: connections there are refused.
                facebook_ip = "127.0.0.3" if region == THROTTLED_REGION else "127.0.0.1"
                spawn(agent_id, [
                    "agent", "--coordinator", listen, "--region", region, "--id", agent_id,
                    "--state-dir", str(state / agent_id), "--allow-private-targets",
                    *resolve, "--resolve", f"facebook.demo={facebook_ip}",
                ])
        say(f"  starting {len(agent_ids)} agents: {', '.join(agent_ids)}")
        say(f"    each on its own {LINE_BPS // 1000} kB/s line (a userspace relay: the demo needs no root);")
        say(f"    in {THROTTLED_REGION} twitter.demo comes at {RATE_BPS:,} B/s (130 kbit/s, the March 2021 rate)")
        say(f"    and takes uploads at {UPLOAD_RATE_BPS:,} B/s")
        say("    and facebook.demo refuses connections")
        await _wait_agents(client, set(agent_ids), procs)
        say(f"  all {len(agent_ids)} agents connected")
        rounds = max(1, int(duration // ROUND_S))
        twitter = f"http://twitter.demo:{ports['twitter']}/blob"
        control = f"http://control.demo:{ports['control']}/blob"
        facebook = f"http://facebook.demo:{ports['facebook']}/"
        upload = f"http://twitter.demo:{ports['twitter']}/upload"
        control_upload = f"http://control.demo:{ports['control']}/upload"
        jobs = [
            await asyncio.to_thread(
                client.submit, "throughput", [twitter], every_s=ROUND_S, count=rounds, spread_s=2.0,
                options={"control": control, "max_seconds": "3", "max_bytes": "2M"}, timeout_s=25,
            ),
            await asyncio.to_thread(
                client.submit, "throughput", [upload], every_s=ROUND_S, count=rounds, spread_s=2.0,
                options={"control": control_upload, "direction": "upload", "max_seconds": "3",
                         "max_bytes": "2M"}, timeout_s=25,
            ),
            await asyncio.to_thread(
                client.submit, "http", [facebook], every_s=ROUND_S, count=rounds, spread_s=2.0,
                options={"timeout": "3"},
            ),
        ]
        say(f"  running throughput jobs (downloads from and uploads to twitter.demo, control.demo)"
            f" and an http job (facebook.demo):"
            f" {rounds} round{'s' if rounds != 1 else ''}, one every {ROUND_S:g}s")
        started = time.monotonic()
        while not stop.is_set():
            states = [await asyncio.to_thread(client.get, j.job_id) for j in jobs]
            done = sum(s.tasks_done + s.tasks_failed for s in states)
            expected = sum(s.tasks_expected for s in states)
            say(f"  {time.monotonic() - started:5.0f}s  {done} of {expected} tasks")
            if all(s.state in FINISHED for s in states):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ROUND_S)
        await asyncio.to_thread(_print_verdicts, listen)
        if keep and not stop.is_set():
            say(f"serving until Ctrl-C (coordinator {listen}, metrics http://{metrics}/metrics) ...")
            await stop.wait()
        return 0
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10)
            if proc.poll() is None:
                proc.kill()
        for relay in relays:
            await relay.aclose()
        await runner.cleanup()


async def _start_coordinator(
    spawn: Any, procs: list[subprocess.Popen[bytes]], want: tuple[tuple[str, int], tuple[str, int]], state: Path
) -> tuple[str, str]:
    """Start the coordinator and wait until it serves; its gRPC and metrics addresses.
    Ports left to the demo (0) are picked here, and picked again should another process
    take one first (the coordinator then exits at once, unable to bind)."""
    from coordinator.client import VantageClient

    (host, port), (mhost, mport) = want
    for _ in range(START_ATTEMPTS):
        listen = join_host_port(host, port or _free_port(host))
        metrics = join_host_port(mhost, mport or _free_port(mhost))
        say(f"  starting the coordinator on {listen} (metrics: http://{metrics}/metrics)")
        proc = spawn("coordinator", [
            "coordinator", "--listen", listen, "--metrics-listen", metrics,
            "--db", str(state / "vantage.db"), "--window", "40s",
        ])  # fmt: skip
        client = VantageClient(listen)
        try:
            deadline = time.monotonic() + START_WAIT_S
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(client.agents)
                    return listen, metrics
                await asyncio.sleep(0.2)
        finally:
            client.close()
        if proc.poll() is None:
            raise UsageError(f"the coordinator did not answer within {START_WAIT_S:g}s; see coordinator.log in the state dir")
        procs.remove(proc)
        if port and mport:  # the addresses were given: nothing else to try
            break
        say("  a port was taken meanwhile: trying others")
    raise UsageError("the coordinator could not start; see coordinator.log in the state dir")


async def _wait_agents(client: Any, ids: set[str], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise UsageError("a demo process exited early; see the logs in the state dir")
        with contextlib.suppress(Exception):
            agents = await asyncio.to_thread(client.agents)
            if ids <= {a.agent_id for a in agents if a.connected}:
                return
        await asyncio.sleep(0.3)
    raise UsageError("agents did not connect within 30s; see the logs in the state dir")


def _print_verdicts(listen: str) -> None:
    from vantage.commands.client import main_verdicts

    print()
    main_verdicts(listen)
