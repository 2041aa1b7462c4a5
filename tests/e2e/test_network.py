"""End-to-end: a real `vantage coordinator` and three `vantage agent` processes in two
regions on 127.0.0.1, local targets, jobs submitted over gRPC and with the CLI."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from agent.probes.tls import CA_FILE_UNUSABLE
from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.conftest import DE, RU
from tests.e2e.harness import Network, Targets, network, wait_for

pytestmark = pytest.mark.e2e



def job_targets(kind: str, t: Targets) -> tuple[str, dict[str, str]]:
    base = f"http://127.0.0.1:{t.http_port}"
    return {
        "dns": ("ok.test", {"resolver": f"127.0.0.1:{t.dns_port}"}),
        "tcp": (f"127.0.0.1:{t.http_port}", {}),
        "tls": (f"127.0.0.1:{t.https_port}", {"sni": "localhost", "ca_file": str(t.ca_file)}),
        "http": (f"{base}/", {}),
        "throughput": (f"{base}/data?bytes=2000000", {"control": f"{base}/data?bytes=1000000"}),
        "ping": ("127.0.0.1", {"method": "tcp", "port": str(t.http_port), "count": "3", "interval": "0.2"}),
        "traceroute": ("127.0.0.1", {"method": "tcp", "port": str(t.http_port)}),
    }[kind]


def collect(net: Network, job_id: str) -> tuple[list[pb.TaskResult], pb.Job]:
    results: list[pb.TaskResult] = []
    end = None
    with net.client() as c:
        for event in c.watch(job_id, follow=True):
            if event.HasField("result"):
                results.append(event.result)
            elif event.HasField("job_end"):
                end = event.job_end
    assert end is not None, "WatchJob ended without the job's end"
    return results, end


@pytest.mark.parametrize("kind", ["dns", "tcp", "tls", "http", "throughput", "ping", "traceroute"])
def test_one_off_job_of_each_kind_reaches_exactly_the_selected_agents(
    net: Network, targets: Targets, kind: str
) -> None:
    target, options = job_targets(kind, targets)
    with net.client() as c:
        job = c.submit(kind, [target], options=options, regions=["de"])
    results, end = collect(net, job.job_id)
    assert end.state == pb.JOB_STATE_DONE, end
    assert {r.agent_id for r in results} == DE
    assert len(results) == 2
    for r in results:
        assert r.result.kind == kind
        assert failure_name(r.result.failure) == "", (failure_name(r.result.failure), r.result.failure_detail)
    # The same results through the CLI.
    out = net.cli("results", job.job_id, "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["task_id"] for r in rows} == {r.task_id for r in results}
    assert {r["agent_id"] for r in rows} == DE
    # Each result says where it was measured, as the coordinator knows the agent.
    assert [r["place"] for r in rows] == [{"region": "de", "country": "", "asn": 0}] * 2
    assert all(r.place.region == "de" for r in results)
    if kind == "tcp":  # typed data: a port is an integer, not the 50992.0 of a Struct
        assert all(type(r["result"]["data"]["port"]) is int for r in rows), rows
    if kind == "throughput":
        data = rows[0]["result"]["data"]
        assert data["bytes"] == 2_000_000 and data["control"]["bytes"] == 1_000_000
        assert data["bytes_per_second"] > 0 and data["ratio"] > 0


def test_ping_and_traceroute_figures_reach_the_metrics_per_region(net: Network, targets: Targets) -> None:
    for kind in ("ping", "traceroute"):
        target, options = job_targets(kind, targets)
        with net.client() as c:
            job = c.submit(kind, [target], options=options, regions=["ru"])
        results, end = collect(net, job.job_id)
        assert end.state == pb.JOB_STATE_DONE and {r.agent_id for r in results} == RU, end

    def scraped() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{net.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def with_paths() -> str | None:
        text = scraped()
        return text if "vantage_traceroute_hops{" in text else None

    text = wait_for(with_paths, 10, "path metrics")
    assert 'vantage_ping_loss_ratio{region="ru",target="127.0.0.1"} 0.0' in text
    rtt = [line for line in text.splitlines() if line.startswith('vantage_ping_rtt_seconds{region="ru"')]
    assert {line.split('stat="')[1].split('"')[0] for line in rtt} == {"min", "avg", "max"}
    assert all(0 < float(line.rsplit(" ", 1)[1]) < 1 for line in rtt), rtt
    assert 'vantage_traceroute_hops{region="ru",target="127.0.0.1"} 1.0' in text
    assert 'vantage_traceroute_reached{region="ru",target="127.0.0.1"} 1.0' in text
    # path kinds are not verdict evidence: no verdict for a target only pinged
    verdicts = [line for line in text.splitlines() if line.startswith("vantage_verdict_info{")]
    assert not [line for line in verdicts if 'target="127.0.0.1"' in line], verdicts


def test_selector_by_agent_id_and_country(net: Network, targets: Targets) -> None:
    target, _ = job_targets("tcp", targets)
    with net.client() as c:
        by_id = c.submit("tcp", [target], agent_ids=["de-2"])
        by_country = c.submit("tcp", [target], countries=["RU"])
        per_region = c.submit("tcp", [target], per_region=1)
    assert {r.agent_id for r in collect(net, by_id.job_id)[0]} == {"de-2"}
    (ru,) = collect(net, by_country.job_id)[0]
    assert ru.agent_id == "ru-1" and (ru.place.region, ru.place.country, ru.place.asn) == ("ru", "RU", 25159)
    out = net.cli("results", by_country.job_id)
    assert out.returncode == 0 and "ru RU AS25159" in out.stdout, out.stdout
    per = collect(net, per_region.job_id)[0]
    assert len(per) == 2 and {r.agent_id for r in per} & RU and len({r.agent_id for r in per} & DE) == 1


def test_periodic_job_runs_the_asked_number_of_rounds(net: Network, targets: Targets) -> None:
    target, _ = job_targets("http", targets)
    with net.client() as c:
        job = c.submit("http", [target], every_s=1.0, count=3, regions=["ru"])
    results, end = collect(net, job.job_id)
    assert end.state == pb.JOB_STATE_DONE
    assert end.rounds_done == 3
    assert len(results) == 3 and {r.agent_id for r in results} == RU
    rounds = sorted({r.task_id.split("-")[1] for r in results})
    assert rounds == ["0", "1", "2"]


def test_cancel_stops_a_periodic_job(net: Network, targets: Targets) -> None:
    target, _ = job_targets("tcp", targets)
    with net.client() as c:
        job = c.submit("tcp", [target], every_s=1.0, count=100)
        wait_for(lambda: c.get(job.job_id).tasks_done >= 3, 20, "three results")
        out = net.cli("cancel", job.job_id)
        assert out.returncode == 0 and "cancelled" in out.stdout, out
        cancelled = c.get(job.job_id)
        assert cancelled.state == pb.JOB_STATE_CANCELLED
        rounds_at_cancel = cancelled.rounds_done

        def stored() -> int:
            return int(net.query("SELECT COUNT(*) FROM measurements WHERE job_id=?", (job.job_id,))[0][0])

        # Nothing new may come of the cancelled job while the scheduler and the agents go
        # on working: sentinel jobs on the same agents, one round a second, show that
        # time passed and that rounds were created and results stored all along.
        for rounds in (3, 2):
            sentinel = c.submit("tcp", [target], every_s=1.0, count=rounds)
            done = wait_for(
                lambda s=sentinel: (j := c.get(s.job_id)).state == pb.JOB_STATE_DONE and j,
                30, "a sentinel job to run its rounds",
            )
            assert done.rounds_done == rounds and done.tasks_done == rounds * 3
            if rounds == 3:
                after_first = stored()
        later = c.get(job.job_id)
    assert later.rounds_done == rounds_at_cancel, "a round was created after the cancel"
    assert stored() == after_first, "results kept arriving after the cancel"


def test_cli_submit_wait_json_and_agents(net: Network, targets: Targets) -> None:
    target, _ = job_targets("http", targets)
    out = net.cli("submit", "http", target, "--regions", "de,ru", "--wait", "--json")
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["state"] == "done" and job["tasks_done"] == 3
    agents = json.loads(net.cli("agents", "--json").stdout)
    assert {a["agent_id"] for a in agents if a["connected"]} >= DE | RU
    assert all(0 < a["first_seen"] <= a["last_seen"] for a in agents)
    table = net.cli("jobs")
    assert table.returncode == 0 and job["job_id"] in table.stdout


def test_health_and_reflection_answer(net: Network) -> None:
    with grpc.insecure_channel(net.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "vantage.v1.JobService", "vantage.v1.AgentService"):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert {"vantage.v1.JobService", "vantage.v1.AgentService", "grpc.health.v1.Health"} <= services
        method = db.FindFileContainingSymbol("vantage.v1.JobService")
        assert method.package == "vantage.v1"


# ------------------------------------------------------------------ failures


def _task_agent(net: Network, job_id: str) -> str | None:
    rows = net.query("SELECT agent_id FROM tasks WHERE job_id=? AND state='assigned'", (job_id,))
    return rows[0][0] if rows else None


def test_agent_killed_mid_task_does_not_hang_its_job(tmp_path: Path, db_url: str | None, targets: Targets) -> None:
    slow = f"http://127.0.0.1:{targets.http_port}/slow?seconds=3"
    with network(tmp_path, db_url=db_url) as n:
        n.start_coordinator()
        agents = {aid: n.start_agent(aid, "k") for aid in ("k-1", "k-2")}
        n.wait_agents(set(agents))
        with n.client() as c:
            # Reassignable: any one agent of region k.
            job = c.submit("http", [slow], regions=["k"], per_region=1, timeout_s=30)
            sent = targets.slow_kb_sent
            victim = wait_for(lambda: _task_agent(n, job.job_id), 10, "the task to be assigned")
            wait_for(lambda: targets.slow_kb_sent >= sent + 3, 10, "the probe to be reading the slow body")
            agents[victim].kill(signal.SIGKILL)
            results, end = collect(n, job.job_id)
            assert end.state == pb.JOB_STATE_DONE, end
            survivor = ({"k-1", "k-2"} - {victim}).pop()
            assert [r.agent_id for r in results] == [survivor]
            assert n.coordinator is not None and "task_reassigned" in n.coordinator.log()
            # Not reassignable: only the dead agent was selected. It fails at its deadline.
            agents[victim] = n.start_agent(victim, "k")
            n.wait_agents({victim})
            job2 = c.submit("http", [slow], agent_ids=[victim], timeout_s=4)
            wait_for(lambda: _task_agent(n, job2.job_id), 10, "the task to be assigned")
            agents[victim].kill(signal.SIGKILL)
            results2, end2 = collect(n, job2.job_id)
        assert end2.state == pb.JOB_STATE_FAILED and end2.tasks_failed == 1, end2
        assert results2 == []


def test_coordinator_killed_and_restarted_loses_nothing(tmp_path: Path, db_url: str | None, targets: Targets) -> None:
    slow = f"http://127.0.0.1:{targets.http_port}/slow?seconds=3"
    fast = f"127.0.0.1:{targets.http_port}"
    with network(tmp_path, db_url=db_url) as n:
        n.start_coordinator()
        for aid, region in (("a-1", "de"), ("a-2", "de"), ("a-3", "ru")):
            n.start_agent(aid, region)
        n.wait_agents({"a-1", "a-2", "a-3"})
        with n.client() as c:
            periodic = c.submit("tcp", [fast], every_s=1.0, count=12)
            wait_for(lambda: c.get(periodic.job_id).rounds_done >= 2, 20, "two rounds")
            held = c.submit("http", [slow], timeout_s=60)
            wait_for(
                lambda: len(n.query("SELECT 1 FROM tasks WHERE job_id=? AND state='assigned'", (held.job_id,))) == 3,
                10, "the slow tasks to be assigned",
            )
        assert n.coordinator is not None
        n.coordinator.kill(signal.SIGKILL)
        n.coordinator.popen.wait(10)  # type: ignore[union-attr]
        # While it is down, the slow probes finish and their results wait in the outboxes.
        outboxes = [tmp_path / aid / "outbox" for aid in ("a-1", "a-2", "a-3")]
        wait_for(
            lambda: sum(1 for d in outboxes for p in d.glob("*.result") if held.job_id in p.name) == 3,
            15, "results held in the agents' outboxes",
        )
        n.start_coordinator()
        n.wait_agents({"a-1", "a-2", "a-3"}, timeout=45)  # they reconnect by themselves
        with n.client() as c:
            assert c.get(held.job_id).job_id == held.job_id  # no accepted job lost
            results, end = collect(n, held.job_id)
            assert end.state == pb.JOB_STATE_DONE and len(results) == 3
            final = wait_for(
                lambda: (j := c.get(periodic.job_id)).state == pb.JOB_STATE_DONE and j, 60,
                "the periodic job to finish after the restart",
            )
        assert final.rounds_done == 12
        # Exactly once: one row per task, and as many rows as results the job counted.
        for job in (held, final):
            rows = n.query("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM measurements WHERE job_id=?", (job.job_id,))[0]
            assert rows[0] == rows[1]
            assert rows[0] == _done(n, job.job_id)
        assert rows[0] == 36  # 12 rounds x 3 agents: nothing lost, nothing twice
        wait_for(lambda: all(not list(d.glob("*.result")) for d in outboxes), 10, "outboxes to drain")


def _done(n: Network, job_id: str) -> int:
    return int(n.query("SELECT tasks_done FROM jobs WHERE job_id=?", (job_id,))[0][0])


def test_agent_sigterm_drains_its_running_task(tmp_path: Path, db_url: str | None, targets: Targets) -> None:
    slow = f"http://127.0.0.1:{targets.http_port}/slow?seconds=2"
    with network(tmp_path, db_url=db_url) as n:
        n.start_coordinator()
        agent = n.start_agent("d-1", "d")
        n.wait_agents({"d-1"})
        with n.client() as c:
            sent = targets.slow_kb_sent
            job = c.submit("http", [slow], agent_ids=["d-1"], timeout_s=30)
            wait_for(lambda: _task_agent(n, job.job_id), 10, "the task to be assigned")
            wait_for(lambda: targets.slow_kb_sent >= sent + 3, 10, "the probe to be reading the slow body")
            agent.kill(signal.SIGTERM)
            assert agent.popen is not None and agent.popen.wait(20) == 0
            results, end = collect(n, job.job_id)
        assert end.state == pb.JOB_STATE_DONE and [r.agent_id for r in results] == ["d-1"]
        assert failure_name(results[0].result.failure) == ""
        assert not list((tmp_path / "d-1" / "outbox").glob("*.result")), "acked before exit"
        assert "agent_draining" in agent.log()


def test_a_probe_that_cannot_run_is_a_result_not_an_agent_crash(net: Network, targets: Targets) -> None:
    """A ca_file outside the agents' --ca-dir (or missing) is the agents' spec error, and
    its detail says the same for both: whether a file exists is not the submitter's to learn."""
    url = f"https://127.0.0.1:{targets.https_port}/"
    assert targets.ca_file is not None
    outside = targets.ca_file.parent.parent / "elsewhere.pem"
    outside.write_bytes(targets.ca_file.read_bytes())
    details = set()
    for ca_file in ("/nonexistent/ca.pem", str(outside), "/etc/passwd"):
        with net.client() as c:
            job = c.submit("http", [url], options={"ca_file": ca_file}, regions=["de"])
        results, end = collect(net, job.job_id)
        assert end.state == pb.JOB_STATE_DONE and {r.agent_id for r in results} == DE
        for r in results:
            assert failure_name(r.result.failure) == "agent_spec_error", r.result
            details.add(r.result.failure_detail)
    assert details == {f"the agent could not run this task: options.ca_file: {CA_FILE_UNUSABLE}"}
    with net.client() as c:
        assert {a.agent_id for a in c.agents() if a.connected} >= DE | RU
