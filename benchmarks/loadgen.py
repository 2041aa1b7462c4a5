"""A load generator that stands in for many agents: one process of ``benchmarks/scale.py``.

Each simulated agent has its own id, its own gRPC channel (its own TCP connection, as a
real agent), says hello, beats at the interval the Welcome gives from a random phase, and
answers every assignment with a result of the task's kind, shaped like a real probe's
(``result_for``): a throughput result carries a series of 100 samples and its headers,
an http one its timings, headers and title, a dns one its records per type. Results go in
batches of what is pending, as the real agent sends its outbox, and are counted once
acked. A stream that fails, or ends, is dialled again after the real agent's jittered
exponential backoff (``agent.session.backoff_delay``), honouring a retry hint the
coordinator puts in the trailers (``vantage-retry-after-ms``).

It reads nothing on stdin and writes one JSON line of counters to stdout every
``REPORT_S`` (and on exit): connected agents, attempts by outcome, and per job the
assignments seen with the time of the last one and of the first result sent, and the
results sent and acked with the time of the last ack (``time.monotonic()``, one clock for every
process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from agent.session import HEALTHY_SESSION_S, RESULT_BATCH, backoff_delay, retry_hint
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

EOF = grpc.aio.EOF  # type: ignore[attr-defined]
REPORT_S = 0.2
KINDS = ["dns", "tcp", "tls", "http", "throughput"]


def result_for(a: pb.TaskAssignment, agent_id: str, rng: random.Random) -> pb.TaskResult:
    """A successful result of ``a``'s kind with the fields and sizes a real probe gives."""
    now = time.time()
    r = pb.TaskResult(
        task_id=a.task_id,
        job_id=a.job_id,
        agent_id=agent_id,
        started_at=now - 0.05,
        finished_at=now,
    )
    p = r.result
    p.kind, p.target, p.duration_s = a.kind, a.target, 0.05
    if a.kind == "tcp":
        host, _, port = a.target.rpartition(":")
        d = p.tcp
        d.host, d.port, d.resolve_s, d.address, d.family = (
            host,
            int(port or 443),
            0.002,
            "192.0.2.10",
            "ipv4",
        )
        d.addresses.extend(["192.0.2.10", "192.0.2.11"])
        d.connect_s, d.local_address = rng.uniform(0.01, 0.2), "198.51.100.7:43122"
    elif a.kind == "dns":
        d = p.dns
        d.query, d.transport, d.resolver, d.resolver_source, d.rcode = (
            a.target,
            "udp",
            "192.0.2.53:53",
            "system",
            "NOERROR",
        )
        d.types.extend(["A", "AAAA"])
        for rtype, values in (("A", ["192.0.2.10", "192.0.2.11"]), ("AAAA", ["2001:db8::10"])):
            resp = d.responses[rtype]
            resp.rcode, resp.duration_s = "NOERROR", rng.uniform(0.005, 0.05)
            for v in values:
                d.answers.append(v)
                d.records.add(type=rtype, value=v, ttl=300)
                resp.answers.add(type=rtype, value=v, ttl=300)
    elif a.kind == "tls":
        d = p.tls
        d.host, d.port, d.sni, d.verify, d.hostname_checked = (
            a.target.split(":")[0],
            443,
            a.target.split(":")[0],
            True,
            True,
        )
        d.address, d.connect_s, d.handshake_s = (
            "192.0.2.10",
            rng.uniform(0.01, 0.2),
            rng.uniform(0.02, 0.3),
        )
        d.tls_version, d.cipher, d.alpn = "TLSv1.3", "TLS_AES_256_GCM_SHA384", "h2"
    elif a.kind == "http":
        d = p.http
        d.method, d.url, d.status, d.reason, d.http_version = "GET", a.target, 200, "OK", "1.1"
        d.headers.update(
            {
                "server": "nginx",
                "content-type": "text/html; charset=utf-8",
                "content-length": "51234",
            }
        )
        t = d.timings
        t.dns_s, t.connect_s, t.tls_s, t.ttfb_s, t.total_s = 0.003, 0.04, 0.08, 0.12, 0.2
        d.body_length, d.body_sha256 = 51234, hashlib.sha256(a.target.encode()).hexdigest()
        d.title = "Example Domain: a page of realistic length for a title"
        d.link_hosts.extend(["cdn.example.net", "static.example.net"])
    elif a.kind == "throughput":
        d = p.throughput
        rate = rng.uniform(1e6, 5e6)
        d.url, d.address, d.sni, d.status, d.direction = (
            a.target,
            "192.0.2.10",
            "example.net",
            200,
            "download",
        )
        d.headers.update(
            {
                "server": "nginx",
                "content-type": "application/octet-stream",
                "content-length": "10485760",
            }
        )
        d.interval_s, d.max_bytes, d.max_seconds = 0.1, 10 * 1024 * 1024, 10.0
        d.series_bps.extend(rate * rng.uniform(0.8, 1.2) for _ in range(100))
        d.bytes, d.duration_s, d.bytes_per_second, d.ttfb_s = int(rate * 10), 10.0, rate, 0.08
        d.complete, d.stopped_by, d.first_part_bps, d.sustained_bps = (
            False,
            "max_seconds",
            rate,
            rate,
        )
    return r


@dataclass
class Stats:
    connected: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # by outcome: "ok" or a status code
    why: Counter[str] = field(default_factory=Counter)  # failed attempts by status and details
    # job -> [assignments, the last one's time, the first result's sending time]
    assigned: dict[str, list[float]] = field(default_factory=dict)
    sent: int = 0
    acked: int = 0
    last_ack: float | None = None
    heartbeats: int = 0
    beat_late_max: float = 0.0
    ack_wait_max: float = 0.0  # the longest a result waited for its ack

    def line(self) -> str:
        return json.dumps({
            "connected": self.connected, "attempts": dict(self.attempts),
            "why": dict(self.why.most_common(8)), "assigned": self.assigned,
            "sent": self.sent, "acked": self.acked, "last_ack": self.last_ack, "heartbeats": self.heartbeats,
            "beat_late_max": round(self.beat_late_max, 2), "ack_wait_max": round(self.ack_wait_max, 2),
        })  # fmt: skip


class SimAgent:
    def __init__(
        self, agent_id: str, region: str, address: str, stats: Stats, rng: random.Random
    ) -> None:
        self.agent_id, self.region, self.address = agent_id, region, address
        self.stats, self.rng = stats, rng

    async def run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            outcome, hint = await self._session()
            if time.monotonic() - started > HEALTHY_SESSION_S:
                attempt = 0
            self.stats.attempts[outcome] += 1
            delay = backoff_delay(attempt, 0.5, 30.0, self.rng)
            if hint is not None:
                delay = max(delay, hint)
            attempt += 1
            await asyncio.sleep(delay)

    async def _session(self) -> tuple[str, float | None]:
        """One stream; returns how it ended ("ok" for a session that got its Welcome, else
        the status code's name) and the retry hint it carried, if any."""
        options = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000),
                   ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]  # fmt: skip
        welcomed = False
        async with grpc.aio.insecure_channel(self.address, options=options) as channel:
            call = pb_grpc.AgentServiceStub(channel).Connect()
            try:
                await call.write(pb.AgentMessage(hello=pb.Hello(
                    agent_id=self.agent_id, region=self.region, kinds=KINDS, concurrency=64,
                    result_format=pb.RESULT_FORMAT_TYPED, version="0.0.0+loadgen", assign_batches=True,
                )))  # fmt: skip
                welcome = await call.read()
                if welcome is EOF or not welcome.HasField("welcome"):
                    return "no welcome", None
                welcomed = True
                self.stats.connected += 1
                try:
                    await self._serve(call, welcome.welcome.heartbeat_interval_s)
                finally:
                    self.stats.connected -= 1
                return "ok", None
            except grpc.aio.AioRpcError as exc:
                if welcomed:
                    return "ok", retry_hint(exc)
                self.stats.why[f"{exc.code().name}: {(exc.details() or '')[:60]}"] += 1
                return _outcome(exc), retry_hint(exc)
            finally:
                call.cancel()

    async def _serve(self, call: Any, interval: float) -> None:
        pending: list[pb.TaskResult] = []
        sent_at: dict[str, float] = {}
        wake = asyncio.Event()
        lock = asyncio.Lock()  # one write at a time on a stream, as the real agent's

        async def write(message: pb.AgentMessage) -> None:
            async with lock:
                await call.write(message)

        async def beat() -> None:
            due = time.monotonic() + self.rng.uniform(0, interval)
            while True:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await write(pb.AgentMessage(heartbeat=pb.Heartbeat(sent_at=time.time())))
                # how late this generator itself sent it (an overloaded generator, not
                # the coordinator, would explain a missed beat)
                self.stats.beat_late_max = max(self.stats.beat_late_max, time.monotonic() - due)
                self.stats.heartbeats += 1
                due += interval

        async def send() -> None:
            while True:
                await wake.wait()
                wake.clear()
                await asyncio.sleep(0)  # what arrives in the same turn goes in the same batch
                while pending:
                    batch, pending[:] = pending[:RESULT_BATCH], pending[RESULT_BATCH:]
                    now = time.monotonic()
                    for r in batch:
                        seen = self.stats.assigned[r.job_id]
                        if len(seen) == 2:
                            seen.append(now)  # the job's first result sent
                    self.stats.sent += len(batch)
                    sent_at.update((r.task_id, now) for r in batch)
                    await write(pb.AgentMessage(results=pb.ResultBatch(results=batch)))

        workers = [asyncio.create_task(beat()), asyncio.create_task(send())]
        try:
            while True:
                msg = await call.read()
                if msg is EOF:
                    return
                which = msg.WhichOneof("body")
                if which in ("assign", "assign_batch"):
                    now = time.monotonic()
                    for a in msg.assign_batch.tasks if which == "assign_batch" else [msg.assign]:
                        seen = self.stats.assigned.setdefault(a.job_id, [0, 0.0])
                        seen[0] += 1
                        seen[1] = now
                        pending.append(result_for(a, self.agent_id, self.rng))
                    wake.set()
                elif which == "ack":
                    now = time.monotonic()
                    self.stats.acked += len(msg.ack.task_ids)
                    self.stats.last_ack = now
                    for tid in msg.ack.task_ids:
                        if (at := sent_at.pop(tid, None)) is not None:
                            self.stats.ack_wait_max = max(self.stats.ack_wait_max, now - at)
                for w in workers:
                    if w.done():
                        w.result()  # a failed write ends the session with its error
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


def _outcome(exc: grpc.aio.AioRpcError) -> str:
    """A failed attempt's status name; "UNAVAILABLE-down" when nothing listened (the
    connection was refused: the coordinator was not running)."""
    details = (exc.details() or "").lower()
    if exc.code() is grpc.StatusCode.UNAVAILABLE and (
        "refused" in details or "failed to connect" in details
    ):
        return "UNAVAILABLE-down"
    return str(exc.code().name)


async def generate(address: str, first: int, count: int, regions: int, seed: int) -> None:
    stats = Stats()
    rng = random.Random(seed)
    agents = [SimAgent(f"sim-{i:05d}", f"r{i % regions}", address, stats, random.Random(rng.random()))
              for i in range(first, first + count)]  # fmt: skip
    tasks = [asyncio.create_task(a.run()) for a in agents]
    last = ""
    try:
        while True:
            await asyncio.sleep(REPORT_S)
            line = stats.line()
            if line != last:
                print(line, flush=True)
                last = line
    finally:
        for t in tasks:
            t.cancel()


def main() -> None:
    address, first, count, regions, seed = sys.argv[1], *map(int, sys.argv[2:6])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(generate(address, first, count, regions, seed))


if __name__ == "__main__":
    main()
