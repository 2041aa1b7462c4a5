"""Issue 15 with real processes on 127.0.0.1: a coordinator with --canary, agents that
probe the canary, their health and their regions' health over gRPC, the CLI and
/metrics; a busy agent's tasks held at the coordinator within its concurrency; the canary job kept
across a restart; no caller may submit a canary job."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.harness import Network, Targets, network, wait_for


class Canary:
    """A canary page that answers 200, or 503 once ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = False
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = 503 if canary.failing else 200
                body = b"down" if canary.failing else b"ok"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/canary"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    try:
        yield c
    finally:
        c.close()


def _metrics(n: Network) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{n.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _health(n: Network) -> dict[str, str]:
    with n.client() as c:
        return {a.agent_id: a.health for a in c.agents() if a.connected}


def _reachable(n: Network) -> dict[str, bool]:
    with n.client() as c:
        return {r.region: r.reachable for r in c.verdicts().region_health}


AGENTS = {"r-1": "ru", "r-2": "ru", "d-1": "de"}


@pytest.mark.timeout(180)
def test_canaries_give_agent_and_region_health_end_to_end(
    tmp_path: Path, db_url: str | None, targets: Targets, canary: Canary
) -> None:
    canary_flags = ("--canary", canary.url, "--canary-every", "5s")
    with network(tmp_path, db_url=db_url) as n:
        n.start_coordinator(*canary_flags)
        for aid, region in AGENTS.items():
            extra = ("--concurrency", "1") if aid == "d-1" else ()
            n.start_agent(aid, region, *extra)
        n.wait_agents(set(AGENTS))
        with n.client() as c:
            (job,) = [j for j in c.list_jobs() if j.spec.purpose == "canary"]
        assert list(job.spec.targets) == [canary.url] and job.spec.every_s == 5.0
        wait_for(lambda: set(_health(n).values()) == {"healthy"} and len(_health(n)) == 3, 40,
                 "every agent to reach the canary")  # fmt: skip
        assert _reachable(n) == {"ru": True, "de": True}
        table = n.cli("agents")
        assert table.returncode == 0 and table.stdout.count("healthy") == 3, table.stdout

        # A busy agent: concurrency 1 and three slow tasks with a 2 s deadline. Dispatch
        # honours the declared concurrency, so the agent is sent one at a time: the first
        # runs out of time on the agent (a measured timeout), the others wait at the
        # coordinator and fail there with the slot named: never queued on the agent past
        # their deadline, never an agent error, never evidence.
        slow = [f"http://127.0.0.1:{targets.http_port}/slow?seconds=4&n={i}" for i in range(3)]
        with n.client() as c:
            busy = c.submit("http", slow, agent_ids=["d-1"], timeout_s=2.0)
            events = list(c.watch(busy.job_id))
        failed = [e.task_failed.reason for e in events if e.HasField("task_failed")]
        results = [e.result for e in events if e.HasField("result")]
        assert len(failed) + len(results) == 3 and len(failed) >= 1, events
        assert all(r.startswith("waiting for a free slot on agent d-1 (concurrency 1)") for r in failed), failed
        assert all(failure_name(r.result.failure) != "agent_deadline_missed" for r in results), results
        with n.client() as c:
            (d1,) = [a for a in c.agents() if a.agent_id == "d-1"]
        assert "deadline_missed" not in d1.errors, d1.errors
        errors = {(lb["region"], lb["reason"]) for lb, _ in _metrics(n).get("vantage_agent_errors_total", [])}
        assert ("de", "deadline_missed") not in errors, errors

        # Every canary fails now: no agent is seen reaching the outside world.
        canary.failing = True
        wait_for(lambda: _reachable(n) == {"ru": False, "de": False}, 40, "both regions unreachable")
        reach = {lb["region"]: v for lb, v in _metrics(n)["vantage_region_reachable"]}
        assert reach == {"ru": 0.0, "de": 0.0}
        out = n.cli("verdicts").stdout
        assert "unreachable regions: de, ru" in out and "region unreachable" in out, out
        assert {h for a, h in _health(n).items() if a != "d-1"} == {"unhealthy"}
        canary.failing = False
        wait_for(lambda: _reachable(n) == {"ru": True, "de": True}, 60, "both regions back")

        # A restart with the same flags keeps the same canary job; nobody can submit one.
        assert n.coordinator is not None
        n.coordinator.stop()
        n.start_coordinator(*canary_flags)
        n.wait_agents(set(AGENTS), timeout=45)
        with n.client() as c:
            open_canaries = [
                j.job_id for j in c.list_jobs()
                if j.spec.purpose == "canary" and j.state == pb.JOB_STATE_RUNNING
            ]  # fmt: skip
            assert open_canaries == [job.job_id]
            spec = pb.JobSpec(kind="http", targets=["http://127.0.0.1:9/"], purpose="canary")
            with pytest.raises(grpc.RpcError) as e:
                c.submit_spec(spec)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.purpose" in (e.value.details() or "")
