"""Real processes on 127.0.0.1 for end-to-end tests: `vantage coordinator`, `vantage agent`,
and local targets (HTTP, HTTPS with a trustme CA, DNS, TCP) served from a thread.

Every wait is bounded in time; every process is killed at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from coordinator.client import VantageClient
from tests.polling import poll

VANTAGE = [sys.executable, "-m", "vantage.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``cond`` until it returns something truthy (which is returned)."""
    value, took = poll(cond, bool, timeout=timeout, interval=interval)
    if took is None:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
    return value


@dataclass
class Proc:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self.popen = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.popen is None:
            return None
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Network:
    """A coordinator and its agents, as real processes."""

    root: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    coordinator: Proc | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # A postgresql:// URL for the coordinator's --db; None: SQLite in root/vantage.db.
    db_url: str | None = None
    # The agents' --ca-dir: where jobs' ca_file may point (the local targets' CA).
    ca_dir: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.root / "vantage.db"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
        env.update(self.extra_env)
        return env

    def start_coordinator(self, *extra: str) -> Proc:
        args = [
            *VANTAGE, "coordinator", "--listen", self.address,
            "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--db", self.db_url or str(self.db),
            "--min-interval", "1s", "--reassign-after", "2s", *extra,
        ]
        proc = Proc("coordinator", args, self.root / "coordinator.log", self.env()).start()
        self.coordinator = proc
        self.procs.append(proc)
        wait_for(lambda: _port_open(self.port) or not proc.alive, 20, "the coordinator to listen")
        assert proc.alive, proc.log()
        return proc

    def start_agent(
        self, agent_id: str, region: str, *extra: str, env: dict[str, str] | None = None
    ) -> Proc:
        args = [
            *VANTAGE, "agent", "--coordinator", self.address, "--region", region,
            "--id", agent_id, "--state-dir", str(self.root / agent_id),
            "--allow-private-targets",
            *(("--ca-dir", str(self.ca_dir)) if self.ca_dir is not None else ()), *extra,
        ]
        proc = Proc(agent_id, args, self.root / f"{agent_id}.log", {**self.env(), **(env or {})}).start()
        self.procs.append(proc)
        return proc

    def client(self, token: str | None = None) -> VantageClient:
        return VantageClient(self.address, token=token)

    def wait_agents(self, ids: set[str], timeout: float = 30.0) -> None:
        with self.client(self.extra_env.get("VANTAGE_API_TOKEN")) as c:
            def connected() -> bool:
                try:
                    return ids <= {a.agent_id for a in c.agents() if a.connected}
                except Exception:
                    return False

            wait_for(connected, timeout, f"agents {sorted(ids)} to connect")

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        env = self.env()
        env["VANTAGE_COORDINATOR"] = self.address
        return subprocess.run(
            [*VANTAGE, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the coordinator's database directly (``?`` placeholders, either engine)."""
        if self.db_url is not None:
            import psycopg

            with psycopg.connect(self.db_url, autocommit=True) as pg:
                return list(pg.execute(sql.replace("?", "%s"), params or None).fetchall())
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=5)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def network(root: Path, **kw: Any) -> Iterator[Network]:
    net = Network(root, **kw)
    try:
        yield net
    finally:
        net.stop_all()


# ---------------------------------------------------------------- local targets


@dataclass
class Targets:
    http_port: int = 0
    https_port: int = 0
    dns_port: int = 0
    ca_file: Path | None = None
    slow_requests: int = 0
    # kB of /slow bodies sent so far: a test waits on it to know a probe is mid-body
    slow_kb_sent: int = 0


def _app(state: Targets) -> web.Application:
    blob = os.urandom(1024 * 1024)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>vantage test target</body></html>", content_type="text/html")

    async def data(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("bytes", str(len(blob))))
        resp = web.StreamResponse(headers={"Content-Length": str(size)})
        await resp.prepare(request)
        sent = 0
        while sent < size:
            chunk = blob[: min(len(blob), size - sent)]
            await resp.write(chunk)
            sent += len(chunk)
        return resp

    async def slow(request: web.Request) -> web.StreamResponse:
        """Trickles 1 kB every 100 ms for ``seconds`` (default 4): a task that takes a while."""
        state.slow_requests += 1
        seconds = float(request.query.get("seconds", "4"))
        steps = int(seconds * 10)
        resp = web.StreamResponse(headers={"Content-Length": str(steps * 1024)})
        await resp.prepare(request)
        for _ in range(steps):
            await resp.write(b"x" * 1024)
            state.slow_kb_sent += 1
            await asyncio.sleep(0.1)
        return resp

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/data", data)
    app.router.add_get("/slow", slow)
    return app


@contextlib.contextmanager
def local_targets(tmp: Path) -> Iterator[Targets]:
    """HTTP, HTTPS (trustme CA written to ``tmp``) and DNS on 127.0.0.1, in a thread."""
    from tests.probes.servers import dns_server

    state = Targets()
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    state.ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(state.ca_file))
    ready = threading.Event()
    stop: list[Callable[[], None]] = []
    errors: list[BaseException] = []

    def serve() -> None:
        async def main() -> None:
            import ssl

            runner = web.AppRunner(_app(state), access_log=None)
            await runner.setup()
            http = web.TCPSite(runner, "127.0.0.1", 0)
            await http.start()
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            https = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
            await https.start()
            state.http_port = runner.addresses[0][1]
            state.https_port = runner.addresses[1][1]
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            async with dns_server() as dns_port:
                state.dns_port = dns_port
                ready.set()
                await done.wait()
            await runner.cleanup()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=serve, name="targets", daemon=True)
    thread.start()
    ready.wait(15)
    if errors:
        raise errors[0]
    try:
        yield state
    finally:
        if stop:
            stop[0]()
        thread.join(10)
